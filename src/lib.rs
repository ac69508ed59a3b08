//! guardrail-operator: LiteLLM guardrail policies as Kubernetes resources.
//!
//! Layering: [`api`] (CRD types) ← [`engine`] (pure decisions, no I/O) ← [`controller`],
//! [`webhook`] and [`cli`] (thin adapters), with [`providers`] and [`cache`] shared by them;
//! [`runtime`] composes the controller and the webhook into `guardrail-operator run`. The engine
//! never sees a Kubernetes client, the network or a clock.

pub mod api;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod providers;
pub mod runtime;
pub mod webhook;
