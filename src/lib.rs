//! guardrail-operator: LiteLLM guardrail policies as Kubernetes resources.
//!
//! Layering: [`api`] (CRD types) ← [`engine`] (pure decisions, no I/O) ← [`cli`] / controller /
//! webhook. The engine never sees a Kubernetes client, the network or a clock.

pub mod api;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod webhook;
