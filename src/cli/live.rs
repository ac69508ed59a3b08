//! Lifecycle verbs against a cluster (`kubectl guardrails new-version | publish | promote |
//! rollback | status`, and `resolve --live` / `diff --live`). Each verb makes exactly the change a
//! GitOps user would make by hand — `spec.stage` through server-side apply with its own field
//! manager, or a new PolicyVersion — then waits for the controller and says what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::Failure;
use crate::api::{Policy, PolicyAttachment, PolicyVersion, PolicyVersionSpec, Stage};
use crate::engine::namespace::Objects;

/// Field manager of the verbs.
pub const VERB_MANAGER: &str = "kubectl-guardrails";

/// Cluster connection flags shared by the verbs.
#[derive(Debug, clap::Args, Clone)]
pub struct ClusterArgs {
    /// Namespace (default: the kubeconfig context's namespace, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// Kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
}

/// Waiting flags.
#[derive(Debug, clap::Args, Clone)]
pub struct WaitArgs {
    /// Wait for the controller to reach the stage (default true; --wait=false returns at once).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait, e.g. 60s or 2m.
    #[arg(long, default_value = "60s")]
    pub timeout: String,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

/// A client and namespace like kubectl's.
pub async fn connect(c: &ClusterArgs) -> Result<(Client, String), Failure> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let opts = kube::config::KubeConfigOptions {
        context: c.context.clone(),
        ..Default::default()
    };
    let config = match &c.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| fail(format!("--kubeconfig {path}: {e}")))?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| fail(format!("--kubeconfig {path}: {e}")))?
        }
        None => kube::Config::from_kubeconfig(&opts)
            .await
            .or_else(|_| kube::Config::incluster())
            .map_err(|e| {
                fail(format!(
                    "no cluster configuration (KUBECONFIG, ~/.kube/config or in-cluster): {e}"
                ))
            })?,
    };
    let ns = c
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client =
        Client::try_from(config).map_err(|e| fail(format!("cannot build a client: {e}")))?;
    Ok((client, ns))
}

/// The namespace's objects from the cluster (with their statuses).
pub async fn objects(client: &Client, ns: &str) -> Result<Objects, Failure> {
    let lp = ListParams::default();
    let policies: Api<Policy> = Api::namespaced(client.clone(), ns);
    let versions: Api<PolicyVersion> = Api::namespaced(client.clone(), ns);
    let attachments: Api<PolicyAttachment> = Api::namespaced(client.clone(), ns);
    let err = |kind: &str, e: kube::Error| {
        fail(format!(
            "cannot list {kind} in namespace {ns}: {e} (are the CRDs installed and may you read them?)"
        ))
    };
    Ok(Objects {
        policies: policies
            .list(&lp)
            .await
            .map_err(|e| err("policies", e))?
            .items
            .into_iter()
            .map(Arc::new)
            .collect(),
        versions: versions
            .list(&lp)
            .await
            .map_err(|e| err("policyversions", e))?
            .items
            .into_iter()
            .map(Arc::new)
            .collect(),
        attachments: attachments
            .list(&lp)
            .await
            .map_err(|e| err("policyattachments", e))?
            .items
            .into_iter()
            .map(Arc::new)
            .collect(),
    })
}

fn parse_timeout(s: &str) -> Result<Duration, Failure> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| Failure::usage(format!("--timeout {s}: use e.g. 30s, 2m")))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "ms" => Duration::from_millis(n),
        _ => return Err(Failure::usage(format!("--timeout {s}: use e.g. 30s, 2m"))),
    })
}

fn find<'a>(o: &'a Objects, policy: &str, version: i64) -> Result<&'a PolicyVersion, Failure> {
    o.versions
        .iter()
        .find(|v| v.spec.policy == policy && v.spec.version == version)
        .map(|v| &**v)
        .ok_or_else(|| {
            let known: Vec<String> = o
                .versions
                .iter()
                .filter(|v| v.spec.policy == policy)
                .map(|v| v.spec.version.to_string())
                .collect();
            fail(format!(
                "policy '{policy}' has no version {version}; versions: {}",
                if known.is_empty() {
                    "none (create one with `kubectl guardrails new-version`)".into()
                } else {
                    known.join(", ")
                }
            ))
        })
}

fn stage_of(v: &PolicyVersion) -> Stage {
    v.status
        .as_ref()
        .and_then(|s| s.stage)
        .unwrap_or(Stage::Draft)
}

