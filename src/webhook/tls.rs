//! The webhook's serving certificate: loaded from files (cert-manager, any mount) or from a
//! Secret the operator manages (issued and renewed here), and kept current while serving.

use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use kube::Client;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::WebhookState;
use super::certs::{self, CertError};

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

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("tls.crt: {0}")]
    Certificate(String),
    #[error("tls.key: {0}")]
    Key(String),
    #[error("the certificate and key do not match or are unsupported: {0}")]
    Mismatch(String),
}

/// A rustls server configuration: TLS 1.3 and 1.2 (AEAD suites only, from the aws-lc-rs
/// provider), the given certificate.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The certificate and key PEMs, from the files or the Secret (renewing it when due, and
/// keeping the webhook configuration's caBundle current).
async fn load(client: &Client, source: &CertSource) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    match source {
        CertSource::Dir(dir) => certs::read_dir_pem(dir),
        CertSource::Managed {
            secret_namespace,
            secret_name,
            dns,
            ips,
            days,
            webhook_config,
        } => {
            let pem = certs::ensure_secret(client, secret_namespace, secret_name, dns, ips, *days)
                .await?;
            if let Some(cfg) = webhook_config {
                certs::patch_ca_bundle(client, cfg, &pem.ca).await?;
            }
            Ok((pem.cert.into_bytes(), pem.key.into_bytes()))
        }
    }
}

async fn load_config(
    client: &Client,
    source: &CertSource,
) -> Result<(Arc<rustls::ServerConfig>, Vec<u8>), TlsError> {
    let (cert, key) = load(client, source).await?;
    Ok((server_config(&cert, &key)?, cert))
}

/// Serve the webhook until `stop` turns: load or issue the certificate (retrying every 5 s
/// until it is there), keep it current, answer reviews.
pub async fn run(
    client: Client,
    opts: WebhookOptions,
    state: Arc<WebhookState>,
    mut stop: watch::Receiver<bool>,
) {
    let (tls, mut served) = loop {
        match load_config(&client, &opts.certs).await {
            Ok((cfg, cert)) => break (RustlsConfig::from_config(cfg), cert),
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
    let source = opts.certs.clone();
    let mut reload_stop = stop.clone();
    let period = match &source {
        CertSource::Dir(_) => Duration::from_secs(10),
        CertSource::Managed { .. } => opts.cert_check,
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = reload_stop.changed() => return,
            }
            let reloaded = match load(&client, &source).await {
                Ok((cert, _)) if cert == served => continue,
                Ok((cert, key)) => server_config(&cert, &key).map(|cfg| {
                    reload_tls.reload_from_config(cfg);
                    served = cert;
                }),
                Err(e) => Err(e.into()),
            };
            match reloaded {
                Ok(()) => info!("webhook certificate reloaded"),
                Err(e) => {
                    warn!(error = %e, "cannot refresh the webhook certificate; keeping the current one")
                }
            }
        }
    });
    info!(addr = %opts.addr, "serving the admission webhook");
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = super::serve(opts.addr, tls, state, shutdown).await {
        error!(error = %e, "the webhook server stopped");
    }
}
