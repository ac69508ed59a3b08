//! Our side of `scripts/bench-vs-litellm.sh`: reads the policy sets and requests the script
//! generated (and timed in LiteLLM 1.110.2), resolves every request with our engine, and prints
//! the time per request. Also checks that the answers are LiteLLM's.
//!
//! Reproduce: `scripts/bench-vs-litellm.sh`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use guardrail_operator::engine::attach::resolve_request;
use guardrail_operator::engine::litellm::{parse_attachment, parse_policy};
use guardrail_operator::engine::model::{Attachment, MatchContext, PolicyIndex, PolicyMap};
use guardrail_operator::engine::resolver::Resolver;
use serde_json::Value;

fn main() {
    let Ok(path) = std::env::var("RESOLVE_SETS") else {
        eprintln!("RESOLVE_SETS is not set: run scripts/bench-vs-litellm.sh");
        return;
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    for set in doc["sets"].as_array().unwrap() {
        let policies: PolicyMap = set["policies"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), parse_policy(v).unwrap()))
            .collect();
        let atts: Vec<Attachment> = set["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| parse_attachment(a).unwrap())
            .collect();
        let ctxs: Vec<MatchContext> = set["contexts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| MatchContext {
                team_alias: c["team_alias"].as_str().map(Into::into),
                key_alias: c["key_alias"].as_str().map(Into::into),
                model: c["model"].as_str().map(Into::into),
                tags: c["tags"]
                    .as_array()
                    .map(|t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect()),
            })
            .collect();
        // Like LiteLLM's registry (a dict), the set is indexed once when loaded.
        let policies_map = policies;
        let policies = PolicyIndex::new(&policies_map);
        // The indexed resolver, built once per set as LiteLLM's registries are.
        let resolver = Resolver::new(&atts, &policies);
        // Same answers as LiteLLM, from both.
        for (c, expected) in ctxs.iter().zip(set["expected"].as_array().unwrap()) {
            let r = resolve_request(&atts, &policies, c);
            assert_eq!(
                resolver.resolve(c),
                r,
                "the indexed resolver differs for {c:?}"
            );
            let names: Vec<&str> = r
                .matched_policies
                .iter()
                .map(|m| m.policy_name.as_str())
                .collect();
            let want: Vec<&str> = expected["matched"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            assert_eq!(
                names, want,
                "matched policies differ from LiteLLM for {c:?}"
            );
            let want: Vec<&str> = expected["effective"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            assert_eq!(
                r.effective_guardrails, want,
                "effective guardrails differ from LiteLLM for {c:?}"
            );
        }
        let time = |f: &dyn Fn(&MatchContext)| {
            let mut rounds = 0u64;
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < 1.0 || rounds < 3 {
                for c in &ctxs {
                    f(c);
                }
                rounds += 1;
            }
            start.elapsed().as_secs_f64() / (rounds as f64 * ctxs.len() as f64)
        };
        let linear = time(&|c| {
            black_box(resolve_request(&atts, &policies, c));
        });
        let indexed = time(&|c| {
            black_box(resolver.resolve(c));
        });
        out.push(serde_json::json!({"n": set["n"], "shape": set["shape"], "linear_per_request_seconds": linear, "per_request_seconds": indexed}));
    }
    println!("RESULT {}", serde_json::to_string(&out).unwrap());
}
