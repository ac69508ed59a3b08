//! The chart's Pod, run for real: `helm template` renders the chart; its Deployment's Pod spec
//! (image, args, env, ports, probes, securityContext, service account) becomes `podman run`
//! flags, field by field, with nothing re-typed. The container connects through in-cluster
//! configuration: a real ServiceAccount token (TokenRequest) for the chart's ServiceAccount, the
//! cluster CA and the namespace mounted where the kubelet mounts them, and
//! KUBERNETES_SERVICE_HOST/PORT pointing at the test control plane.
//!
//! Two replicas (two containers) share leader election; both answer the chart's probes; the API
//! server calls the webhook inside a container (through a stand-in for the chart's Service);
//! `examples/policy-repo` converges to exactly `render`'s bundle; the leader's container is
//! killed and the standby takes over and converges the next change.
//!
//! Host networking puts both containers in one port space, so each replica is rendered with its
//! own `metrics.port`/`webhook.port` (as two Pods have their own IPs); every other field comes
//! from the same values, and the test checks that the two renders differ in nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use guardrail_operator::api::Policy;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

use crate::common::operator::{free_port, http_get, render, repo_in_namespace};
use crate::common::{
    TestNamespace, chart_template, eventually, kubectl, kubectl_output, pki_file, repo_root,
};
use crate::support::{
    ClusterObjects, Containers, Service, apiserver_port, await_bundle, documents, podman,
    podman_output, ulimits,
};

const T: Duration = Duration::from_secs(90);
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// One replica's ports: (metrics, webhook).
type Ports = (u16, u16);

async fn helm_template(release: &str, ns: &str, service: u16, ports: Ports) -> String {
    let sets = [
        format!("operator.watchNamespace={ns}"),
        format!("metrics.port={}", ports.0),
        format!("webhook.port={}", ports.1),
    ];
    let mut extra = Vec::new();
    for s in &sets {
        extra.extend(["--set", s.as_str()]);
    }
    chart_template(release, ns, service, &extra).await.1
}

/// The rendered chart split into its Deployment and everything else.
fn split(rendered: &str) -> (Value, Vec<(String, Value)>) {
    let mut deployment = None;
    let mut rest = Vec::new();
    for (text, doc) in documents(rendered) {
        if doc["kind"] == "Deployment" {
            assert!(deployment.is_none(), "the chart renders one Deployment");
            deployment = Some(doc);
        } else {
            rest.push((text, doc));
        }
    }
    (deployment.expect("the chart renders a Deployment"), rest)
}

/// The keys of a JSON object, checked against what a mapping handles: the test fails when the
/// chart gains a field the podman mapping below does not translate.
fn only_known(what: &str, v: &Value, known: &[&str]) {
    if let Some(o) = v.as_object() {
        for k in o.keys() {
            assert!(
                known.contains(&k.as_str()),
                "the chart's {what} has `{k}`, which the podman mapping in tests/e2e/pod.rs does not handle; map it to its podman flag"
            );
        }
    }
}

/// A CPU quantity (`500m`, `2`) in cores.
fn cpu_cores(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().unwrap() / 1000.0,
        None => q.parse().unwrap(),
    }
}

/// A memory quantity (`64Mi`, `1G`, `1000`) in bytes.
fn bytes(q: &str) -> u64 {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * factor;
        }
    }
    q.parse()
        .unwrap_or_else(|_| panic!("memory quantity {q} is not mapped"))
}

/// A replica as podman runs it: the flags, and where its probes answer.
struct Replica {
    name: String,
    args: Vec<String>,
    probes: Vec<(String, u16, String)>,
}

