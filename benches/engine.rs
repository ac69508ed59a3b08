//! Engine micro-benchmarks (criterion): resolve for one request at 10 … 10,000 policies and
//! attachments, validation of a whole repository, the pipeline executor with content-filter
//! guardrails, and bundle rendering.
//!
//! Reproduce: `cargo bench --bench engine`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use guardrail_operator::engine::attach::resolve_request;
use guardrail_operator::engine::catalog::Catalog;
use guardrail_operator::engine::content_filter::{CatalogGuardrails, CategoryData};
use guardrail_operator::engine::litellm::{parse_attachment, parse_policy};
use guardrail_operator::engine::model::{Attachment, MatchContext, PolicyMap};
use guardrail_operator::engine::pipeline::{Message, MonotonicClock, Request, execute};
use guardrail_operator::engine::validate::validate_policies;
use serde_json::json;

/// A repository shaped like real ones: a few baselines, teams inheriting them (chains up to 5
/// deep), model-conditioned policies, attachments by team prefix, key, tag and model with
/// priorities and a default.
pub fn repository(n: usize) -> (Vec<String>, PolicyMap, Vec<Attachment>) {
    let mut order = Vec::new();
    let mut map = PolicyMap::new();
    let mut atts = Vec::new();
    for i in 0..n {
        let name = format!("p{i:05}");
        let parent = if i % 5 == 0 {
            None
        } else {
            Some(format!("p{:05}", i - 1))
        };
        let mut body = json!({"guardrails": {"add": [format!("g{}", i % 40), format!("g{}", (i * 7) % 40)], "remove": [format!("g{}", (i * 3) % 40)]}});
        if let Some(p) = parent {
            body["inherit"] = json!(p);
        }
        if i % 11 == 0 {
            body["condition"] = json!({"model": ["gpt-4o", "claude-.*"]});
        }
        map.insert(name.clone(), parse_policy(&body).unwrap());
        order.push(name.clone());
        let att = match i % 6 {
            0 => json!({"policy": name, "teams": [format!("team-{}-*", i % 50)]}),
            1 => json!({"policy": name, "keys": [format!("key-{i}")], "priority": (i % 7) as i64}),
            2 => json!({"policy": name, "tags": ["external", format!("tag-{}-*", i % 30)]}),
            3 => {
                json!({"policy": name, "models": ["gpt-*"], "teams": [format!("team-{}", i % 50)]})
            }
            4 => json!({"policy": name, "scope": if i % 1000 == 4 { "*" } else { "none" }}),
            _ => {
                json!({"policy": name, "default": i % 500 == 5, "models": [format!("model-{}", i % 20)]})
            }
        };
        atts.push(parse_attachment(&att).unwrap());
    }
    (order, map, atts)
}

fn ctx() -> MatchContext {
    MatchContext {
        team_alias: Some("team-7-research".into()),
        key_alias: Some("key-13".into()),
        model: Some("gpt-4o".into()),
        tags: Some(vec!["external".into()]),
    }
}

fn resolve(c: &mut Criterion) {
    let mut g = c.benchmark_group("resolve_one_request");
    for n in [10usize, 100, 1_000, 10_000] {
        let (_, map, atts) = repository(n);
        let map = guardrail_operator::engine::model::PolicyIndex::new(&map);
        let ctx = ctx();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(resolve_request(&atts, &map, &ctx)))
        });
    }
    g.finish();
}

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_repository");
    let available: BTreeSet<String> = (0..40).map(|i| format!("g{i}")).collect();
    for n in [100usize, 1_000, 10_000] {
        let (order, map, _) = repository(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(validate_policies(&order, &map, &available)))
        });
    }
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let catalog = Catalog::from_value(&json!([
        {"guardrail_name": "pii", "litellm_params": {"guardrail": "litellm_content_filter", "mode": "pre_call",
          "patterns": [{"pattern_type": "prebuilt", "pattern_name": "us_ssn", "action": "BLOCK"}, {"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"}]}},
        {"guardrail_name": "words", "litellm_params": {"guardrail": "litellm_content_filter", "mode": "pre_call",
          "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}]}},
    ]))
    .unwrap();
    let provider = CatalogGuardrails::new(&catalog, &CategoryData::new());
    let pl = parse_policy(&json!({"pipeline": {"steps": [{"guardrail": "pii", "on_pass": "next", "pass_data": true}, {"guardrail": "words"}]}})).unwrap().pipeline.unwrap();
    struct Set<'a>(&'a CatalogGuardrails);
    impl guardrail_operator::engine::pipeline::GuardrailSet for Set<'_> {
        fn find(&self, name: &str) -> Option<&dyn guardrail_operator::engine::pipeline::Guardrail> {
            use guardrail_operator::engine::testing::GuardrailProvider;
            self.0.real(name)
        }
    }
    let set = Set(&provider);
    let text = "Please summarise the attached quarterly report and email it to finance@example.com by Friday. ".repeat(4);
    let req = Request {
        model: Some("gpt-4o".into()),
        messages: vec![Message {
            role: "user".into(),
            content: text,
        }],
        response: None,
    };
    let clock = MonotonicClock::default();
    c.bench_function("pipeline_two_content_filters_400_chars", |b| {
        b.iter(|| black_box(execute(&pl, &req, &set, &clock)))
    });
}

