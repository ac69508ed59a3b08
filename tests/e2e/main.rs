//! End to end, the way users run it: the operator image (scripts/image-build.sh) started with
//! podman from the chart's own Pod spec, two replicas with leader election, the API server
//! calling the webhook inside a container; and a real LiteLLM 1.110.2 proxy enforcing the bundle
//! the operator wrote. A test binary of its own, run after the image is built:
//!
//! ```text
//! eval "$(scripts/testcp-up.sh)"
//! export HELM=$(scripts/helm-build.sh) GATEWAY_PYTHON=$(tests/e2e/setup-gateway.sh)
//! scripts/image-build.sh
//! cargo test --features e2e --test e2e -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../integration/common/mod.rs"]
mod common;
mod gateway;

mod image;
mod pod;
mod support;
