//! The command line (api.md §7).

pub mod diff;
pub mod live;
pub mod manifests;
pub mod plan;
pub mod render;
pub mod resolve;
pub mod run;
pub mod test;
pub mod validate;

use std::collections::BTreeSet;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::catalog::Catalog;

/// Manage LiteLLM guardrail policies as Kubernetes resources.
#[derive(Debug, Parser)]
#[command(name = "guardrail-operator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: status, lifecycle and the gateway ConfigMaps (with metrics, health
    /// probes and leader election).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions generated from the Rust types (what crds/ holds).
    Crds(CrdsArgs),
    /// Validate manifests offline: schema, content rules and LiteLLM's validation of the
    /// policies that ask for production.
    Validate(ValidateArgs),
    /// Show what applies to a request: matched policies (in LiteLLM's order, with the reason)
    /// and the effective guardrails, from the state the controller converges to.
    Resolve(ResolveArgs),
    /// Run every PolicyVersion's spec.tests offline, as admission does; exit 1 if any fails.
    Test(TestArgs),
    /// Print the gateway bundle ConfigMap the operator would write for these objects.
    Render(RenderArgs),
    /// LiteLLM's field diff (compare) of two versions of a policy.
    Diff(DiffArgs),
    /// What a change does at the gateway before it lands: production versions entering,
    /// leaving and replacing, the classes of requests whose guardrails change, and (with
    /// --contexts) how much traffic that is. Compares -f with --base, --base-ref or --live.
    Plan(Box<PlanArgs>),
    /// Create the next Draft version of a policy as a copy of its production version (or of
    /// --from VERSION), like LiteLLM's "create new version".
    NewVersion(NewVersionArgs),
    /// Ask for a Draft version to be published (spec.stage: Published) and wait for it.
    Publish(StageArgs),
    /// Ask for a version to go to production (spec.stage: Production) and wait for it.
    Promote(StageArgs),
    /// Roll a policy back: the production version goes back to Published and the previous
    /// published version (or --to VERSION) takes production.
    Rollback(RollbackArgs),
    /// Policies, their versions and stages, production version, guardrails and attachments.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct NewVersionArgs {
    /// The policy.
    pub policy: String,
    /// Copy this version instead of the production one.
    #[arg(long, value_name = "VERSION")]
    pub from: Option<i64>,
    /// Print the object instead of creating it (with -o yaml, for committing it to Git).
    #[arg(long)]
    pub dry_run: bool,
    /// Print the object as YAML.
    #[arg(short = 'o', long, value_parser = ["yaml"])]
    pub output: Option<String>,
    #[command(flatten)]
    pub cluster: live::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct StageArgs {
    /// The policy.
    pub policy: String,
    /// The version (spec.version).
    pub version: i64,
    #[command(flatten)]
    pub cluster: live::ClusterArgs,
    #[command(flatten)]
    pub wait: live::WaitArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The policy.
    pub policy: String,
    /// The published version to return to (default: the newest one older than production).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<i64>,
    #[command(flatten)]
    pub cluster: live::ClusterArgs,
    #[command(flatten)]
    pub wait: live::WaitArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this policy.
    pub policy: Option<String>,
    #[command(flatten)]
    pub cluster: live::ClusterArgs,
}

/// Reading the cluster instead of files (`resolve --live`, `diff --live`).
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Read the objects from the cluster (the caller's kubeconfig) instead of -f files.
    #[arg(long)]
    pub live: bool,
    /// Path to the kubeconfig (with --live).
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// Kubeconfig context (with --live).
    #[arg(long)]
    pub context: Option<String>,
}

/// Output format of `test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TestOutput {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Output format: a readable report, JSON, or JUnit XML for CI systems.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: TestOutput,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Name of the bundle ConfigMap (as the operator's --bundle-name).
    #[arg(long, default_value = "guardrail-gateway-config")]
    pub bundle_name: String,
    /// Print only this data key (policies.yaml or resolved.json), raw.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Output format of the ConfigMap.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub live: LiveArgs,
    /// The policy whose versions are compared (or give it as the first argument: `diff P A B`).
    #[arg(long)]
    pub policy: Option<String>,
    /// `[POLICY] A B`: the two versions (spec.version) to compare.
    #[arg(num_args = 2..=3, value_name = "VERSION", required = true)]
    pub versions: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

