//! Reliability against the real test control plane: the operator SIGKILLed at random points while
//! it converges, API-server restarts and network loss, two replicas with users editing, and the
//! webhook going away (failurePolicy). A test binary of its own, so cargo runs it after the
//! integration suite rather than beside it (these tests are long and load the machine).
//!
//! `scripts/test-all.sh` runs it; by hand (knobs: CRASH_KILLS, CRASH_OBJECTS, CRASH_SEED):
//!
//! ```text
//! eval "$(scripts/testcp-up.sh)"
//! cargo test --features testcp --test reliability -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../integration/common/mod.rs"]
mod common;
mod crash;
mod outage;
mod replicas;
mod repo;
mod starvation;
mod webhook_down;
