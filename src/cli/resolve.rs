//! `resolve`: what applies to a request, from the state the controller converges to.

use super::{Failure, Output, ResolveArgs};
use crate::engine::attach::{Resolution, resolve_request};
use crate::engine::model::MatchContext;

/// Compute the answer (shared with tests).
pub fn answer(args: &ResolveArgs) -> Result<Resolution, Failure> {
    let (_, eval, _) = super::render::evaluate_from(&args.inputs, &args.live)?;
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
