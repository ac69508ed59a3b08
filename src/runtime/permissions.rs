//! Startup permission check: the operator asks the API server (SelfSubjectAccessReview) for every
//! rule it will use — exactly the rules the chart grants and the README lists — and refuses to
//! start, naming each missing rule, instead of failing later with scattered 403s.

use futures::future::join_all;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use tracing::warn;

use super::RunOptions;
use crate::webhook::CertSource;

/// One permission: `verb` on `resource` (with `subresource`, `name`) in `namespace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub verb: &'static str,
    /// None: all namespaces (or a cluster-scoped resource).
    pub namespace: Option<String>,
    /// Only this object (a `resourceNames` rule).
    pub name: Option<String>,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(s) = self.subresource {
            write!(f, "/{s}")?;
        }
        write!(f, " (apiGroup {group})")?;
        if let Some(n) = &self.name {
            write!(f, " named {n}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None if self.resource == "validatingwebhookconfigurations" => Ok(()),
            None => write!(f, " in all namespaces"),
        }
    }
}

/// Every permission `run` with these options uses — the documented least-privilege list.
pub fn required(opts: &RunOptions) -> Vec<Permission> {
    let mut out = Vec::new();
    let ns = opts.namespace.clone();
    let mut add = |group: &'static str,
                   resource: &'static str,
                   subresource: Option<&'static str>,
                   verbs: &[&'static str],
                   namespace: Option<String>,
                   name: Option<String>| {
        for verb in verbs {
            out.push(Permission {
                group,
                resource,
                subresource,
                verb,
                namespace: namespace.clone(),
                name: name.clone(),
            });
        }
    };
    const G: &str = "guardrails.dev";
    let read = &["get", "list", "watch"][..];
    add(G, "policies", None, read, ns.clone(), None);
    add(G, "policyattachments", None, read, ns.clone(), None);
    add(
        G,
        "policyversions",
        None,
        &["get", "list", "watch", "patch", "delete"],
        ns.clone(),
        None,
    );
    for r in ["policies", "policyversions", "policyattachments"] {
        add(G, r, Some("status"), &["get", "patch"], ns.clone(), None);
    }
    add(
        "",
        "configmaps",
        None,
        &["get", "list", "watch", "create", "patch", "delete"],
        ns.clone(),
        None,
    );
    add(
        "events.k8s.io",
        "events",
        None,
        &["create", "patch"],
        ns.clone(),
        None,
    );
    if let Some(lease) = &opts.lease {
        add(
            "coordination.k8s.io",
            "leases",
            None,
            &["get", "create", "update", "patch"],
            Some(lease.namespace.clone()),
            None,
        );
    }
    if opts.config.gateway_deployment.is_some() {
        add(
            "apps",
            "deployments",
            None,
            &["get", "list", "watch", "patch"],
            ns.clone(),
            None,
        );
    }
    if let Some(w) = &opts.webhook
        && let CertSource::Managed {
            secret_namespace,
            secret_name,
            webhook_config,
            ..
        } = &w.certs
    {
        add(
            "",
            "secrets",
            None,
            &["create"],
            Some(secret_namespace.clone()),
            None,
        );
        add(
            "",
            "secrets",
            None,
            &["get", "update"],
            Some(secret_namespace.clone()),
            Some(secret_name.clone()),
        );
        if let Some(vwc) = webhook_config {
            add(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                None,
                &["get", "update"],
                None,
                Some(vwc.clone()),
            );
        }
    }
    out
}

/// Ask the API server about each permission; return those it denies and who "we" are.
/// A review that cannot be made at all (an API server without the API) counts as allowed: the
/// real calls will report their own errors.
pub async fn missing(client: &Client, wanted: &[Permission]) -> (Vec<Permission>, Option<String>) {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let checks = wanted.iter().map(|p| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(p.group.to_string()),
                        resource: Some(p.resource.to_string()),
                        subresource: p.subresource.map(str::to_string),
                        verb: Some(p.verb.to_string()),
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &review).await {
                Ok(r) => r.status.map(|s| s.allowed).unwrap_or(true),
                Err(e) => {
                    warn!(permission = %p, error = %e, "cannot check a permission; assuming it is granted");
                    true
                }
            }
        }
    });
    let allowed = join_all(checks).await;
    let missing = wanted
        .iter()
        .zip(allowed)
        .filter(|(_, ok)| !ok)
        .map(|(p, _)| p.clone())
        .collect();
    let who: Api<SelfSubjectReview> = Api::all(client.clone());
    let user = who
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()
        .and_then(|r| r.status?.user_info?.username);
    (missing, user)
}

