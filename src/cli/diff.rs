//! `diff`: LiteLLM's version compare (`/policies/compare`) of two versions of a policy.

use super::{DiffArgs, Failure, Output};
use crate::engine::convert::version_content;
use crate::engine::diff::compare;

/// `diff`.
pub fn run(args: &DiffArgs) -> Result<i32, Failure> {
    let (policy, a, b) = match (&args.policy, args.versions.as_slice()) {
        (Some(p), [a, b]) => (p.clone(), a, b),
        (None, [p, a, b]) => (p.clone(), a, b),
        _ => {
            return Err(Failure::usage(
                "give the policy and two versions: `diff --policy P A B` or `diff P A B`",
            ));
        }
    };
    let num = |v: &String| {
        v.parse::<i64>()
            .map_err(|_| Failure::usage(format!("{v} is not a version number")))
    };
    let (va, vb) = (num(a)?, num(b)?);
    let (ns, objects) = super::objects_of(&args.inputs, &args.live)?;
    let find = |v: i64| {
        let found = objects
            .versions
            .iter()
            .find(|x| x.spec.policy == policy && x.spec.version == v);
        let Some(found) = found else {
            let known: Vec<String> = objects
                .versions
                .iter()
                .filter(|x| x.spec.policy == policy)
                .map(|x| x.spec.version.to_string())
                .collect();
            return Err(Failure::usage(format!(
                "policy '{policy}' has no version {v} in namespace {ns}; versions found: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        version_content(&found.spec).map_err(|e| Failure {
            message: format!("version {v}: {e}"),
            code: 1,
        })
    };
    let (ca, cb) = (find(va)?, find(vb)?);
    let diffs = compare(&ca, &cb);
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"policy": policy, "version_a": va, "version_b": vb, "field_diffs": diffs})).unwrap_or_default()
        ),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&diffs).unwrap_or_default()),
        Output::Text => {
            if diffs.is_empty() {
                println!("versions {va} and {vb} of policy '{policy}' have the same content");
            }
            for (field, d) in &diffs {
                println!("{field}:");
                println!("  - version {va}: {}", d.version_a);
                println!("  + version {vb}: {}", d.version_b);
            }
        }
    }
    Ok(0)
}
