//! `resolve`: what applies to a request, from the state the controller converges to.

use super::manifests::read;
use super::{Failure, Output, ResolveArgs, catalog_names, read_catalog};
use crate::engine::attach::{Resolution, resolve_request};
use crate::engine::model::MatchContext;
use crate::engine::namespace::{Options, evaluate};
use crate::engine::pipeline::MonotonicClock;
use crate::engine::testing::MocksOnly;

/// Compute the answer (shared with tests).
pub fn answer(args: &ResolveArgs) -> Result<Resolution, Failure> {
    let catalog = read_catalog(args.inputs.catalog.as_deref())?;
    let m = read(&args.inputs.files, args.inputs.recursive).map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let ns = m
        .choose_namespace(args.inputs.namespace.as_deref())
        .map_err(Failure::usage)?;
    let names = catalog_names(&catalog);
    let clock = MonotonicClock::default();
    let eval = evaluate(
        &m.objects(&ns),
        &Options {
            catalog: names.as_ref(),
            provider: &MocksOnly,
            clock: &clock,
            run_all_tests: false,
            known_verdict: None,
        },
    );
    let ctx = MatchContext {
        team_alias: args.team.clone(),
        key_alias: args.key.clone(),
        model: args.model.clone(),
        tags: if args.tags.is_empty() {
            None
        } else {
            Some(args.tags.clone())
        },
    };
    Ok(resolve_request(
        &eval.attachment_list(),
        &eval.production,
        &ctx,
    ))
}

/// `resolve`.
pub fn run(args: &ResolveArgs) -> Result<i32, Failure> {
    let r = answer(args)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&r).unwrap_or_default()),
        Output::Text => {
            if r.matched_policies.is_empty() {
                println!("no policy applies to this request");
            } else {
                println!(
                    "{:<4} {:<32} {:<40} GUARDRAILS",
                    "#", "POLICY", "MATCHED VIA"
                );
                for (i, p) in r.matched_policies.iter().enumerate() {
                    println!(
                        "{:<4} {:<32} {:<40} {}",
                        i + 1,
                        p.policy_name,
                        p.matched_via,
                        p.guardrails_added.join(",")
                    );
                }
            }
            println!(
                "effective guardrails: {}",
                if r.effective_guardrails.is_empty() {
                    "(none)".to_string()
                } else {
                    r.effective_guardrails.join(", ")
                }
            );
        }
    }
    Ok(0)
}