/// Translates the Deployment's Pod spec into `podman run` arguments for Pod `pod` in `ns`.
fn replica(deployment: &Value, pod: &str, ns: &str, sa_dir: &Path) -> Replica {
    let spec = &deployment["spec"]["template"]["spec"];
    only_known(
        "Pod spec",
        spec,
        &["serviceAccountName", "securityContext", "containers"],
    );
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    let c = &containers[0];
    only_known(
        "container",
        c,
        &[
            "name",
            "image",
            "imagePullPolicy",
            "args",
            "env",
            "ports",
            "livenessProbe",
            "readinessProbe",
            "resources",
            "securityContext",
        ],
    );
    let mut args: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        format!("--name={pod}"),
        "--network=host".into(),
        "--log-driver=k8s-file".into(),
    ];
    args.extend(ulimits());
    args.push(match c["imagePullPolicy"].as_str() {
        Some("IfNotPresent") | None => "--pull=missing".into(),
        Some("Never") => "--pull=never".into(),
        Some(other) => panic!("imagePullPolicy {other}: nothing can be pulled here"),
    });

    // securityContext, Pod level then container level, each field to its flag.
    let psc = &spec["securityContext"];
    only_known(
        "Pod securityContext",
        psc,
        &["runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile"],
    );
    let user = psc["runAsUser"].as_u64();
    let group = psc["runAsGroup"].as_u64();
    if psc["runAsNonRoot"] == true {
        let uid =
            user.expect("runAsNonRoot with runAsUser (the image's USER is checked elsewhere)");
        assert_ne!(uid, 0, "runAsNonRoot with runAsUser 0");
    }
    match (user, group) {
        (Some(u), Some(g)) => args.push(format!("--user={u}:{g}")),
        (Some(u), None) => args.push(format!("--user={u}")),
        (None, Some(_)) => panic!("runAsGroup without runAsUser is not mapped"),
        (None, None) => {}
    }
    if !psc["seccompProfile"].is_null() {
        only_known("seccompProfile", &psc["seccompProfile"], &["type"]);
        match psc["seccompProfile"]["type"].as_str() {
            // podman applies its default seccomp profile unless told otherwise.
            Some("RuntimeDefault") => {}
            Some("Unconfined") => args.push("--security-opt=seccomp=unconfined".into()),
            other => panic!("seccompProfile {other:?} is not mapped"),
        }
    }
    let csc = &c["securityContext"];
    only_known(
        "container securityContext",
        csc,
        &[
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "capabilities",
            "runAsNonRoot",
            "privileged",
        ],
    );
    if csc["allowPrivilegeEscalation"] == false {
        args.push("--security-opt=no-new-privileges".into());
    }
    if csc["readOnlyRootFilesystem"] == true {
        // Kubernetes mounts nothing writable that the Pod spec does not list; podman's
        // --read-only would add tmpfs mounts on /tmp, /run and /var/tmp.
        args.push("--read-only".into());
        args.push("--read-only-tmpfs=false".into());
    }
    if csc["privileged"] == true {
        panic!("a privileged container is not mapped");
    }
    only_known("capabilities", &csc["capabilities"], &["drop", "add"]);
    for cap in csc["capabilities"]["drop"].as_array().into_iter().flatten() {
        args.push(format!("--cap-drop={}", cap.as_str().unwrap()));
    }
    for cap in csc["capabilities"]["add"].as_array().into_iter().flatten() {
        args.push(format!("--cap-add={}", cap.as_str().unwrap()));
    }

    // Resources: limits as the kubelet sets them (CFS quota, memory limit), requests as
    // CPU shares and a memory reservation.
    let res = &c["resources"];
    only_known("resources", res, &["requests", "limits"]);
    only_known("resources.limits", &res["limits"], &["cpu", "memory"]);
    only_known("resources.requests", &res["requests"], &["cpu", "memory"]);
    if let Some(cpu) = res["limits"]["cpu"].as_str() {
        args.push(format!("--cpus={}", cpu_cores(cpu)));
    }
    if let Some(mem) = res["limits"]["memory"].as_str() {
        args.push(format!("--memory={}", bytes(mem)));
    }
    if let Some(cpu) = res["requests"]["cpu"].as_str() {
        let shares = ((cpu_cores(cpu) * 1024.0).round() as u64).max(2);
        args.push(format!("--cpu-shares={shares}"));
    }
    if let Some(mem) = res["requests"]["memory"].as_str() {
        args.push(format!("--memory-reservation={}", bytes(mem)));
    }

    // Environment: plain values, and the downward API fields the chart uses.
    for e in c["env"].as_array().into_iter().flatten() {
        only_known("env entry", e, &["name", "value", "valueFrom"]);
        let name = e["name"].as_str().unwrap();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else {
            match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod.to_string(),
                Some("metadata.namespace") => ns.to_string(),
                other => panic!("env {name}: valueFrom {other:?} is not mapped"),
            }
        };
        args.push(format!("--env={name}={value}"));
    }
    // What the kubelet adds: the API server's address and the service account's files.
    args.push("--env=KUBERNETES_SERVICE_HOST=127.0.0.1".into());
    args.push(format!(
        "--env=KUBERNETES_SERVICE_PORT={}",
        apiserver_port()
    ));
    args.push(format!("--volume={}:{SA_DIR}:ro", sa_dir.display()));

    // Ports by name, for the probes (host networking: the process listens on them directly).
    let mut ports = BTreeMap::new();
    for p in c["ports"].as_array().into_iter().flatten() {
        only_known("port", p, &["name", "containerPort", "protocol"]);
        ports.insert(
            p["name"].as_str().unwrap().to_string(),
            p["containerPort"].as_u64().unwrap() as u16,
        );
    }
    let mut probes = Vec::new();
    for kind in ["livenessProbe", "readinessProbe"] {
        let probe = &c[kind];
        only_known(
            kind,
            probe,
            &[
                "httpGet",
                "periodSeconds",
                "initialDelaySeconds",
                "timeoutSeconds",
                "failureThreshold",
                "successThreshold",
            ],
        );
        let get = &probe["httpGet"];
        only_known(kind, get, &["path", "port", "scheme"]);
        assert!(
            get["scheme"].is_null() || get["scheme"] == "HTTP",
            "{kind} scheme"
        );
        let port = match &get["port"] {
            Value::String(name) => ports[name],
            Value::Number(n) => n.as_u64().unwrap() as u16,
            other => panic!("{kind} port {other}"),
        };
        probes.push((
            kind.to_string(),
            port,
            get["path"].as_str().unwrap().to_string(),
        ));
    }

    let image = c["image"].as_str().unwrap();
    args.push(image.to_string());
    args.extend(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    Replica {
        name: pod.to_string(),
        args,
        probes,
    }
}

