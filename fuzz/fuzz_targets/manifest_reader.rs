//! Bytes (UTF-8, lossily) → the manifest reader (`cli::manifests::parse_into`, what
//! `validate`, `render`, `resolve` and `test` read files with) → on success, `validate`'s
//! checks (`cli::validate::check`), without and with a guardrail catalog.
//!
//! Sane output: every object's origin is this file with a 1-based document index; an object is
//! kept exactly when it has no schema errors; every schema error is a validate error; `valid`
//! means no errors; a namespace's objects are the well-formed ones filed under it.
#![no_main]

use std::collections::BTreeSet;

use guardrail_operator::cli::manifests::{Loaded, Manifests, parse_into};
use guardrail_operator::cli::validate::{Outcome, check};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.yaml";

fn loaded_sane<T>(list: &[Loaded<T>], kind: &str, outcome: &Outcome) {
    for l in list {
        assert_eq!(l.origin.file, FILE);
        assert!(l.origin.document >= 1, "documents are 1-based");
        assert_eq!(l.kind, kind);
        assert_eq!(
            l.object.is_some(),
            l.schema_errors.is_empty(),
            "{}: kept exactly when well-formed: {:?}",
            l.display(),
            l.schema_errors
        );
        for e in &l.schema_errors {
            assert!(
                outcome
                    .errors
                    .iter()
                    .any(|f| f.field == e.path && f.message == e.message),
                "schema error {e} of {} is not reported by validate",
                l.display()
            );
        }
    }
}

fn outcome_sane(m: &Manifests, outcome: &Outcome) {
    assert_eq!(outcome.valid, outcome.errors.is_empty());
    for f in outcome.errors.iter().chain(&outcome.warnings) {
        assert_eq!(f.file, FILE, "a finding from elsewhere: {f}");
        assert!(f.document >= 1, "documents are 1-based: {f}");
        assert!(!f.message.is_empty(), "a finding without a message: {f:?}");
        let _ = f.to_string();
    }
    loaded_sane(&m.policies, "Policy", outcome);
    loaded_sane(&m.versions, "PolicyVersion", outcome);
    loaded_sane(&m.attachments, "PolicyAttachment", outcome);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut m = Manifests::default();
    if let Err(e) = parse_into(&text, FILE, &mut m) {
        assert!(e.to_string().starts_with(FILE), "{e}");
        return;
    }

    outcome_sane(&m, &check(&m, None));
    let catalog: BTreeSet<String> = [
        "pii-blocker",
        "prompt-injection",
        "toxicity-filter",
        "legacy-filter",
        "audit-logger",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    outcome_sane(&m, &check(&m, Some(&catalog)));

    let namespaces = m.namespaces();
    let mut kept = 0;
    for ns in &namespaces {
        let o = m.objects(ns);
        kept += o.policies.len() + o.versions.len() + o.attachments.len();
    }
    let well_formed = m.policies.iter().filter(|l| l.object.is_some()).count()
        + m.versions.iter().filter(|l| l.object.is_some()).count()
        + m.attachments.iter().filter(|l| l.object.is_some()).count();
    assert_eq!(
        kept, well_formed,
        "every well-formed object is in one namespace"
    );
    match namespaces.len() {
        0 | 1 => assert!(m.choose_namespace(None).is_ok()),
        _ => assert!(m.choose_namespace(None).is_err()),
    }
});
