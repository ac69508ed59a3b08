//! Leader election on a Lease: one replica reconciles, every replica serves the webhook.

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The Lease to hold.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration_seconds: u64,
}

type ManagerResult = kube_lease_manager::Result<kube_lease_manager::LeaseManager>;

/// Leadership as a watch channel (true while leading); `gauge` follows it.
pub struct Leadership {
    pub is_leader: watch::Receiver<bool>,
    /// The lease manager's task (ending it closes its channel).
    task: Option<JoinHandle<ManagerResult>>,
    _tx: watch::Sender<bool>,
}

/// Why leader election could not start.
#[derive(Debug, thiserror::Error)]
#[error("leader election on Lease {namespace}/{name}: {message}")]
pub struct LeaseError {
    pub namespace: String,
    pub name: String,
    pub message: String,
}

impl Leadership {
    /// Always the leader (no election).
    pub fn sole(gauge: &Gauge) -> Leadership {
        gauge.set(1);
        let (tx, rx) = watch::channel(true);
        Leadership {
            is_leader: rx,
            task: None,
            _tx: tx,
        }
    }

    /// Campaign for `lease`.
    pub async fn elect(
        client: &Client,
        lease: &LeaseOptions,
        gauge: Gauge,
    ) -> Result<Leadership, LeaseError> {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &lease.name)
            .with_namespace(&lease.namespace)
            .with_identity(&lease.identity)
            .with_duration(lease.duration_seconds)
            .with_grace(lease.duration_seconds.div_ceil(3).max(1))
            .build()
            .await
            .map_err(|e| LeaseError {
                namespace: lease.namespace.clone(),
                name: lease.name.clone(),
                message: e.to_string(),
            })?;
        let (mut rx, task) = manager.watch().await;
        let (tx, is_leader) = watch::channel(false);
        let forward = tx.clone();
        tokio::spawn(async move {
            loop {
                let is = *rx.borrow_and_update();
                gauge.set(i64::from(is));
                let _ = forward.send(is);
                if rx.changed().await.is_err() {
                    gauge.set(0);
                    let _ = forward.send(false);
                    break;
                }
            }
        });
        Ok(Leadership {
            is_leader,
            task: Some(task),
            _tx: tx,
        })
    }

    /// Stop campaigning and release the lease for a fast handover.
    pub async fn resign(self, client: &Client, lease: Option<&LeaseOptions>) {
        if let Some(task) = self.task {
            // Ending the manager task closes its channel.
            task.abort();
            if let Some(lease) = lease {
                release(client, lease).await;
            }
        }
    }
}

/// Release the lease by clearing its holder (only if we hold it).
async fn release(client: &Client, lease: &LeaseOptions) {
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
