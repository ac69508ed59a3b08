//! `guardrail-operator run`: the controller.
//!
//! Production selection is a fixpoint over all policies of a namespace (api.md §3), so the unit
//! of work is the namespace: kube-runtime reflectors cache Policies, PolicyVersions,
//! PolicyAttachments and the ConfigMaps we own or read (the guardrail catalog); any change queues
//! its namespace; a worker reconciles queued namespaces (debounced, with backoff on errors), but
//! only while this replica holds the leader lease. Every decision comes from `crate::engine`.

pub mod backoff;
pub mod http;
pub mod metrics;
pub mod permissions;
pub mod reconcile;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Mutex, Notify, watch};
use tracing::{error, info, warn};

use crate::api::labels::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{Policy, PolicyAttachment, PolicyVersion};
use crate::cache::Decoded;
use metrics::{ErrorLabels, Metrics};
pub use reconcile::Config;
use reconcile::Context;

/// Controller errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the CRDs are not installed or not readable ({0}); install crds/ (or the Helm chart) first"
    )]
    CrdsMissing(kube::Error),
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("leader election: {0}")]
    Lease(String),
    #[error("{0}")]
    Permissions(String),
}

impl Error {
    /// Worth retrying soon: the API server was unreachable, overloaded or raced us (5xx, 429,
    /// 409, connection errors), as opposed to a refusal that only a change can fix.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            Error::Write { source, .. } | Error::Client(source) => source,
            _ => return false,
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
            Error::CrdsMissing(_) => "crds_missing",
            Error::Client(_) => "client",
            Error::Lease(_) => "lease",
            Error::Permissions(_) => "permissions",
        }
    }
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

/// How the webhook gets its serving certificate.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// `tls.crt` and `tls.key` in a directory (cert-manager or any mount), re-read on change.
    Dir(std::path::PathBuf),
    /// Operator-managed: a CA and serving certificate in a Secret, renewed automatically.
    Managed {
        secret_namespace: String,
        secret_name: String,
        dns: Vec<String>,
        ips: Vec<std::net::IpAddr>,
        days: i64,
        /// ValidatingWebhookConfiguration whose caBundle is kept current.
        webhook_config: Option<String>,
    },
}

/// Webhook options.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    pub addr: std::net::SocketAddr,
    pub certs: CertSource,
    /// Seconds the tests of one review may take.
    pub budget_seconds: f64,
    /// How often an operator-managed certificate is checked (renewal, or a newer one in the
    /// Secret from another replica).
    pub cert_check: Duration,
}

#[derive(Clone, Debug)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration_seconds: u64,
}

/// Namespaces waiting for a reconcile, with when they are due.
#[derive(Default)]
struct Queue {
    due: BTreeMap<String, Instant>,
    failures: BTreeMap<String, u32>,
    /// How long the last reconcile of each namespace took: a burst of changes waits at least
    /// that long, so big namespaces batch more and re-render less.
    cost: BTreeMap<String, Duration>,
}

/// Drop what the caches never read (managed fields, kubectl's last-applied copy): at 10,000
/// objects this is most of the operator's memory.
fn slim<K: ResourceExt>(o: &mut K) {
    o.managed_fields_mut().clear();
    o.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Merge a watcher stream into the reflector and turn each event into a namespace to queue.
fn namespaces_of<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Vec<String>> + Send
where
    K: ResourceExt + Clone + Send + 'static,
{
    stream.filter_map(|ev| async move {
        match ev {
            Ok(
                watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o),
            ) => Some(o.namespace().into_iter().collect()),
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "watch error; retrying");
                None
            }
        }
    })
}

