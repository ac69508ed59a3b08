//! Condition types and reasons (kstatus-compatible; api.md §6), and the condition type itself.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const TESTED: &str = "Tested";
pub const PROMOTED: &str = "Promoted";
pub const GATEWAY_SYNCED: &str = "GatewaySynced";

pub mod reasons {
    pub const RECONCILED: &str = "Reconciled";
    pub const RECONCILING: &str = "Reconciling";
    pub const RETRYING: &str = "Retrying";
    pub const POLICY_NOT_FOUND: &str = "PolicyNotFound";
    pub const NO_PRODUCTION_VERSION: &str = "NoProductionVersion";
    pub const DUPLICATE_VERSION: &str = "DuplicateVersion";
    pub const SUPERSEDED: &str = "Superseded";
    pub const INVALID: &str = "Invalid";
    pub const TESTS_FAILED: &str = "TestsFailed";
    pub const TESTS_PASSED: &str = "TestsPassed";
    pub const NO_TESTS: &str = "NoTests";
    pub const WAITING_FOR_REFERENCES: &str = "WaitingForReferences";
    pub const PROMOTED: &str = "Promoted";
    pub const NOT_REQUESTED: &str = "NotRequested";
    pub const INVALID_TRANSITION: &str = "InvalidTransition";
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    pub const BUNDLE_REJECTED: &str = "BundleRejected";
    /// A policy left production because a reference of its production version broke (its
    /// parent deleted or rolled back, a guardrail gone from the catalog).
    pub const REFERENCE_BROKEN: &str = "ReferenceBroken";
    /// An object the operator's types refuse (stored through an older CRD); it is ignored.
    pub const UNDECODABLE: &str = "Undecodable";
    pub const GATEWAY_SYNCED: &str = "GatewaySynced";
    pub const GATEWAY_ROLLING: &str = "Rolling";
    pub const GATEWAY_NOT_FOUND: &str = "GatewayNotFound";
}

/// Every word above, and a condition's three statuses: what [`Word`] shares instead of copying.
const KNOWN: &[&str] = &[
    READY,
    RECONCILING,
    STALLED,
    TESTED,
    PROMOTED,
    GATEWAY_SYNCED,
    "True",
    "False",
    "Unknown",
    reasons::RECONCILED,
    reasons::RETRYING,
    reasons::POLICY_NOT_FOUND,
    reasons::NO_PRODUCTION_VERSION,
    reasons::DUPLICATE_VERSION,
    reasons::SUPERSEDED,
    reasons::INVALID,
    reasons::TESTS_FAILED,
    reasons::TESTS_PASSED,
    reasons::NO_TESTS,
    reasons::WAITING_FOR_REFERENCES,
    reasons::NOT_REQUESTED,
    reasons::INVALID_TRANSITION,
    reasons::PAYLOAD_TOO_LARGE,
    reasons::BUNDLE_REJECTED,
    reasons::REFERENCE_BROKEN,
    reasons::UNDECODABLE,
    reasons::GATEWAY_ROLLING,
    reasons::GATEWAY_NOT_FOUND,
];

/// A condition's type, status or reason. The ones the operator writes come from the short list
/// above and are shared, not allocated per object: every cached object carries several
/// conditions, and at 10,000 PolicyVersions their words alone were megabytes. Any other text
/// (a condition another tool wrote) is kept as it came. It reads, compares and serialises as a
/// plain string.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Word(Cow<'static, str>);

/// The static copy of `s`, when it is a known word.
fn known(s: &str) -> Option<&'static str> {
    KNOWN.iter().find(|k| **k == s).copied()
}

impl Word {
    /// The shared copy of `s` when it is a known word, else an owned one.
    pub fn new(s: &str) -> Word {
        Word(known(s).map_or_else(|| Cow::Owned(s.to_string()), Cow::Borrowed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Word {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Word {
    fn from(s: &str) -> Word {
        Word::new(s)
    }
}

impl From<String> for Word {
    fn from(s: String) -> Word {
        Word(known(&s).map_or(Cow::Owned(s), Cow::Borrowed))
    }
}

impl PartialEq<str> for Word {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Word {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Word {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Word {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Word;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Word, E> {
                Ok(Word::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Word, E> {
                Ok(Word::from(v))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// A standard `metav1.Condition` (same fields, same JSON in the same order, same schema: see
/// `schema::conditions`; absent strings read as empty, as k8s-openapi reads them), with its type,
/// status and reason as shared [`Word`]s.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub last_transition_time: Time,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub reason: Word,
    #[serde(default)]
    pub status: Word,
    #[serde(default, rename = "type")]
    pub type_: Word,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_words_are_shared_and_others_kept() {
        let ready: Word = serde_json::from_str("\"Ready\"").unwrap();
        assert!(matches!(ready.0, Cow::Borrowed(_)));
        assert_eq!(ready, READY);
        let other: Word = serde_json::from_str("\"Degraded\"").unwrap();
        assert!(matches!(other.0, Cow::Owned(_)));
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"Degraded\"");
    }

    #[test]
    fn a_condition_reads_and_writes_like_metav1() {
        for text in [
            r#"{"type":"Ready","status":"True","reason":"Reconciled","message":"m","observedGeneration":3,"lastTransitionTime":"2026-12-06T23:11:17Z"}"#,
            r#"{"type":"X","status":"Unknown","reason":"","message":"","lastTransitionTime":"2026-12-06T23:11:17Z"}"#,
            r#"{"lastTransitionTime":"2026-12-06T23:11:17Z"}"#,
        ] {
            let ours: Condition = serde_json::from_str(text).unwrap();
            let theirs: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition =
                serde_json::from_str(text).unwrap();
            // Byte for byte: the same fields in the same order.
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&theirs).unwrap()
            );
        }
        assert!(serde_json::from_str::<Condition>(r#"{"type":"Ready"}"#).is_err());
    }
}
