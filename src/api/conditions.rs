//! Condition types and reasons (kstatus-compatible; api.md §6).

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