fn render(c: &mut Criterion) {
    use guardrail_operator::api::{
        Policy, PolicyAttachment, PolicyAttachmentSpec, PolicyVersion, PolicyVersionSpec, Stage,
    };
    use guardrail_operator::engine::namespace::{Objects, Options, evaluate};
    let mut g = c.benchmark_group("evaluate_and_render_bundle");
    for n in [100usize, 1_000] {
        let mut o = Objects::default();
        for i in 0..n {
            let name = format!("p{i:05}");
            o.policies
                .push(Policy::new(&name, Default::default()).into());
            let spec = PolicyVersionSpec {
                policy: name.clone(),
                version: 1,
                stage: Some(Stage::Production),
                inherit: (i % 5 != 0).then(|| format!("p{:05}", i - 1)),
                guardrails: Some(guardrail_operator::api::GuardrailsSpec {
                    add: Some(vec![format!("g{}", i % 40)]),
                    remove: None,
                }),
                ..Default::default()
            };
            o.versions
                .push(PolicyVersion::new(&format!("{name}-v1"), spec).into());
            o.attachments.push(
                PolicyAttachment::new(
                    &format!("a{i:05}"),
                    PolicyAttachmentSpec {
                        policy: name,
                        teams: Some(vec![format!("team-{}-*", i % 50)]),
                        ..Default::default()
                    },
                )
                .into(),
            );
        }
        let clock = MonotonicClock::default();
        let provider = guardrail_operator::engine::testing::MocksOnly;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let eval = evaluate(
                    &o,
                    &Options {
                        catalog: None,
                        provider: &provider,
                        clock: &clock,
                        run_all_tests: false,
                        known_verdict: None,
                    },
                );
                black_box(guardrail_operator::engine::bundle::render(&eval))
            })
        });
    }
    g.finish();
}

/// Model-condition full matches: the regex-crate fast path against the backtracking matcher
/// it must agree with, over typical condition patterns and model names.
fn condition_fullmatch(c: &mut Criterion) {
    use guardrail_operator::engine::pyre::PyRegex;
    let patterns = [
        "gpt-4o",
        "gpt-.*",
        "(gpt|claude)-.+",
        r"[a-z]+-\d+",
        ".*-mini",
        r"\w+-\w+",
        r"gpt-\d\.\d-turbo",
        "o[13](-mini)?",
        r"(?i)claude-3-.*-sonnet",
    ];
    let models = [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-3-5-sonnet-20241022",
        "o3-mini",
        "gpt-3.5-turbo",
        "bedrock/anthropic.claude-3-haiku",
        "mistral-large-latest",
        "o1",
    ];
    let compiled: Vec<PyRegex> = patterns
        .iter()
        .map(|p| PyRegex::for_fullmatch(p).unwrap())
        .collect();
    assert!(compiled.iter().all(PyRegex::has_fast_fullmatch));
    let mut g = c.benchmark_group("condition_fullmatch");
    g.bench_function("regex_crate_fast_path", |b| {
        b.iter(|| {
            compiled
                .iter()
                .flat_map(|re| models.iter().map(move |m| re.fullmatch(black_box(m))))
                .filter(|hit| *hit)
                .count()
        })
    });
    g.bench_function("backtracking_matcher", |b| {
        b.iter(|| {
            compiled
                .iter()
                .flat_map(|re| {
                    models
                        .iter()
                        .map(move |m| re.fullmatch_backtracking(black_box(m)))
                })
                .filter(|hit| *hit)
                .count()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = resolve, validate, pipeline, render, condition_fullmatch
}
criterion_main!(benches);