/// Output format of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The new state (what would land).
    #[command(flatten)]
    pub inputs: Inputs,
    /// The base state: a manifest file or directory, like -f; repeatable.
    #[arg(long, value_name = "PATH")]
    pub base: Vec<String>,
    /// The base state: the -f paths as they are at this git revision (e.g. origin/main).
    #[arg(long, value_name = "REV")]
    pub base_ref: Option<String>,
    /// The base state: the objects in the cluster's namespace (with --live).
    #[command(flatten)]
    pub live: LiveArgs,
    /// Replay traffic: JSON Lines of request contexts with counts
    /// ({"team": ..., "key": ..., "model": ..., "tags": [...], "count": N}).
    #[arg(long, value_name = "FILE")]
    pub contexts: Option<String>,
    /// With --contexts: sample message texts (one a line, or a JSON string a line) run for real
    /// through both states' content-filter guardrails, to estimate how many changed requests
    /// would now be blocked or masked.
    #[arg(long, value_name = "FILE")]
    pub messages: Option<String>,
    /// Output format: text (coloured on a terminal), json (api.md §8), or markdown for a
    /// pull-request comment.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: PlanOutput,
    /// Exit 2 when something changes at the gateway, 0 when nothing does (1 on an error).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Name of the gateway bundle ConfigMap written in each namespace.
    #[arg(
        long,
        default_value = "guardrail-gateway-config",
        env = "GATEWAY_BUNDLE_NAME"
    )]
    pub bundle_name: String,
    /// Name of the guardrail catalog ConfigMap (LiteLLM's `guardrails:` list under the key
    /// guardrails.yaml) read in each namespace; without it guardrail names are not checked.
    #[arg(long, env = "GUARDRAIL_CATALOG")]
    pub catalog_configmap: Option<String>,
    /// Deployment (in the same namespace) whose pod template gets the bundle hash when the
    /// bundle changes, so the gateway restarts with it.
    #[arg(long, env = "GATEWAY_DEPLOYMENT")]
    pub gateway_deployment: Option<String>,
    /// Also write a ConfigMap `<policy>-guardrails` (resolved.json) per policy in production, for
    /// consumers that read one policy; off by default (a write per policy change).
    #[arg(long)]
    pub policy_configmaps: bool,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,
    /// Elect a leader through a Lease so several replicas are safe.
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "guardrail-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Identity in the Lease (default: $POD_NAME, else hostname and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_seconds: u64,
    /// Milliseconds to wait after a change before reconciling (batches bursts of changes).
    #[arg(long, default_value_t = 100)]
    pub debounce_ms: u64,
    /// Seconds between full resyncs.
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Serve the validating admission webhook on this address (HTTPS).
    #[arg(long)]
    pub webhook_addr: Option<std::net::SocketAddr>,
    /// Read the webhook's serving certificate from tls.crt and tls.key in this directory
    /// (cert-manager mode); re-read when the files change.
    #[arg(long, value_name = "DIR", conflicts_with = "webhook_secret")]
    pub webhook_cert_dir: Option<String>,
    /// Operator-managed certificates: keep a CA and serving certificate in this Secret (in
    /// --webhook-secret-namespace), renew them, and patch the caBundle of --webhook-config.
    #[arg(long, value_name = "NAME")]
    pub webhook_secret: Option<String>,
    /// Namespace of --webhook-secret (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    pub webhook_secret_namespace: Option<String>,
    /// DNS name for the serving certificate (repeatable), e.g. the Service's
    /// `<svc>.<ns>.svc`.
    #[arg(long = "webhook-dns", value_name = "NAME")]
    pub webhook_dns: Vec<String>,
    /// IP address for the serving certificate (repeatable).
    #[arg(long = "webhook-ip", value_name = "IP")]
    pub webhook_ips: Vec<std::net::IpAddr>,
    /// ValidatingWebhookConfiguration whose caBundle the operator keeps current.
    #[arg(long, value_name = "NAME")]
    pub webhook_config: Option<String>,
    /// Validity of operator-managed serving certificates, in days (renewed with a third left).
    #[arg(long, default_value_t = 365)]
    pub webhook_cert_days: i64,
    /// Seconds between checks of an operator-managed certificate (renewal, or a newer one in
    /// the Secret written by another replica).
    #[arg(long, default_value_t = 60)]
    pub webhook_cert_check_seconds: u64,
    /// Milliseconds one admission review may take: waiting for a free review slot (one per
    /// CPU the process may use) plus the version's tests, checked before every pipeline step;
    /// past it the review is denied, saying so.
    #[arg(long, default_value_t = 2000)]
    pub admission_budget_ms: u64,
}

