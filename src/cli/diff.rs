//! `diff`: LiteLLM's version compare (`/policies/compare`) of two versions of a policy.

use super::manifests::read;
use super::{DiffArgs, Failure, Output};
use crate::engine::convert::version_content;
use crate::engine::diff::compare;

/// `diff`.
pub fn run(args: &DiffArgs) -> Result<i32, Failure> {
    let m = read(&args.inputs.files, args.inputs.recursive).map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let ns = m
        .choose_namespace(args.inputs.namespace.as_deref())
        .map_err(Failure::usage)?;
    let objects = m.objects(&ns);
    let find = |v: i64| {
        let found = objects
            .versions
            .iter()
            .find(|x| x.spec.policy == args.policy && x.spec.version == v);
        let Some(found) = found else {
            let known: Vec<String> = objects
                .versions
                .iter()
                .filter(|x| x.spec.policy == args.policy)
                .map(|x| x.spec.version.to_string())
                .collect();
            return Err(Failure::usage(format!(
                "policy '{}' has no version {v} in namespace {ns}; versions found: {}",
                args.policy,
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
    let (a, b) = (find(args.a)?, find(args.b)?);
    let diffs = compare(&a, &b);
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"policy": args.policy, "version_a": args.a, "version_b": args.b, "field_diffs": diffs})).unwrap_or_default()
        ),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&diffs).unwrap_or_default()),
        Output::Text => {
            if diffs.is_empty() {
                println!("versions {} and {} of policy '{}' have the same content", args.a, args.b, args.policy);
            }
            for (field, d) in &diffs {
                println!("{field}:");
                println!("  - version {}: {}", args.a, d.version_a);
                println!("  + version {}: {}", args.b, d.version_b);
            }
        }
    }
    Ok(0)
}
