//! Serving certificates for the webhook.
//!
//! * **Files** (cert-manager, or any mounted `tls.crt`/`tls.key`): read at start and re-read when
//!   they change, without a restart.
//! * **Operator-managed**: a CA and a serving certificate generated with rcgen and kept in a
//!   Secret (type kubernetes.io/tls, with `ca.crt`); renewed when a third of its life is left; the
//!   CA is written into the `caBundle` of the ValidatingWebhookConfiguration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tracing::info;

/// Annotation with the serving certificate's expiry (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "guardrails.dev/not-after";
/// Annotation with the names the certificate was made for.
pub const SANS_ANNOTATION: &str = "guardrails.dev/subject-alt-names";

/// A PEM certificate chain and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pem {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

/// Errors of certificate management.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A UTC calendar date.
struct Ymd {
    y: i32,
    m: u8,
    d: u8,
}

fn ymd(t: jiff::Timestamp) -> Ymd {
    let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    Ymd {
        y: i32::from(d.year()),
        m: d.month().unsigned_abs(),
        d: d.day().unsigned_abs(),
    }
}

/// Generate a CA and a serving certificate for `dns` names and `ips`, valid for `days`.
pub fn generate(
    dns: &[String],
    ips: &[IpAddr],
    days: i64,
    now: jiff::Timestamp,
) -> Result<(Pem, jiff::Timestamp), CertError> {
    let start = ymd(now - jiff::SignedDuration::from_hours(24));
    let not_after = now + jiff::SignedDuration::from_hours(24 * days);
    let end = ymd(not_after);
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "guardrail-operator webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(start.y, start.m, start.d);
    ca.not_after = rcgen::date_time_ymd(end.y + 1, end.m, end.d.min(28));
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns.first()
            .cloned()
            .unwrap_or_else(|| "guardrail-operator-webhook".into()),
    );
    leaf.subject_alt_names = dns
        .iter()
        .map(|d| d.clone().try_into().map(SanType::DnsName))
        .collect::<Result<Vec<_>, _>>()?;
    leaf.subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = rcgen::date_time_ymd(start.y, start.m, start.d);
    leaf.not_after = rcgen::date_time_ymd(end.y, end.m, end.d);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
            ca: ca_cert.pem(),
        },
        not_after,
    ))
}

