//! Prometheus metrics (prometheus-client) with bounded labels: controller stage names and
//! static error names, never object names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub kind: &'static str,
    pub result: &'static str,
}

/// The controller's metrics (registered by the runtime in its registry, prefix `guardrail_`).
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub versions_by_stage: Family<StageLabels, Gauge>,
    pub writes: Family<ResultLabels, Counter>,
    pub bundle_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::register(&mut Registry::default())
    }
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let versions_by_stage = Family::<StageLabels, Gauge>::default();
        let writes = Family::<ResultLabels, Counter>::default();
        let bundle_bytes = Gauge::default();
        registry.register(
            "reconcile_runs",
            "Namespace reconciles run",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Namespace reconciles that failed, by error",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a namespace reconcile",
            duration.clone(),
        );
        registry.register(
            "policy_versions",
            "PolicyVersions by achieved stage (last reconciled namespaces)",
            versions_by_stage.clone(),
        );
        registry.register(
            "writes",
            "Writes to the API server, by kind and result",
            writes.clone(),
        );
        registry.register(
            "configmap_bytes",
            "Size of the largest gateway bundle written",
            bundle_bytes.clone(),
        );
        Metrics {
            reconciles,
            errors,
            duration,
            versions_by_stage,
            writes,
            bundle_bytes,
        }
    }
}