/// The error message for missing permissions.
pub fn describe(missing: &[Permission], user: Option<&str>) -> String {
    let mut s = format!(
        "{} lacks {} permission(s) the operator needs:\n",
        user.map(|u| format!("user {u}"))
            .unwrap_or_else(|| "this identity".into()),
        missing.len()
    );
    for p in missing {
        s.push_str(&format!("  - {p}\n"));
    }
    s.push_str(
        "grant them with the chart's ClusterRole and Role (exactly these rules; README \"Least-privilege RBAC\"), or install with the Helm chart",
    );
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::controller::Config;
    use crate::runtime::LeaseOptions;
    use crate::webhook::WebhookOptions;
    use std::time::Duration;

    fn opts() -> RunOptions {
        RunOptions {
            config: Config {
                bundle_name: "b".into(),
                catalog_name: None,
                gateway_deployment: None,
                policy_configmaps: false,
            },
            namespace: Some("team".into()),
            http_addr: ([127, 0, 0, 1], 0).into(),
            lease: None,
            debounce: Duration::ZERO,
            resync: Duration::ZERO,
            webhook: None,
        }
    }

    #[test]
    fn minimal_options_need_only_the_base_rules() {
        let r = required(&opts());
        assert_eq!(r.len(), 3 + 3 + 5 + 6 + 6 + 2);
        assert!(r.iter().all(|p| p.namespace.as_deref() == Some("team")));
        assert!(
            !r.iter()
                .any(|p| p.resource == "secrets" || p.resource == "leases")
        );
    }

    #[test]
    fn options_add_exactly_their_rules() {
        let mut o = opts();
        o.namespace = None;
        o.lease = Some(LeaseOptions {
            name: "l".into(),
            namespace: "ops".into(),
            identity: "me".into(),
            duration_seconds: 15,
        });
        o.config.gateway_deployment = Some("gw".into());
        o.webhook = Some(WebhookOptions {
            addr: ([127, 0, 0, 1], 0).into(),
            budget_seconds: 1.0,
            cert_check: Duration::from_secs(60),
            certs: CertSource::Managed {
                secret_namespace: "ops".into(),
                secret_name: "tls".into(),
                dns: vec![],
                ips: vec![],
                days: 1,
                webhook_config: Some("vwc".into()),
            },
        });
        let r = required(&o);
        let lines: Vec<String> = r.iter().map(ToString::to_string).collect();
        for want in [
            "patch leases (apiGroup coordination.k8s.io) in namespace ops",
            "patch deployments (apiGroup apps) in all namespaces",
            "create secrets (apiGroup core) in namespace ops",
            "update secrets (apiGroup core) named tls in namespace ops",
            "update validatingwebhookconfigurations (apiGroup admissionregistration.k8s.io) named vwc",
            "patch policyversions/status (apiGroup guardrails.dev) in all namespaces",
        ] {
            assert!(
                lines.iter().any(|l| l == want),
                "{want} missing from {lines:#?}"
            );
        }
        let msg = describe(&r[..1], Some("system:serviceaccount:ops:op"));
        assert!(msg.starts_with("user system:serviceaccount:ops:op lacks 1 permission(s)"));
        assert!(msg.contains("  - get policies (apiGroup guardrails.dev) in all namespaces\n"));
    }
}