/// The first PEM block of a bundle, with its trailing newline.
pub fn first_pem_block(bundle: &str) -> Option<&str> {
    const END: &str = "-----END CERTIFICATE-----";
    let start = bundle.find("-----BEGIN CERTIFICATE-----")?;
    let end = bundle[start..].find(END)? + start + END.len();
    let end = if bundle[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Some(&bundle[start..end])
}

fn sans_label(dns: &[String], ips: &[IpAddr]) -> String {
    let mut all: Vec<String> = dns.to_vec();
    all.extend(ips.iter().map(|i| i.to_string()));
    all.join(",")
}

fn get_str(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

/// Operator-managed certificates: make sure the Secret holds a valid certificate for the names,
/// renewing it when a third of its life is left, and return it.
pub async fn ensure_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    dns: &[String],
    ips: &[IpAddr],
    days: i64,
) -> Result<Pem, CertError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let now = jiff::Timestamp::now();
    let wanted = sans_label(dns, ips);
    let existing = api.get_opt(name).await.map_err(|source| CertError::Kube {
        what: format!("read Secret {namespace}/{name}"),
        source,
    })?;
    if let Some(s) = &existing {
        let ann = s.annotations();
        let fresh = ann
            .get(NOT_AFTER_ANNOTATION)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| t - jiff::SignedDuration::from_hours(24 * days / 3) > now);
        if fresh
            && ann.get(SANS_ANNOTATION) == Some(&wanted)
            && let (Some(cert), Some(key), Some(ca)) = (
                get_str(s, "tls.crt"),
                get_str(s, "tls.key"),
                get_str(s, "ca.crt"),
            )
        {
            return Ok(Pem { cert, key, ca });
        }
    }
    let (mut pem, not_after) = generate(dns, ips, days, now)?;
    // Rotation without a gap: the new CA goes first in `ca.crt` (and so in the caBundle) and
    // the previous CA stays trusted beside it, so replicas still serving a certificate from
    // the previous CA keep answering until they reload.
    if let Some(previous) = existing
        .as_ref()
        .and_then(|s| get_str(s, "ca.crt"))
        .and_then(|b| first_pem_block(&b).map(str::to_string))
        && previous != pem.ca
    {
        pem.ca = format!("{}{previous}", pem.ca);
    }
    let mut data = BTreeMap::new();
    data.insert(
        "tls.crt".to_string(),
        ByteString(pem.cert.clone().into_bytes()),
    );
    data.insert(
        "tls.key".to_string(),
        ByteString(pem.key.clone().into_bytes()),
    );
    data.insert(
        "ca.crt".to_string(),
        ByteString(pem.ca.clone().into_bytes()),
    );
    let mut secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: Some(BTreeMap::from([
                (NOT_AFTER_ANNOTATION.to_string(), not_after.to_string()),
                (SANS_ANNOTATION.to_string(), wanted),
            ])),
            labels: Some(BTreeMap::from([(
                crate::api::labels::MANAGED_BY_LABEL.to_string(),
                crate::api::labels::MANAGED_BY_VALUE.to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    match existing {
        None => match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            // Another replica was faster: use its certificate.
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                let theirs = api.get(name).await.map_err(|source| CertError::Kube {
                    what: format!("read Secret {namespace}/{name}"),
                    source,
                })?;
                let (Some(cert), Some(key), Some(ca)) = (
                    get_str(&theirs, "tls.crt"),
                    get_str(&theirs, "tls.key"),
                    get_str(&theirs, "ca.crt"),
                ) else {
                    return Err(CertError::Invalid(format!(
                        "Secret {namespace}/{name} lacks tls.crt, tls.key or ca.crt"
                    )));
                };
                return Ok(Pem { cert, key, ca });
            }
            Err(source) => {
                return Err(CertError::Kube {
                    what: format!("create Secret {namespace}/{name}"),
                    source,
                });
            }
        },
        Some(old) => {
            secret.metadata.resource_version = old.resource_version();
            api.replace(name, &PostParams::default(), &secret)
                .await
                .map_err(|source| CertError::Kube {
                    what: format!("update Secret {namespace}/{name}"),
                    source,
                })?;
        }
    }
    info!(secret = %format!("{namespace}/{name}"), %not_after, "webhook certificate issued");
    Ok(pem)
}

/// Write the CA into every webhook of the ValidatingWebhookConfiguration (when it differs).
/// Replicas race for this write: on a conflict, read again and retry.
pub async fn patch_ca_bundle(client: &Client, config: &str, ca_pem: &str) -> Result<(), CertError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut vwc = api.get(config).await.map_err(|source| CertError::Kube {
            what: format!("read ValidatingWebhookConfiguration {config}"),
            source,
        })?;
        let mut changed = false;
        for w in vwc.webhooks.iter_mut().flatten() {
            if w.client_config.ca_bundle.as_ref() != Some(&bundle) {
                w.client_config.ca_bundle = Some(bundle.clone());
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        match api.replace(config, &PostParams::default(), &vwc).await {
            Ok(_) => {
                info!(config, "caBundle updated");
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.is_conflict() && attempt < 5 => continue,
            Err(source) => {
                return Err(CertError::Kube {
                    what: format!("update the caBundle of ValidatingWebhookConfiguration {config}"),
                    source,
                });
            }
        }
    }
}

/// Read `tls.crt` and `tls.key` from a directory.
pub fn read_dir_pem(dir: &std::path::Path) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    let read = |f: &str| {
        std::fs::read(dir.join(f))
            .map_err(|e| CertError::Invalid(format!("{}: {e}", dir.join(f).display())))
    };
    Ok((read("tls.crt")?, read("tls.key")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pem_block_of_a_bundle() {
        let a = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        assert_eq!(first_pem_block(&format!("{a}{b}")), Some(a));
        assert_eq!(first_pem_block(b.trim_end()), Some(b.trim_end()));
        assert_eq!(first_pem_block("junk"), None);
    }

    #[test]
    fn generates_a_ca_and_a_leaf_for_the_names() {
        let (pem, not_after) = generate(
            &["svc.ns.svc".into()],
            &["127.0.0.1".parse().unwrap()],
            365,
            jiff::Timestamp::now(),
        )
        .unwrap();
        assert!(pem.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pem.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pem.key.contains("PRIVATE KEY"));
        assert_ne!(pem.cert, pem.ca);
        assert!(not_after > jiff::Timestamp::now());
    }
}