fn condition<'a>(v: &'a PolicyVersion, t: &str) -> Option<&'a crate::api::conditions::Condition> {
    v.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)
}

/// Set `spec.stage` with server-side apply (only that field, under the verbs' field manager).
async fn set_stage(
    client: &Client,
    ns: &str,
    v: &PolicyVersion,
    stage: Stage,
) -> Result<(), Failure> {
    let api: Api<PolicyVersion> = Api::namespaced(client.clone(), ns);
    let body = json!({
        "apiVersion": "guardrails.dev/v1alpha1",
        "kind": "PolicyVersion",
        "metadata": {"name": v.name_any(), "namespace": ns},
        "spec": {"policy": v.spec.policy, "version": v.spec.version, "stage": stage},
    });
    api.patch(
        &v.name_any(),
        &PatchParams::apply(VERB_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| match e {
        kube::Error::Api(s) => fail(format!(
            "the API server refused setting spec.stage of PolicyVersion {ns}/{} to {stage}:\n{}",
            v.name_any(),
            s.message
        )),
        other => fail(format!(
            "cannot update PolicyVersion {ns}/{}: {other}",
            v.name_any()
        )),
    })?;
    Ok(())
}

/// Wait until the version's achieved stage is `want` (or something holds it back); describe it.
async fn wait_for(
    client: &Client,
    ns: &str,
    name: &str,
    want: Stage,
    w: &WaitArgs,
) -> Result<String, Failure> {
    let api: Api<PolicyVersion> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + parse_timeout(&w.timeout)?;
    loop {
        let v = api
            .get(name)
            .await
            .map_err(|e| fail(format!("cannot read PolicyVersion {ns}/{name}: {e}")))?;
        let observed =
            v.status.as_ref().and_then(|s| s.observed_generation) == v.metadata.generation;
        if observed && stage_of(&v) == want {
            return Ok(describe(&v));
        }
        if observed && let Some(c) = condition(&v, "Stalled").filter(|c| c.status == "True") {
            return Err(fail(format!(
                "PolicyVersion {ns}/{name} is held at {}: {} ({}). {}",
                stage_of(&v),
                c.message,
                c.reason,
                advice(&c.reason)
            )));
        }
        if Instant::now() > deadline {
            let why = condition(&v, "Promoted")
                .or_else(|| condition(&v, "Ready"))
                .map(|c| format!("{} ({})", c.message, c.reason))
                .unwrap_or_else(|| "no status yet: is the operator running?".into());
            return Err(fail(format!(
                "timed out after {} waiting for PolicyVersion {ns}/{name} to reach {want}; it is {}: {why}",
                w.timeout,
                stage_of(&v)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn advice(reason: &str) -> &'static str {
    match reason {
        "TestsFailed" => {
            "Fix the tests or the content in a new version (`kubectl guardrails new-version`), then publish that."
        }
        "Invalid" => "Its content is invalid; create a new version with corrected content.",
        "DuplicateVersion" => {
            "Another object has the same version number; delete this one or use the next number."
        }
        _ => "",
    }
}

fn describe(v: &PolicyVersion) -> String {
    let st = v.status.clone().unwrap_or_default();
    let mut s = format!(
        "PolicyVersion {} (policy '{}' version {}) is {}",
        v.name_any(),
        v.spec.policy,
        v.spec.version,
        stage_of(v)
    );
    if let Some(t) = &st.tests {
        s.push_str(&format!(
            "; tests {}/{} passed",
            t.passed,
            t.passed + t.failed
        ));
    }
    if let Some(by) = st.superseded_by {
        s.push_str(&format!("; superseded by version {by}"));
    }
    if let Some(c) = condition(v, "Promoted")
        .filter(|c| c.status == "False" && c.reason == "WaitingForReferences")
    {
        s.push_str(&format!("; promotion waits: {}", c.message));
    }
    s
}

/// `new-version POLICY [--from VERSION]`.
pub async fn new_version(
    c: &ClusterArgs,
    policy: &str,
    from: Option<i64>,
    dry_run: bool,
    yaml: bool,
) -> Result<i32, Failure> {
    let (client, ns) = connect(c).await?;
    let o = objects(&client, &ns).await?;
    if !o.policies.iter().any(|p| p.name_any() == policy) {
        return Err(fail(format!(
            "Policy '{policy}' does not exist in namespace {ns}"
        )));
    }
    let source = match from {
        Some(v) => find(&o, policy, v)?,
        None => {
            let prod = o
                .policies
                .iter()
                .find(|p| p.name_any() == policy)
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.production_version);
            match prod {
                Some(v) => find(&o, policy, v)?,
                None => {
                    return Err(fail(format!(
                        "No production version found for policy '{policy}'; give the version to copy with --from VERSION"
                    )));
                }
            }
        }
    };
    let next = o
        .versions
        .iter()
        .filter(|v| v.spec.policy == policy)
        .map(|v| v.spec.version)
        .max()
        .unwrap_or(0)
        + 1;
    let name = format!("{policy}-v{next}");
    let spec = PolicyVersionSpec {
        version: next,
        stage: Some(Stage::Draft),
        ..source.spec.clone()
    };
    let mut obj = PolicyVersion::new(&name, spec);
    obj.metadata.namespace = Some(ns.clone());
    if dry_run || yaml {
        if yaml {
            print!("{}", serde_saphyr::to_string(&obj).unwrap_or_default());
        } else {
            println!("policyversion.guardrails.dev/{name} (dry run: not created)");
        }
        if dry_run {
            return Ok(0);
        }
    }
    let api: Api<PolicyVersion> = Api::namespaced(client, &ns);
    api.create(
        &PostParams {
            field_manager: Some(VERB_MANAGER.into()),
            ..Default::default()
        },
        &obj,
    )
    .await
    .map_err(|e| match e {
        kube::Error::Api(s) => fail(format!(
            "the API server refused PolicyVersion {ns}/{name}:\n{}",
            s.message
        )),
        other => fail(format!("cannot create PolicyVersion {ns}/{name}: {other}")),
    })?;
    if !yaml {
        println!(
            "policyversion.guardrails.dev/{name} created (Draft copy of version {})",
            source.spec.version
        );
    }
    Ok(0)
}

/// `publish POLICY VERSION` / `promote POLICY VERSION`.
pub async fn set(
    c: &ClusterArgs,
    w: &WaitArgs,
    policy: &str,
    version: i64,
    target: Stage,
) -> Result<i32, Failure> {
    let (client, ns) = connect(c).await?;
    let o = objects(&client, &ns).await?;
    let v = find(&o, policy, version)?;
    let desired = v.spec.stage.unwrap_or_default();
    match (target, desired) {
        (Stage::Published, Stage::Published | Stage::Production) => {
            return Err(fail(format!(
                "version {version} of policy '{policy}' is already {desired} (desired); only a Draft can be published. To roll back a production version use `kubectl guardrails rollback {policy}`"
            )));
        }
        (Stage::Production, Stage::Production) if stage_of(v) == Stage::Production => {
            println!("{}", describe(v));
            return Ok(0);
        }
        _ => {}
    }
    if let Some(t) = condition(v, "Tested").filter(|t| t.status == "False") {
        return Err(fail(format!(
            "version {version} of policy '{policy}' failed its tests ({}); it cannot be {}. Fix them in a new version: `kubectl guardrails new-version {policy} --from {version}`",
            t.message,
            if target == Stage::Production {
                "promoted"
            } else {
                "published"
            }
        )));
    }
    set_stage(&client, &ns, v, target).await?;
    if !w.wait {
        println!(
            "policyversion.guardrails.dev/{} spec.stage set to {target}",
            v.name_any()
        );
        return Ok(0);
    }
    let msg = wait_for(&client, &ns, &v.name_any(), target, w).await?;
    println!("{msg}");
    if target == Stage::Production {
        let o = objects(&client, &ns).await?;
        for other in o
            .versions
            .iter()
            .filter(|x| x.spec.policy == policy && x.spec.version != version)
        {
            if other.status.as_ref().and_then(|s| s.superseded_by) == Some(version) {
                println!(
                    "version {} is superseded (now {})",
                    other.spec.version,
                    stage_of(other)
                );
            }
        }
    }
    Ok(0)
}

/// `rollback POLICY [--to VERSION]`: lower the production version to Published; the highest
/// other version that asks for Production takes over, or `--to` (a Published version) is promoted.
pub async fn rollback(
    c: &ClusterArgs,
    w: &WaitArgs,
    policy: &str,
    to: Option<i64>,
) -> Result<i32, Failure> {
    let (client, ns) = connect(c).await?;
    let o = objects(&client, &ns).await?;
    let prod = o
        .policies
        .iter()
        .find(|p| p.name_any() == policy)
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.production_version);
    let Some(prod) = prod else {
        return Err(fail(format!(
            "policy '{policy}' has no production version to roll back"
        )));
    };
    let current = find(&o, policy, prod)?;
    let fallback = match to {
        Some(t) => Some(find(&o, policy, t)?),
        None => o
            .versions
            .iter()
            .filter(|v| {
                v.spec.policy == policy && v.spec.version < prod && stage_of(v) != Stage::Draft
            })
            .max_by_key(|v| v.spec.version)
            .map(|v| &**v),
    };
    let Some(fallback) = fallback else {
        return Err(fail(format!(
            "policy '{policy}' has no earlier published version to roll back to (production is version {prod}); publish one, or lower version {prod} to Published by hand to take the policy out of the gateway"
        )));
    };
    if fallback.spec.version >= prod {
        return Err(fail(format!(
            "--to {} is not older than the production version {prod}",
            fallback.spec.version
        )));
    }
    if stage_of(fallback) == Stage::Draft {
        return Err(fail(format!(
            "version {} of policy '{policy}' was never published; publish it first",
            fallback.spec.version
        )));
    }
    // Make the fallback ask for Production first, so the policy never leaves the gateway.
    if fallback.spec.stage != Some(Stage::Production) {
        set_stage(&client, &ns, fallback, Stage::Production).await?;
    }
    set_stage(&client, &ns, current, Stage::Published).await?;
    if !w.wait {
        println!(
            "version {prod} set to Published; version {} asks for Production",
            fallback.spec.version
        );
        return Ok(0);
    }
    let msg = wait_for(&client, &ns, &fallback.name_any(), Stage::Production, w).await?;
    println!("rolled back policy '{policy}': {msg}; version {prod} is Published");
    Ok(0)
}

/// `status [POLICY]`.
pub async fn status(c: &ClusterArgs, policy: Option<&str>) -> Result<i32, Failure> {
    let (client, ns) = connect(c).await?;
    let o = objects(&client, &ns).await?;
    let mut policies: Vec<&Policy> = o
        .policies
        .iter()
        .filter(|p| policy.is_none_or(|x| p.name_any() == x))
        .map(|p| &**p)
        .collect();
    policies.sort_by_key(|p| p.name_any());
    if policies.is_empty() {
        return Err(fail(match policy {
            Some(p) => format!("Policy '{p}' not found in namespace {ns}"),
            None => format!("no policies in namespace {ns}"),
        }));
    }
    for p in policies {
        let name = p.name_any();
        let st = p.status.clone().unwrap_or_default();
        let ready = st.conditions.iter().find(|c| c.type_ == "Ready");
        println!(
            "POLICY {name}  production: {}  ready: {}{}",
            st.production_version
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "none".into()),
            ready.map(|c| c.status.as_str()).unwrap_or("Unknown"),
            ready
                .filter(|c| c.status != "True")
                .map(|c| format!(" ({})", c.message))
                .unwrap_or_default()
        );
        println!(
            "  guardrails: {}",
            if st.resolved_guardrails.is_empty() {
                "(none)".into()
            } else {
                st.resolved_guardrails.join(", ")
            }
        );
        if st.inheritance_chain.len() > 1 {
            println!("  inherits:   {}", st.inheritance_chain.join(" -> "));
        }
        let mut versions: Vec<&PolicyVersion> = o
            .versions
            .iter()
            .filter(|v| v.spec.policy == name)
            .map(|v| &**v)
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.spec.version));
        println!(
            "  {:<8} {:<11} {:<11} {:<7} MESSAGE",
            "VERSION", "DESIRED", "STAGE", "TESTS"
        );
        for v in versions {
            let vs = v.status.clone().unwrap_or_default();
            let msg = condition(v, "Ready")
                .map(|c| c.message.clone())
                .unwrap_or_default();
            println!(
                "  {:<8} {:<11} {:<11} {:<7} {}",
                v.spec.version,
                v.spec.stage.unwrap_or_default().as_str(),
                stage_of(v).as_str(),
                vs.tests
                    .and_then(|t| t.summary)
                    .unwrap_or_else(|| "-".into()),
                msg
            );
        }
        let atts: Vec<&PolicyAttachment> = o
            .attachments
            .iter()
            .filter(|a| a.spec.policy == name)
            .map(|a| &**a)
            .collect();
        for a in atts {
            let r = a
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            println!(
                "  attachment {} ready: {}",
                a.name_any(),
                r.map(|c| c.status.as_str()).unwrap_or("Unknown")
            );
        }
    }
    Ok(0)
}
