//! The controller: reconciles namespaces.
//!
//! Production selection is a fixpoint over all policies of a namespace (api.md §3), so the unit
//! of work is the namespace: any change to a cached object queues its namespace; a worker
//! reconciles queued namespaces (debounced, with backoff on errors), but only while this
//! replica holds the leader lease. Every decision comes from `crate::engine`. The caches, the
//! lease and the process around it belong to the runtime (the composition root).

pub mod events;
pub mod metrics;
pub mod queue;
pub mod reconcile;
pub mod written;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use futures::Stream;
use kube::ResourceExt;
use tracing::Instrument;

use metrics::ErrorLabels;
pub use metrics::Metrics;
pub use queue::{Signals, Timing};
pub use reconcile::{Config, Context};

/// Controller errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The namespace's evaluation did not finish (a panic in the engine: a bug).
    #[error("evaluating the namespace failed: {0}")]
    Evaluation(String),
}

impl Error {
    /// Worth retrying soon: the API server was unreachable, overloaded or raced us (5xx, 429,
    /// 409, connection errors), as opposed to a refusal that only a change can fix.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            Error::Write { source, .. } | Error::Client(source) => source,
            Error::Evaluation(_) => return false,
        };
        match source {
            kube::Error::Api(s) => s.code >= 500 || s.code == 429 || s.code == 409,
            _ => true,
        }
    }

    /// Static label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Write {
                source: kube::Error::Api(s),
                ..
            } if s.is_conflict() => "conflict",
            Error::Write {
                source: kube::Error::Api(s),
                ..
            } if s.is_forbidden() => "forbidden",
            Error::Write { .. } => "write",
            Error::Client(_) => "client",
            Error::Evaluation(_) => "evaluation",
        }
    }
}

impl queue::Failure for Error {
    fn is_transient(&self) -> bool {
        Error::is_transient(self)
    }
}

/// Reconcile the namespaces `events` name (and every known namespace on taking the lead and
/// at each resync) until `signals.stop`.
pub async fn run(
    ctx: Arc<Context>,
    events: impl Stream<Item = Vec<String>> + Send + 'static,
    timing: Timing,
    signals: Signals,
) {
    let known = || all_namespaces(&ctx);
    let lost_lead = || {
        // What a follower saw may be stale when it leads again: the cascade starts from the
        // next reconcile's view (a deletion missed meanwhile leaves garbage, never a wrong
        // gateway).
        if let Ok(mut m) = ctx.seen_policies.lock() {
            m.clear();
        }
    };
    let reconcile = |ns: String| {
        let ctx = ctx.clone();
        let span = tracing::info_span!("reconcile", namespace = %ns);
        async move {
            let started = Instant::now();
            ctx.metrics.reconciles.inc();
            let result = reconcile::reconcile_namespace(&ctx, &ns).await;
            ctx.metrics
                .duration
                .observe(started.elapsed().as_secs_f64());
            if let Err(e) = &result {
                ctx.metrics
                    .errors
                    .get_or_create(&ErrorLabels {
                        error: e.metric_label(),
                    })
                    .inc();
            }
            result
        }
        .instrument(span)
    };
    queue::run(events, timing, signals, known, lost_lead, reconcile).await;
}

fn all_namespaces(ctx: &Context) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    set.extend(ctx.policies.namespaces());
    set.extend(ctx.versions.namespaces());
    set.extend(ctx.attachments.namespaces());
    set.extend(ctx.configmaps.state().iter().filter_map(|o| o.namespace()));
    set.extend(ctx.catalogs.state().iter().filter_map(|o| o.namespace()));
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status {
                code,
                message: "m".into(),
                reason: match code {
                    409 => "Conflict",
                    403 => "Forbidden",
                    _ => "Other",
                }
                .into(),
                ..Default::default()
            }
            .into(),
        )
    }

    #[test]
    fn overload_races_and_outages_are_transient_refusals_are_not() {
        let write = |code| Error::Write {
            what: "x".into(),
            source: api(code),
        };
        for code in [500, 503, 504, 429, 409] {
            assert!(write(code).is_transient(), "{code}");
        }
        for code in [400, 403, 404, 422] {
            assert!(!write(code).is_transient(), "{code}");
        }
        assert_eq!(write(409).metric_label(), "conflict");
        assert_eq!(write(403).metric_label(), "forbidden");
        assert_eq!(write(422).metric_label(), "write");
        assert_eq!(Error::Client(api(500)).metric_label(), "client");
        // Not an API answer at all (connection refused, timeouts): transient.
        let io = kube::Error::Service(Box::new(std::io::Error::other("connection refused")));
        assert!(Error::Client(io).is_transient());
    }
}