/// The service account's files as the kubelet projects them: a TokenRequest token for the
/// chart's ServiceAccount, the cluster CA, the namespace; readable by the container's user.
async fn service_account_dir(ns: &str, account: &str) -> PathBuf {
    let token = kubectl(&["create", "token", account, "-n", ns, "--duration=2h"]).await;
    let dir = std::env::temp_dir().join(format!("e2e-sa-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), token.trim()).unwrap();
    std::fs::copy(pki_file("ca.crt"), dir.join("ca.crt")).unwrap();
    std::fs::write(dir.join("namespace"), ns).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["token", "ca.crt", "namespace"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

async fn logs(name: &str) -> String {
    let out = podman_output(&["logs", name]).await;
    out.stdout + &out.stderr
}

async fn lease_holder(ns: &str, lease: &str) -> Option<String> {
    let out = kubectl_output(&[
        "get",
        "lease",
        lease,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .await;
    (out.success && !out.stdout.is_empty()).then_some(out.stdout)
}

#[tokio::test]
async fn the_charts_pod_runs_two_replicas_serves_the_webhook_and_fails_over() {
    let ns = TestNamespace::new("e2e-pod").await;
    let n = ns.name.clone();
    let release = format!("gro{}", &n[n.len() - 6..]);
    let service = Service::start().await;
    let ports: Vec<Ports> = (0..2).map(|_| (free_port(), free_port())).collect();
    let mut renders = Vec::new();
    for p in &ports {
        renders.push(helm_template(&release, &n, service.port, *p).await);
    }
    // The renders differ in the replica's ports and nothing else.
    let placeholders = |text: &str, p: Ports| {
        text.replace(&p.0.to_string(), "METRICS-PORT")
            .replace(&p.1.to_string(), "WEBHOOK-PORT")
    };
    let (a, b) = (
        placeholders(&renders[0], ports[0]),
        placeholders(&renders[1], ports[1]),
    );
    if let Some((x, y)) = a.lines().zip(b.lines()).find(|(x, y)| x != y) {
        panic!("the two renders differ in more than their ports: {x:?} / {y:?}");
    }
    assert_eq!(a.lines().count(), b.lines().count());
    let (deployment, objects) = split(&renders[0]);

    // Everything but the Deployment goes to the API server, as `helm install` would send it.
    let mut cluster = ClusterObjects::default();
    let mut manifest = String::new();
    for (text, doc) in &objects {
        if doc["metadata"]["namespace"].is_null() && doc["kind"] != "CustomResourceDefinition" {
            cluster.0.push(format!(
                "{}/{}",
                doc["kind"].as_str().unwrap().to_lowercase(),
                doc["metadata"]["name"].as_str().unwrap()
            ));
        }
        manifest.push_str(text);
        manifest.push_str("---\n");
    }
    let file = std::env::temp_dir().join(format!("e2e-chart-{n}.yaml"));
    std::fs::write(&file, &manifest).unwrap();
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=helm",
        "-f",
        file.to_str().unwrap(),
    ])
    .await;

    let account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    let sa_dir = service_account_dir(&n, account).await;
    let deploy_name = deployment["metadata"]["name"].as_str().unwrap().to_string();
    let mut containers = Containers::default();
    let mut replicas = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let (d, _) = split(&renders[i]);
        let r = replica(
            &d,
            &format!("{deploy_name}-{i}-{}", &n[n.len() - 6..]),
            &n,
            &sa_dir,
        );
        containers.0.push(r.name.clone());
        let args: Vec<&str> = r.args.iter().map(String::as_str).collect();
        podman(&args).await;
        replicas.push((r, *p));
    }
    service.set_backends(&ports.iter().map(|p| p.1).collect::<Vec<_>>());

    // Both replicas answer the chart's probes (the standby too: it serves the webhook).
    for (r, _) in &replicas {
        for (kind, port, path) in &r.probes {
            eventually(&format!("{} {kind} {path}", r.name), T, || async {
                match http_get(*port, path).await {
                    Some((200, _)) => Ok(()),
                    other => Err(format!("{other:?}\n{}", logs(&r.name).await)),
                }
            })
            .await;
        }
    }
    // In-cluster configuration is what connected: one of them holds the chart's Lease.
    let lease = deploy_name.clone();
    let leader = eventually("a leader", T, || async {
        lease_holder(&n, &lease)
            .await
            .ok_or_else(|| "no holder".to_string())
    })
    .await;
    assert!(
        replicas.iter().any(|(r, _)| r.name == leader),
        "the lease is held by {leader}, not one of the containers"
    );

    // The repository converges to exactly `render`'s bundle.
    let repo = repo_in_namespace(&std::env::temp_dir().join(format!("e2e-repo-{n}")), &n);
    let applied = eventually("kubectl apply of the repository", T, || async {
        let out = kubectl_output(&["apply", "-f", repo.to_str().unwrap()]).await;
        if out.success {
            Ok(out.stdout)
        } else {
            // The operator publishes the webhook's caBundle just after it starts.
            Err(out.stderr)
        }
    })
    .await;
    assert!(applied.contains("created") || applied.contains("configured"));
    let cms: Api<ConfigMap> = ns.api();
    await_bundle(&cms, &render(&repo).await, T).await;

    // The API server calls the webhook inside a container: a version whose tests fail is
    // denied with the operator's message, and a container logged the review.
    let broken = std::fs::read_to_string(repo_root().join("examples/broken/failing-test.yaml"))
        .unwrap()
        .replace("namespace: llm-gateway", &format!("namespace: {n}"));
    let broken_file = std::env::temp_dir().join(format!("e2e-broken-{n}.yaml"));
    std::fs::write(&broken_file, broken).unwrap();
    let out = kubectl_output(&["apply", "-f", broken_file.to_str().unwrap()]).await;
    assert!(!out.success, "a failing test was admitted: {}", out.stdout);
    assert!(
        out.stderr.contains("admission webhook") && out.stderr.contains("denied the request"),
        "not denied by the webhook: {}",
        out.stderr
    );
    let mut seen = String::new();
    for (r, _) in &replicas {
        seen.push_str(&logs(&r.name).await);
    }
    assert!(
        seen.contains("admission review denied"),
        "no container logged the review:\n{seen}"
    );

    // Kill the leader's container (SIGKILL, no goodbye); the standby takes the Lease and
    // converges the next change: a policy deleted from the repository.
    podman(&["kill", "--signal", "KILL", &leader]).await;
    let killed = std::time::Instant::now();
    let state = podman(&["inspect", "--format", "{{.State.Running}}", &leader]).await;
    assert_eq!(state.trim(), "false", "the leader's container still runs");
    let standby = replicas
        .iter()
        .find(|(r, _)| r.name != leader)
        .unwrap()
        .0
        .name
        .clone();
    let claude = repo.join("30-claude-only.yaml");
    eventually(
        "kubectl delete through the standby's webhook",
        T,
        || async {
            let out = kubectl_output(&["delete", "-f", claude.to_str().unwrap()]).await;
            if out.success { Ok(()) } else { Err(out.stderr) }
        },
    )
    .await;
    std::fs::remove_file(&claude).unwrap();
    let holder = eventually("the standby to take the lease", T, || async {
        match lease_holder(&n, &lease).await {
            Some(h) if h == standby => Ok(h),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(holder, standby);
    eprintln!(
        "leader {leader} killed; {standby} took the lease {:.1} s later",
        killed.elapsed().as_secs_f64()
    );
    await_bundle(&cms, &render(&repo).await, T).await;
    let policies: Api<Policy> = ns.api();
    assert!(
        policies.get_opt("claude-audit").await.unwrap().is_none()
            || policies
                .get("claude-audit")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
    );
    // The standby's probes still answer.
    let (r, _) = replicas.iter().find(|(r, _)| r.name == standby).unwrap();
    for (kind, port, path) in &r.probes {
        assert_eq!(
            http_get(*port, path).await.map(|(s, _)| s),
            Some(200),
            "{kind} after failover"
        );
    }
    drop(containers);
    drop(cluster);
}
