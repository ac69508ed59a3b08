//! The pure core: LiteLLM's policy semantics and the operator's lifecycle decisions.
//!
//! No Kubernetes client, no I/O, no clock (durations come through [`pipeline::Clock`]).
//! The controller, the webhook and the CLI all call these functions: one implementation of
//! every rule.

pub mod admission;
pub mod attach;
pub mod bundle;
pub mod catalog;
pub mod condition;
pub mod content_filter;
pub mod convert;
pub mod diff;
pub mod hash;
pub mod inherit;
pub mod json_depth;
pub mod lifecycle;
pub mod litellm;
pub mod model;
pub mod names;
pub mod namespace;
pub mod pipeline;
pub mod plan;
pub mod pyre;
pub mod pyregex;
pub mod resolver;
pub mod schema;
pub mod status;
pub mod testing;
pub mod validate;
