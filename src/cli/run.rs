//! `run`: start the operator (the controller and the webhook, see `crate::runtime`).

use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::{Failure, LogFormat, RunArgs};
use crate::controller::Config;
use crate::runtime::{self, LeaseOptions, RunOptions};
use crate::webhook::{CertSource, WebhookOptions};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube=warn,kube_lease_manager=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `run`.
pub fn run(args: &RunArgs) -> Result<i32, Failure> {
    crate::runtime::allocator::use_one_arena();
    init_logging(args.log_format);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "local".into());
        format!("{host}-{}", std::process::id())
    });
    let opts = RunOptions {
        config: Config {
            bundle_name: args.bundle_name.clone(),
            catalog_name: args.catalog_configmap.clone(),
            gateway_deployment: args.gateway_deployment.clone(),
            policy_configmaps: args.policy_configmaps,
        },
        namespace: args.namespace.clone(),
        http_addr: args.http_addr,
        lease: args.leader_elect.then(|| LeaseOptions {
            name: args.lease_name.clone(),
            namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            identity,
            duration_seconds: args.lease_seconds,
        }),
        debounce: Duration::from_millis(args.debounce_ms),
        resync: Duration::from_secs(args.resync_seconds),
        webhook: match args.webhook_addr {
            None => None,
            Some(addr) => Some(WebhookOptions {
                addr,
                budget_seconds: args.admission_budget_ms as f64 / 1000.0,
                cert_check: Duration::from_secs(args.webhook_cert_check_seconds.max(1)),
                certs: match (&args.webhook_cert_dir, &args.webhook_secret) {
                    (Some(dir), _) => CertSource::Dir(dir.into()),
                    (None, Some(secret)) => CertSource::Managed {
                        secret_namespace: args
                            .webhook_secret_namespace
                            .clone()
                            .or_else(|| args.lease_namespace.clone())
                            .unwrap_or_else(|| "default".into()),
                        secret_name: secret.clone(),
                        dns: args.webhook_dns.clone(),
                        ips: args.webhook_ips.clone(),
                        days: args.webhook_cert_days,
                        webhook_config: args.webhook_config.clone(),
                    },
                    (None, None) => {
                        return Err(Failure::usage(
                            "--webhook-addr needs a certificate: --webhook-cert-dir DIR (cert-manager) or --webhook-secret NAME (operator-managed)",
                        ));
                    }
                },
            }),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            message: format!("cannot start the async runtime: {e}"),
            code: 1,
        })?;
    runtime.block_on(async move {
        let client = kube::Client::try_default().await.map_err(|e| Failure {
            message: format!(
                "cannot build a Kubernetes client (KUBECONFIG or in-cluster config): {e}"
            ),
            code: 1,
        })?;
        runtime::run(client, opts, None).await.map_err(|e| Failure {
            message: e.to_string(),
            code: 1,
        })
    })?;
    Ok(0)
}