/// Run the controller until SIGTERM/SIGINT.
pub async fn run(
    client: Client,
    opts: RunOptions,
    provider: Option<crate::webhook::ProviderFactory>,
) -> Result<(), Error> {
    // Startup guard: every rule we will use, checked now and named if missing.
    let (missing, user) = permissions::missing(&client, &permissions::required(&opts)).await;
    if !missing.is_empty() {
        return Err(Error::Permissions(permissions::describe(
            &missing,
            user.as_deref(),
        )));
    }
    // Startup guard: a missing CRD gives one clear error instead of a crash loop of watch errors.
    let probe: Api<Policy> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    probe
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(Error::CrdsMissing)?;

    let metrics = Metrics::default();
    type Apis = (
        Api<Decoded<Policy>>,
        Api<Decoded<PolicyVersion>>,
        Api<Decoded<PolicyAttachment>>,
        Api<ConfigMap>,
    );
    let api = |c: &Client| -> Apis {
        match &opts.namespace {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
            ),
            None => (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
            ),
        }
    };
    let (pol_api, ver_api, att_api, cm_api) = api(&client);
    let (pol_store, pol_writer) = reflector::store::<Decoded<Policy>>();
    let (ver_store, ver_writer) = reflector::store::<Decoded<PolicyVersion>>();
    let (att_store, att_writer) = reflector::store::<Decoded<PolicyAttachment>>();
    let (cm_store, cm_writer) = reflector::store::<ConfigMap>();
    let (catalog_store, catalog_writer) = reflector::store::<ConfigMap>();

    // Watches are re-established at least every minute: a connection that silently stops
    // delivering (a network black hole, not a reset) is noticed within ~65 s, not kube's 295 s.
    let cfg = watcher::Config::default().timeout(60);
    let pol = namespaces_of(
        reflector::reflector(pol_writer, watcher(pol_api, cfg.clone()).modify(slim))
            .backoff(backoff::watch()),
    );
    let ver = namespaces_of(
        reflector::reflector(ver_writer, watcher(ver_api, cfg.clone()).modify(slim))
            .backoff(backoff::watch()),
    );
    let att = namespaces_of(
        reflector::reflector(att_writer, watcher(att_api, cfg.clone()).modify(slim))
            .backoff(backoff::watch()),
    );
    let owned = namespaces_of(
        reflector::reflector(
            cm_writer,
            watcher(
                cm_api.clone(),
                cfg.clone()
                    .labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")),
            )
            .modify(slim),
        )
        .backoff(backoff::watch()),
    );
    let mut streams: Vec<std::pin::Pin<Box<dyn Stream<Item = Vec<String>> + Send>>> =
        vec![Box::pin(pol), Box::pin(ver), Box::pin(att), Box::pin(owned)];
    if let Some(name) = &opts.config.catalog_name {
        let catalog = namespaces_of(
            reflector::reflector(
                catalog_writer,
                watcher(cm_api, cfg.clone().fields(&format!("metadata.name={name}"))).modify(slim),
            )
            .backoff(backoff::watch()),
        );
        streams.push(Box::pin(catalog));
    }
    if let Some(name) = &opts.config.gateway_deployment {
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = match &opts.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let rollouts = namespaces_of(
            watcher(
                deployments,
                cfg.clone().fields(&format!("metadata.name={name}")),
            )
            .backoff(backoff::watch()),
        );
        streams.push(Box::pin(rollouts));
    }
    let mut events = futures::stream::select_all(streams);

    let stores_ready = Arc::new(tokio::sync::OnceCell::<()>::new());
    let ready_flag = stores_ready.clone();
    let (ps, vs, as_, cs) = (
        pol_store.clone(),
        ver_store.clone(),
        att_store.clone(),
        cm_store.clone(),
    );
    let catalog_configured = opts.config.catalog_name.is_some();
    let cat = catalog_store.clone();
    tokio::spawn(async move {
        let _ = ps.wait_until_ready().await;
        let _ = vs.wait_until_ready().await;
        let _ = as_.wait_until_ready().await;
        let _ = cs.wait_until_ready().await;
        if catalog_configured {
            let _ = cat.wait_until_ready().await;
        }
        let _ = ready_flag.set(());
    });

    let reporter = Reporter {
        controller: "guardrail-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        config: opts.config.clone(),
        policies: pol_store,
        versions: ver_store,
        attachments: att_store,
        configmaps: cm_store,
        catalogs: catalog_store,
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        provider: provider.unwrap_or_else(crate::webhook::default_provider),
        seen_policies: Default::default(),
        reported_undecodable: Default::default(),
    });

    // Leadership.
    let (leader_tx, leader_rx) = watch::channel(opts.lease.is_none());
    let mut lease_task = None;
    if let Some(lease) = &opts.lease {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &lease.name)
            .with_namespace(&lease.namespace)
            .with_identity(&lease.identity)
            .with_duration(lease.duration_seconds)
            .with_grace(lease.duration_seconds.div_ceil(3).max(1))
            .build()
            .await
            .map_err(|e| Error::Lease(e.to_string()))?;
        let (mut rx, task) = manager.watch().await;
        let tx = leader_tx.clone();
        tokio::spawn(async move {
            loop {
                let is = *rx.borrow_and_update();
                let _ = tx.send(is);
                if rx.changed().await.is_err() {
                    let _ = tx.send(false);
                    break;
                }
            }
        });
        lease_task = Some(task);
    }

    // HTTP: metrics and probes.
    let http_state = http::State {
        metrics: metrics.clone(),
        ready: stores_ready.clone(),
    };
    let listener = tokio::net::TcpListener::bind(opts.http_addr)
        .await
        .map_err(|e| Error::Lease(format!("cannot listen on {}: {e}", opts.http_addr)))?;
    info!(addr = %opts.http_addr, "serving /metrics, /healthz, /readyz");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        let app = http::router(http_state);
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.changed().await;
            })
            .await;
    });

    let webhook_task = match &opts.webhook {
        None => None,
        Some(w) => {
            let state = Arc::new(crate::webhook::WebhookState {
                policies: ctx.policies.clone(),
                versions: ctx.versions.clone(),
                attachments: ctx.attachments.clone(),
                catalogs: opts
                    .config
                    .catalog_name
                    .as_ref()
                    .map(|_| ctx.catalogs.clone()),
                catalog_name: opts.config.catalog_name.clone(),
                provider: ctx.provider.clone(),
                metrics: metrics.admission.clone(),
                budget_seconds: w.budget_seconds,
                catalog_cache: Default::default(),
            });
            Some(tokio::spawn(webhook_main(
                client.clone(),
                w.clone(),
                state,
                stop_rx.clone(),
            )))
        }
    };

    let queue = Arc::new(Mutex::new(Queue::default()));
    let wake = Arc::new(Notify::new());

    // Events → queue.
    let (q, w, debounce) = (queue.clone(), wake.clone(), opts.debounce);
    let feeder = tokio::spawn(async move {
        while let Some(namespaces) = events.next().await {
            let mut q = q.lock().await;
            for ns in namespaces {
                let wait = debounce.max(q.cost.get(&ns).copied().unwrap_or_default());
                let due = Instant::now() + wait;
                // New information ends an error backoff early (a fix, or the API server being
                // back: its relist arrives as events); a pending debounce is kept.
                let slot = q.due.entry(ns).or_insert(due);
                *slot = (*slot).min(due);
            }
            drop(q);
            w.notify_one();
        }
    });

    // Worker.
    let worker = {
        let (queue, wake, ctx, ready) = (
            queue.clone(),
            wake.clone(),
            ctx.clone(),
            stores_ready.clone(),
        );
        let mut leader = leader_rx.clone();
        let mut stop = stop_rx.clone();
        let resync = opts.resync;
        tokio::spawn(async move {
            let mut last_resync = Instant::now();
            let mut was_leader = false;
            loop {
                if *stop.borrow() {
                    break;
                }
                let is_leader = *leader.borrow();
                ctx.metrics.leader.set(i64::from(is_leader));
                if is_leader
                    && ready.get().is_some()
                    && (!was_leader || last_resync.elapsed() >= resync)
                {
                    // New leader or periodic resync: queue every namespace we know.
                    let mut q = queue.lock().await;
                    for ns in all_namespaces(&ctx) {
                        q.due.entry(ns).or_insert_with(Instant::now);
                    }
                    last_resync = Instant::now();
                }
                if !is_leader && was_leader {
                    // What a follower saw may be stale when it leads again: the cascade starts
                    // from the next reconcile's view (a deletion missed meanwhile leaves
                    // garbage, never a wrong gateway).
                    if let Ok(mut m) = ctx.seen_policies.lock() {
                        m.clear();
                    }
                }
                was_leader = is_leader && ready.get().is_some();
                let next = if was_leader {
                    take_due(&queue).await
                } else {
                    Err(None)
                };
                match next {
                    Ok(ns) => {
                        let started = Instant::now();
                        ctx.metrics.reconciles.inc();
                        let result = reconcile::reconcile_namespace(&ctx, &ns).await;
                        ctx.metrics
                            .duration
                            .observe(started.elapsed().as_secs_f64());
                        let mut q = queue.lock().await;
                        q.cost
                            .insert(ns.clone(), started.elapsed().min(Duration::from_secs(5)));
                        match result {
                            Ok(()) => {
                                q.failures.remove(&ns);
                            }
                            Err(e) => {
                                ctx.metrics
                                    .errors
                                    .get_or_create(&ErrorLabels {
                                        error: e.metric_label(),
                                    })
                                    .inc();
                                let n = q.failures.entry(ns.clone()).or_insert(0);
                                *n += 1;
                                // Transient errors retry within 4 s; refusals back off to 5 min.
                                let cap = if e.is_transient() {
                                    Duration::from_secs(4)
                                } else {
                                    Duration::from_secs(300)
                                };
                                let delay =
                                    Duration::from_millis(250u64.saturating_mul(1 << (*n).min(10)))
                                        .min(cap);
                                error!(namespace = %ns, error = %e, retry_in = ?delay, "reconcile failed");
                                q.due.insert(ns, Instant::now() + delay);
                            }
                        }
                    }
                    Err(wait) => {
                        let sleep = wait
                            .unwrap_or(Duration::from_secs(1))
                            .min(Duration::from_secs(1));
                        tokio::select! {
                            _ = wake.notified() => {}
                            _ = leader.changed() => {}
                            _ = stop.changed() => {}
                            _ = tokio::time::sleep(sleep) => {}
                        }
                    }
                }
            }
        })
    };

    shutdown_signal().await;
    info!("shutting down: finishing the current reconcile");
    let _ = stop_tx.send(true);
    wake.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(25), worker).await;
    feeder.abort();
    drop(leader_rx);
    drop(leader_tx);
    if let Some(task) = lease_task {
        // Closing the channel ends the manager task; release the lease for a fast handover.
        task.abort();
        if let Some(lease) = &opts.lease {
            release_lease(&client, lease).await;
        }
    }
    let _ = http_task.await;
    if let Some(t) = webhook_task {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    info!("stopped");
    Ok(())
}