/// Log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<String>,
    /// Also write the CRDs as Helm templates (behind crds.enabled, kept on uninstall with
    /// crds.keep) into this directory.
    #[arg(long, value_name = "DIR")]
    pub chart_dir: Option<String>,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Yaml,
}

/// Where the objects come from.
#[derive(Debug, Args)]
pub struct Inputs {
    /// A manifest file or directory (multi-document YAML); repeatable; `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<String>,
    /// Recurse into sub-directories of directories given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Namespace to evaluate (objects without one are in `default`); needed when the objects
    /// are in several namespaces.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The guardrail catalog: LiteLLM's `guardrails:` list (a YAML file).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Team alias of the request (an empty value is the empty string; absent is null).
    #[arg(long)]
    pub team: Option<String>,
    /// Key alias of the request.
    #[arg(long)]
    pub key: Option<String>,
    /// Model of the request, as the client sent it.
    #[arg(long)]
    pub model: Option<String>,
    /// A request tag; repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

/// A CLI failure: the message is printed on stderr and the process exits with `code`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

/// Run an async verb on a fresh runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            message: format!("cannot start the async runtime: {e}"),
            code: 1,
        })?
        .block_on(f)
}

/// The namespace's objects: from the cluster with `--live`, else from the -f files.
pub fn objects_of(
    inputs: &Inputs,
    live: &LiveArgs,
) -> Result<(String, crate::engine::namespace::Objects), Failure> {
    if live.live {
        let cluster = live::ClusterArgs {
            namespace: inputs.namespace.clone(),
            kubeconfig: live.kubeconfig.clone(),
            context: live.context.clone(),
        };
        return block_on(async move {
            let (client, ns) = live::connect(&cluster).await?;
            let o = live::objects(&client, &ns).await?;
            Ok((ns, o))
        });
    }
    let m = manifests::read(&inputs.files, inputs.recursive).map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let ns = m
        .choose_namespace(inputs.namespace.as_deref())
        .map_err(Failure::usage)?;
    let o = m.objects(&ns);
    Ok((ns, o))
}

/// Read `--catalog`.
pub fn read_catalog(path: Option<&str>) -> Result<Option<Catalog>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--catalog {path}: cannot read: {e}")))?;
    let value: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| Failure::usage(format!("--catalog {path}: not valid YAML: {e}")))?;
    // A ConfigMap holding the list (and category files) is accepted too.
    if value.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap") {
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(value)
            .map_err(|e| Failure::usage(format!("--catalog {path}: not a ConfigMap: {e}")))?;
        return Catalog::from_configmap(&cm)
            .map(Some)
            .map_err(|e| Failure::usage(format!("--catalog {path}: {e}")));
    }
    Catalog::from_value(&value)
        .map(Some)
        .map_err(|e| Failure::usage(format!("--catalog {path}: {e}")))
}

/// Catalog names, for existence checks.
pub fn catalog_names(c: &Option<Catalog>) -> Option<BTreeSet<String>> {
    c.as_ref().map(Catalog::names)
}

/// `crds`.
pub fn crds(args: &CrdsArgs) -> Result<(), Failure> {
    let docs = crate::api::crds_yaml().map_err(|e| Failure {
        message: format!("cannot render the CRDs: {e}"),
        code: 1,
    })?;
    if let Some(dir) = &args.chart_dir {
        let templates = crate::api::chart_crd_templates().map_err(|e| Failure {
            message: format!("cannot render the CRDs: {e}"),
            code: 1,
        })?;
        std::fs::create_dir_all(dir).map_err(|e| Failure {
            message: format!("{dir}: {e}"),
            code: 1,
        })?;
        for (stem, text) in templates {
            let path = format!("{dir}/{stem}.yaml");
            std::fs::write(&path, text).map_err(|e| Failure {
                message: format!("{path}: {e}"),
                code: 1,
            })?;
        }
        if args.dir.is_none() {
            return Ok(());
        }
    }
    match &args.dir {
        None => {
            let joined: Vec<String> = docs.into_iter().map(|(_, y)| y).collect();
            print!("{}", joined.join("---\n"));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Failure {
                message: format!("{dir}: {e}"),
                code: 1,
            })?;
            for (stem, yaml) in docs {
                let path = format!("{dir}/{stem}.yaml");
                std::fs::write(&path, yaml).map_err(|e| Failure {
                    message: format!("{path}: {e}"),
                    code: 1,
                })?;
            }
        }
    }
    Ok(())
}
