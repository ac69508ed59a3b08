//! Integration tests against the real test control plane (tools/testcp):
//! kube-apiserver 1.37 + etcd + garbage-collector/namespace controllers.
//!
//! Built only with `--features testcp`. Run everything with
//! `scripts/test-all.sh`, or by hand:
//!
//! ```text
//! eval "$(scripts/testcp-up.sh)"
//! export HELM=$(scripts/helm-build.sh)
//! cargo test --features testcp --test integration
//! scripts/testcp-down.sh
//! ```
//!
//! Without a running control plane these tests fail (never skip).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chart;
mod common;
mod controller;
mod gitops;
mod gitops_follow;
mod readme;
// mod reliability;
mod security;
mod smoke;
mod verbs;
mod webhook;