/// Serve the webhook: load or issue the certificate, keep it current, answer reviews.
async fn webhook_main(
    client: Client,
    w: WebhookOptions,
    state: Arc<crate::webhook::WebhookState>,
    mut stop: watch::Receiver<bool>,
) {
    use crate::webhook::{certs, server_config};
    // The certificate and key PEMs, from the files or the Secret (renewing it when due).
    let load = |client: Client, source: CertSource| async move {
        match &source {
            CertSource::Dir(dir) => certs::read_dir_pem(dir).map_err(|e| e.to_string()),
            CertSource::Managed {
                secret_namespace,
                secret_name,
                dns,
                ips,
                days,
                webhook_config,
            } => {
                let pem =
                    certs::ensure_secret(&client, secret_namespace, secret_name, dns, ips, *days)
                        .await
                        .map_err(|e| e.to_string())?;
                if let Some(cfg) = webhook_config {
                    certs::patch_ca_bundle(&client, cfg, &pem.ca)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok((pem.cert.into_bytes(), pem.key.into_bytes()))
            }
        }
    };
    let (tls, mut served) = loop {
        match load(client.clone(), w.certs.clone())
            .await
            .and_then(|(cert, key)| server_config(&cert, &key).map(|c| (c, cert)))
        {
            Ok((cfg, cert)) => {
                break (
                    axum_server::tls_rustls::RustlsConfig::from_config(cfg),
                    cert,
                );
            }
            Err(e) => {
                error!(error = %e, "webhook certificate unavailable; retrying in 5s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    // Keep the certificate current: serve whatever the files or the Secret hold now (a
    // cert-manager renewal, our own renewal when due, or another replica's).
    let reload_tls = tls.clone();
    let source = w.certs.clone();
    let mut reload_stop = stop.clone();
    let period = match &source {
        CertSource::Dir(_) => Duration::from_secs(10),
        CertSource::Managed { .. } => w.cert_check,
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = reload_stop.changed() => return,
            }
            let reloaded = match load(client.clone(), source.clone()).await {
                Ok((cert, _)) if cert == served => continue,
                Ok((cert, key)) => server_config(&cert, &key).map(|cfg| {
                    reload_tls.reload_from_config(cfg);
                    served = cert;
                }),
                Err(e) => Err(e),
            };
            match reloaded {
                Ok(()) => info!("webhook certificate reloaded"),
                Err(e) => {
                    warn!(error = %e, "cannot refresh the webhook certificate; keeping the current one")
                }
            }
        }
    });
    info!(addr = %w.addr, "serving the admission webhook");
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = crate::webhook::serve(w.addr, tls, state, shutdown).await {
        error!(error = %e, "the webhook server stopped");
    }
}

/// Release the lease by clearing its holder (only if we hold it).
async fn release_lease(client: &Client, lease: &LeaseOptions) {
    use k8s_openapi::api::coordination::v1::Lease;
    let api: Api<Lease> = Api::namespaced(client.clone(), &lease.namespace);
    if let Ok(l) = api.get(&lease.name).await
        && l.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
            == Some(lease.identity.as_str())
    {
        let patch = serde_json::json!({"spec": {"holderIdentity": null, "leaseTransitions": l.spec.as_ref().and_then(|s| s.lease_transitions)}});
        let _ = api
            .patch(
                &lease.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await;
    }
}

async fn take_due(queue: &Mutex<Queue>) -> Result<String, Option<Duration>> {
    let mut q = queue.lock().await;
    let now = Instant::now();
    let next = q
        .due
        .iter()
        .min_by_key(|(_, t)| **t)
        .map(|(ns, t)| (ns.clone(), *t));
    match next {
        Some((ns, t)) if t <= now => {
            q.due.remove(&ns);
            Ok(ns)
        }
        Some((_, t)) => Err(Some(t - now)),
        None => Err(None),
    }
}

fn all_namespaces(ctx: &Context) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    set.extend(ctx.policies.state().iter().filter_map(|o| o.namespace()));
    set.extend(ctx.versions.state().iter().filter_map(|o| o.namespace()));
    set.extend(ctx.attachments.state().iter().filter_map(|o| o.namespace()));
    set.extend(ctx.configmaps.state().iter().filter_map(|o| o.namespace()));
    set.extend(ctx.catalogs.state().iter().filter_map(|o| o.namespace()));
    set
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
