//! Request body bytes → the webhook's decode + review path (`webhook::review_body`, what each
//! `/validate/...` route answers), against a namespace holding the example policy repository
//! and its guardrail catalog, so reviews reach inheritance, attachments and the test pipeline.
//!
//! Input: the first byte picks the route (`'0'` Policy, `'1'` PolicyVersion,
//! `'2'` PolicyAttachment — byte % 3), the rest is the body.
//!
//! Sane output: every body gets exactly one AdmissionReview response that serialises to JSON;
//! a decodable request gets its own uid and apiVersion back; a denial always says why; a body
//! without a decodable request is never allowed.
#![no_main]

use std::sync::LazyLock;

use guardrail_operator::cache::{Decoded, NsStore};
use guardrail_operator::cli::manifests::{Manifests, parse_into};
use guardrail_operator::webhook::{self, AdmissionMetrics, WebhookState};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use kube::runtime::{reflector, watcher};
use libfuzzer_sys::fuzz_target;

const NAMESPACE: &str = "llm-gateway";
const REPO: [&str; 4] = [
    include_str!("../../examples/policy-repo/10-org-baseline.yaml"),
    include_str!("../../examples/policy-repo/20-research-team.yaml"),
    include_str!("../../examples/policy-repo/30-claude-only.yaml"),
    include_str!("../../examples/policy-repo/40-gated-pipeline.yaml"),
];
const CATALOG: &str = include_str!("../../examples/policy-repo/00-catalog.yaml");

struct Fixture {
    state: WebhookState,
    // The catalog writer owns its store's contents; kept alive for the whole run.
    _catalog_writer: reflector::store::Writer<ConfigMap>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let mut m = Manifests::default();
    for (i, text) in REPO.iter().enumerate() {
        parse_into(text, &format!("repo-{i}.yaml"), &mut m).expect("the example repo parses");
    }
    let objects = m.objects(NAMESPACE);
    assert!(!objects.policies.is_empty() && !objects.versions.is_empty());
    let (policies, versions, attachments) = <(NsStore<_>, NsStore<_>, NsStore<_>)>::default();
    let (catalogs, mut wc) = reflector::store();
    for o in objects.policies {
        policies.apply(watcher::Event::Apply(Decoded::Ok((*o).clone())));
    }
    for o in objects.versions {
        versions.apply(watcher::Event::Apply(Decoded::Ok((*o).clone())));
    }
    for o in objects.attachments {
        attachments.apply(watcher::Event::Apply(Decoded::Ok((*o).clone())));
    }
    let mut cm: ConfigMap = serde_saphyr::from_str(CATALOG).expect("the example catalog parses");
    cm.metadata.resource_version = Some("1".into());
    let catalog_name = cm.metadata.name.clone();
    wc.apply_watcher_event(&watcher::Event::Apply(cm));
    let mut registry = prometheus_client::registry::Registry::default();
    Fixture {
        state: WebhookState {
            policies,
            versions,
            attachments,
            catalogs: Some(catalogs),
            catalog_name,
            provider: guardrail_operator::providers::default_provider(),
            metrics: AdmissionMetrics::register(&mut registry),
            budget_seconds: 2.0,
            catalog_cache: Default::default(),
            slots: WebhookState::review_slots(),
        },
        _catalog_writer: wc,
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    let kind = ["Policy", "PolicyVersion", "PolicyAttachment"][usize::from(route % 3)];
    let answer = webhook::review_body(&FIXTURE.state, kind, body);

    let response = answer
        .response
        .as_ref()
        .expect("every review gets a response");
    if !response.allowed {
        assert!(
            !response.result.message.trim().is_empty(),
            "a denial without a reason: {response:?}"
        );
    }
    let decoded = serde_json::from_slice::<AdmissionReview<DynamicObject>>(body).ok();
    match decoded
        .as_ref()
        .and_then(|r| r.request.as_ref().map(|q| (&r.types, q)))
    {
        Some((types, request)) => {
            assert_eq!(response.uid, request.uid, "the answer names its request");
            assert_eq!(
                &answer.types, types,
                "the answer echoes the request's apiVersion"
            );
        }
        None => {
            assert!(!response.allowed, "an undecodable review was allowed");
            assert_eq!(answer.types.kind, "AdmissionReview");
        }
    }
    // What axum's Json sends back, and what the API server must be able to read.
    let wire = serde_json::to_vec(&answer).expect("the answer serialises");
    let back: serde_json::Value = serde_json::from_slice(&wire).expect("the answer is JSON");
    assert_eq!(
        back.pointer("/response/allowed")
            .and_then(serde_json::Value::as_bool),
        Some(response.allowed)
    );
});
