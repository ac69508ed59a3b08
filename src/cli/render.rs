//! `render`: the gateway bundle ConfigMap the operator would write — the same bytes, from the
//! same function (`engine::bundle::render`) the controller calls.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Failure, Output, RenderArgs, catalog_names, read_catalog};
use crate::api::labels::{CONTENT_HASH_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::engine::bundle::{self, Bundle};
use crate::engine::namespace::{Evaluation, Options, evaluate};
use crate::engine::pipeline::MonotonicClock;

/// Evaluate the inputs' namespace as the controller would on a fresh cluster.
pub fn evaluate_inputs(
    inputs: &super::Inputs,
) -> Result<(String, Evaluation, Option<crate::engine::catalog::Catalog>), Failure> {
    evaluate_from(
        inputs,
        &super::LiveArgs {
            live: false,
            kubeconfig: None,
            context: None,
        },
    )
}

/// Evaluate the objects from the -f files or, with `--live`, from the cluster.
pub fn evaluate_from(
    inputs: &super::Inputs,
    live: &super::LiveArgs,
) -> Result<(String, Evaluation, Option<crate::engine::catalog::Catalog>), Failure> {
    let catalog = read_catalog(inputs.catalog.as_deref())?;
    let (ns, objects) = super::objects_of(inputs, live)?;
    let eval = evaluate_objects(&objects, catalog.as_ref());
    Ok((ns, eval, catalog))
}

/// Evaluate objects as the controller would on a fresh cluster, with the catalog's
/// guardrails (names and content-filter providers).
pub fn evaluate_objects(
    objects: &crate::engine::namespace::Objects,
    catalog: Option<&crate::engine::catalog::Catalog>,
) -> Evaluation {
    let names = catalog.map(crate::engine::catalog::Catalog::names);
    let provider = super::test::provider(catalog);
    let clock = MonotonicClock::default();
    evaluate(
        objects,
        &Options {
            catalog: names.as_ref(),
            provider: provider.as_ref(),
            clock: &clock,
            run_all_tests: false,
            known_verdict: None,
        },
    )
}

/// The ConfigMap as the controller writes it (its generation annotation aside, which counts
/// writes in the cluster).
pub fn configmap(name: &str, ns: &str, b: &Bundle) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "annotations": {CONTENT_HASH_ANNOTATION: b.content_hash},
        },
        "data": b.data.iter().collect::<BTreeMap<_, _>>(),
    })
}

/// `render`.
pub fn run(args: &RenderArgs) -> Result<i32, Failure> {
    let (ns, eval, catalog) = evaluate_inputs(&args.inputs)?;
    let b = bundle::render(&eval);
    if let Err(rejected) = bundle::check(&b, &eval, catalog_names(&catalog).as_ref()) {
        return Err(Failure {
            message: format!("the operator would not write this bundle: {rejected}"),
            code: 1,
        });
    }
    if let Some(key) = &args.key {
        let Some(v) = b.data.get(key) else {
            return Err(Failure::usage(format!(
                "--key {key}: the bundle has only {}",
                b.data.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        print!("{v}");
        return Ok(0);
    }
    let cm = configmap(&args.bundle_name, &ns, &b);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&cm).unwrap_or_default()),
        Output::Yaml | Output::Text => {
            print!("{}", serde_saphyr::to_string(&cm).unwrap_or_default())
        }
    }
    Ok(0)
}
