//! The composition root of `guardrail-operator run`: the start-up guards, the shared caches,
//! the metrics registry, leader election, the probe server and shutdown. It starts the
//! controller and the webhook as siblings; neither knows the other.

pub mod allocator;
pub mod backoff;
pub mod caches;
pub mod leader;
pub mod permissions;
pub mod probes;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::info;

use crate::api::Policy;
use crate::controller::{self, Config, Context};
use crate::providers::{ProviderFactory, default_provider};
use crate::webhook::{self, AdmissionMetrics, WebhookOptions, WebhookState};
use caches::{Caches, Scope};
pub use leader::LeaseOptions;
use leader::{Leadership, LeaseError};

/// Why the operator could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Permissions(String),
    #[error(
        "the CRDs are not installed or not readable ({0}); install crds/ (or the Helm chart) first"
    )]
    CrdsMissing(#[source] kube::Error),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("cannot serve /metrics, /healthz and /readyz on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Options of `run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: Config,
    /// Watch one namespace only (None: all).
    pub namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    pub http_addr: std::net::SocketAddr,
    /// Lease for leader election (None: no election, this replica always leads).
    pub lease: Option<LeaseOptions>,
    /// Wait this long after a change before reconciling its namespace (batches bursts).
    pub debounce: Duration,
    /// Reconcile every namespace this often even without changes.
    pub resync: Duration,
    /// Serve the admission webhook.
    pub webhook: Option<WebhookOptions>,
}

/// Start-up guards: every rule we will use, and the CRDs, checked now and named if missing
/// (instead of scattered 403s or a crash loop of watch errors later).
async fn guard(client: &Client, opts: &RunOptions) -> Result<(), Error> {
    let (missing, user) = permissions::missing(client, &permissions::required(opts)).await;
    if !missing.is_empty() {
        return Err(Error::Permissions(permissions::describe(
            &missing,
            user.as_deref(),
        )));
    }
    let probe: Api<Policy> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    probe
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(Error::CrdsMissing)?;
    Ok(())
}

/// Run the operator until SIGTERM/SIGINT. `provider` builds the guardrails that run in test
/// pipelines (default: [`default_provider`]).
pub async fn run(
    client: Client,
    opts: RunOptions,
    provider: Option<ProviderFactory>,
) -> Result<(), Error> {
    guard(&client, &opts).await?;
    let provider = provider.unwrap_or_else(default_provider);

    // One registry; each component registers into its own sub-registry (same names).
    let mut registry = Registry::with_prefix("guardrail");
    let leader_gauge = Gauge::default();
    registry.register(
        "leader",
        "1 while this replica holds the leader lease",
        leader_gauge.clone(),
    );
    let controller_metrics =
        controller::Metrics::register(registry.sub_registry_with_labels(std::iter::empty()));
    let admission_metrics =
        AdmissionMetrics::register(registry.sub_registry_with_labels(std::iter::empty()));
    let registry = Arc::new(registry);

    let (caches, events) = Caches::start(
        &client,
        &Scope {
            namespace: opts.namespace.as_deref(),
            catalog_name: opts.config.catalog_name.as_deref(),
            gateway_deployment: opts.config.gateway_deployment.as_deref(),
        },
    );

    let leadership = match &opts.lease {
        None => Leadership::sole(&leader_gauge),
        Some(lease) => Leadership::elect(&client, lease, leader_gauge).await?,
    };

    // Probes and metrics.
    let listener = tokio::net::TcpListener::bind(opts.http_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: opts.http_addr,
            source,
        })?;
    info!(addr = %opts.http_addr, "serving /metrics, /healthz, /readyz");
    let (stop_tx, stop_rx) = watch::channel(false);
    let probes = {
        let app = probes::router(probes::State {
            registry,
            ready: caches.ready.clone(),
        });
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        })
    };

    // The webhook: every replica answers reviews from the shared caches.
    let webhook = opts.webhook.clone().map(|w| {
        let state = Arc::new(WebhookState {
            policies: caches.policies.clone(),
            versions: caches.versions.clone(),
            attachments: caches.attachments.clone(),
            catalogs: opts
                .config
                .catalog_name
                .as_ref()
                .map(|_| caches.catalogs.clone()),
            catalog_name: opts.config.catalog_name.clone(),
            provider: provider.clone(),
            metrics: admission_metrics,
            budget_seconds: w.budget_seconds,
            catalog_cache: Default::default(),
            slots: WebhookState::review_slots(),
        });
        tokio::spawn(webhook::tls::run(client.clone(), w, state, stop_rx.clone()))
    });

    // The controller: reconciles while this replica leads.
    let ctx = Arc::new(Context {
        client: client.clone(),
        config: opts.config.clone(),
        policies: caches.policies,
        versions: caches.versions,
        attachments: caches.attachments,
        configmaps: caches.configmaps,
        catalogs: caches.catalogs,
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "guardrail-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        metrics: controller_metrics,
        provider,
        seen_policies: Default::default(),
        reported_undecodable: Default::default(),
        written: Default::default(),
    });
    let controller = tokio::spawn(controller::run(
        ctx,
        events,
        controller::Timing {
            debounce: opts.debounce,
            resync: opts.resync,
        },
        controller::Signals {
            ready: caches.ready.clone(),
            leader: leadership.is_leader.clone(),
            stop: stop_rx,
        },
    ));

    shutdown_signal().await;
    info!("shutting down: finishing the current reconcile");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(25), controller).await;
    leadership.resign(&client, opts.lease.as_ref()).await;
    let _ = probes.await;
    if let Some(t) = webhook {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
