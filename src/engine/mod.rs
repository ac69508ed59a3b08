//! The pure core: LiteLLM's policy semantics and the operator's lifecycle decisions.
//!
//! No Kubernetes client, no I/O, no clock (durations come through [`pipeline::Clock`]).
//! The controller, the webhook and the CLI all call these functions: one implementation of
//! every rule.

pub mod attach;
pub mod condition;
pub mod inherit;
pub mod litellm;
pub mod model;
pub mod pipeline;
pub mod pyregex;
pub mod validate;
pub mod convert;
pub mod diff;
pub mod hash;
pub mod lifecycle;
pub mod testing;
