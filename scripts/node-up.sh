#!/usr/bin/env bash
# Opt-in: a REAL single-node Kubernetes cluster on this machine, and the operator's chart
# installed on it with the locally built image (docs/development.md#a-real-node-opt-in):
# testcp (kube-apiserver 1.37.2 + etcd + gc/namespace/serviceaccount controllers), a second
# kube-controller-manager (deployment, replicaset, node-lifecycle), kube-scheduler and kubelet
# 1.37.2 built from the same module set as tools/testcp, containerd from Debian, runc and the
# CNI bridge plugins. Root only; it changes iptables (nat), a bridge and sysctls, which
# scripts/node-down.sh puts back.
#
#   scripts/node-up.sh                 # chart with webhook.enabled=false
#   WEBHOOK=1 scripts/node-up.sh       # with the webhook (its Service DNAT'ed to one pod: no kube-proxy)
#   . /var/lib/gro-node/testcp.env     # KUBECONFIG etc. for kubectl
#   scripts/node-down.sh               # undo everything
#
# State: /var/lib/gro-node (work files, logs, kubelet and containerd roots), /run/gro-node
# (sockets), /etc/gro-node (configs). Binaries are cached under ~/.cache/guardrail-operator/node.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
repo=$PWD
[[ $(id -u) -eq 0 ]] || { echo "node-up: run as root (kubelet, containerd, iptables)" >&2; exit 1; }
K=/var/lib/gro-node
mkdir -p $K /run/gro-node /etc/gro-node/cni
t0=$(date +%s)
log() { echo "[node-up +$(( $(date +%s) - t0 ))s] $*"; }
CTR="ctr --address /run/gro-node/containerd.sock -n k8s.io"

# --- 0. record the sysctls we (or kubelet, or the CNI bridge plugin) will change
if [ ! -e $K/sysctl.orig ]; then
  sysctl -e vm.overcommit_memory kernel.panic kernel.panic_on_oops vm.panic_on_oom \
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward \
    | sed 's/ = /=/' > $K/sysctl.orig
fi
[ -e $K/cni-results.orig ] || ls /var/lib/cni/results 2>/dev/null > $K/cni-results.orig || true
[ -e $K/netns.orig ] || ls /run/netns 2>/dev/null > $K/netns.orig || true

# --- 1. containerd from Debian (postinst does not start it: no systemd here)
command -v containerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y containerd

# --- 2. kubelet + kube-scheduler, from a copy of tools/testcp's go.mod (same Kubernetes version)
KB=$(scripts/node-build.sh)
log "binaries ready in $KB"

# --- 3. pause image (static C binary from the kubernetes tree) + operator image, as tars
if [ ! -e $K/pause.tar ]; then
  kver=$(sed -n 's#^\s*k8s.io/kubernetes v\(.*\)$#\1#p' tools/testcp/go.mod | head -n1)
  gcc -Os -static -DVERSION=local -o $K/pause "$(go env GOMODCACHE)/k8s.io/kubernetes@v$kver/build/pause/linux/pause.c"
  c=$(buildah from scratch); buildah copy $c $K/pause /pause; buildah config --entrypoint '["/pause"]' $c
  buildah commit $c localhost/pause:local; buildah rm $c
  podman save -o $K/pause.tar localhost/pause:local
fi
image=$(scripts/image-build.sh)   # also tagged as the chart's default image reference
. scripts/lib/chart-image.sh
chart_image=$(chart_image_ref)
rm -f $K/operator.tar; podman save -o $K/operator.tar "$chart_image" >/dev/null
log "image $image saved as $chart_image"

# --- 4. containerd config + CNI conflist (own sockets/dirs; podman's /etc/cni/net.d untouched)
cat > /etc/gro-node/containerd.toml <<'EOF'
version = 2
root = "/var/lib/gro-node/containerd"
state = "/run/gro-node/containerd"
[grpc]
  address = "/run/gro-node/containerd.sock"
[ttrpc]
  address = "/run/gro-node/containerd.sock.ttrpc"
[debug]
  address = "/run/gro-node/containerd-debug.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:local"
  # REQUIRED HERE: the VM has no CAP_SYS_RESOURCE (CapBnd 000001fffeffffff, bit 24 clear),
  # so runc cannot set the sandbox's oom_score_adj=-998:
  #   nsexec: failed to update /proc/self/oom_score_adj: Permission denied
  #   -> "runc create failed: unable to start container process: can't get final child's PID from pipe: EOF"
  # This clamps every oom_score_adj to containerd's own (0).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/gro-node/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
EOF
cat > /etc/gro-node/cni/10-kcni.conflist <<'EOF'
{
  "cniVersion": "0.4.0",
  "name": "kcni",
  "plugins": [
    {"type": "bridge", "bridge": "kcni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "/var/lib/gro-node/cni-ipam",
              "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
if ! { [ -e $K/containerd.pid ] && kill -0 "$(cat $K/containerd.pid)" 2>/dev/null; }; then
  nohup containerd --config /etc/gro-node/containerd.toml >> $K/containerd.log 2>&1 &
  echo $! > $K/containerd.pid
  for _ in $(seq 50); do ctr --address /run/gro-node/containerd.sock version >/dev/null 2>&1 && break; sleep 0.2; done
fi
$CTR images import $K/pause.tar
$CTR images import $K/operator.tar
log "containerd up, images imported"

# --- 5. our own testcp (kube-apiserver + etcd + gc kcm), env kept in $K/testcp.env
if ! { [ -e $K/testcp.env ] && . $K/testcp.env && kill -0 "$TESTCP_PID" 2>/dev/null; }; then
  B=$(scripts/testcp-build.sh)
  TMPDIR=$K TESTCP_BIN=$B scripts/testcp-up.sh > $K/testcp.env
  echo "export TESTCP_BIN=$B" >> $K/testcp.env
  echo "export HELM=$(scripts/helm-build.sh)" >> $K/testcp.env
fi
. $K/testcp.env
APIPORT=$(grep -o '"apiserverPort": [0-9]*' $TESTCP_DIR/state.json | grep -o '[0-9]*$')
log "testcp up: $TESTCP_DIR port $APIPORT"

# --- 6. kubelet (cgroup v1 hybrid host: failCgroupV1=false; cgroupfs = containerd SystemdCgroup=false)
cat > /etc/gro-node/kubelet-config.yaml <<'EOF'
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/gro-node/containerd.sock
address: 127.0.0.1
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
authentication:
  anonymous: {enabled: true}     # throwaway, loopback only
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
mkdir -p /var/lib/gro-node/kubelet
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
NODE_IP=${NODE_IP:-$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)}
[[ -n $NODE_IP ]] || { echo "node-up: no global IPv4 address; set NODE_IP" >&2; exit 1; }
if ! { [ -e $K/kubelet.pid ] && kill -0 "$(cat $K/kubelet.pid)" 2>/dev/null; }; then
  nohup $KB/kubelet --config=/etc/gro-node/kubelet-config.yaml --kubeconfig=$TESTCP_DIR/kubeconfig \
    --root-dir=/var/lib/gro-node/kubelet --cert-dir=/var/lib/gro-node/kubelet/pki \
    --hostname-override=$NODE --node-ip=$NODE_IP -v=2 > $K/kubelet.log 2>&1 &
  echo $! > $K/kubelet.pid
fi
for _ in $(seq 120); do kubectl get node $NODE >/dev/null 2>&1 && break; sleep 0.5; done  # wait fails on NotFound
kubectl wait --for=condition=Ready node/$NODE --timeout=120s
log "node $NODE Ready"
# kubelet (protectKernelDefaults=false) just set vm.overcommit_memory=1, kernel.panic=10,
# kernel.panic_on_oops=1 (once, at start). Put them back now: the machine is shared.
sysctl -w vm.overcommit_memory="$(grep ^vm.overcommit_memory= $K/sysctl.orig | cut -d= -f2)" \
          kernel.panic="$(grep ^kernel.panic= $K/sysctl.orig | cut -d= -f2)" \
          kernel.panic_on_oops="$(grep ^kernel.panic_on_oops= $K/sysctl.orig | cut -d= -f2)"

# --- 7. the controllers testcp does not run, and a scheduler
if ! { [ -e $K/kcm2.pid ] && kill -0 "$(cat $K/kcm2.pid)" 2>/dev/null; }; then
  nohup $TESTCP_BIN kcm --kubeconfig=$TESTCP_DIR/kubeconfig \
    --controllers=deployment-controller,replicaset-controller,node-lifecycle-controller \
    --leader-elect=false --secure-port=0 --use-service-account-credentials=false > $K/kcm2.log 2>&1 &
  echo $! > $K/kcm2.pid
fi
if ! { [ -e $K/sched.pid ] && kill -0 "$(cat $K/sched.pid)" 2>/dev/null; }; then
  nohup $KB/kube-scheduler --kubeconfig=$TESTCP_DIR/kubeconfig \
    --authentication-kubeconfig=$TESTCP_DIR/kubeconfig --authorization-kubeconfig=$TESTCP_DIR/kubeconfig \
    --leader-elect=false --secure-port=0 > $K/sched.log 2>&1 &
  echo $! > $K/sched.pid
fi

# --- 8. pods -> apiserver without kube-proxy: pods get KUBERNETES_SERVICE_HOST=10.0.0.1:443
# (the `kubernetes` Service; testcp runs --endpoint-reconciler-type=none). DNAT it to the
# apiserver on 127.0.0.1 (needs route_localnet on the bridge; kubelet's KUBE-FIREWALL lets
# ctstate DNAT through). Pre-create kcni0 so the sysctl can be set before the first pod.
ip link show kcni0 >/dev/null 2>&1 || { ip link add kcni0 type bridge; ip link set kcni0 up; }
sysctl -w net.ipv4.conf.kcni0.route_localnet=1
iptables -t nat -C PREROUTING -i kcni0 -d 10.0.0.1/32 -p tcp --dport 443 -m comment --comment gro-node \
  -j DNAT --to-destination 127.0.0.1:$APIPORT 2>/dev/null ||
iptables -t nat -A PREROUTING -i kcni0 -d 10.0.0.1/32 -p tcp --dport 443 -m comment --comment gro-node \
  -j DNAT --to-destination 127.0.0.1:$APIPORT

# --- 9. the chart, with the locally built image
th=$(date +%s)
wh=false; [ "${WEBHOOK:-0}" = 1 ] && wh=true
$HELM upgrade --install gro charts/guardrail-operator -n guardrail-system --create-namespace \
  --kubeconfig $KUBECONFIG --set image.pullPolicy=Never --set webhook.enabled=$wh
kubectl -n guardrail-system rollout status deploy/gro-guardrail-operator --timeout=180s
log "Deployment available $(( $(date +%s) - th ))s after helm install started"
if [ "$wh" = true ]; then
  # apiserver -> webhook Service ClusterIP:443, DNAT'ed to one Ready pod's :9443 (no kube-proxy)
  SVC=$(kubectl -n guardrail-system get svc gro-guardrail-operator-webhook -o jsonpath='{.spec.clusterIP}')
  POD=$(kubectl -n guardrail-system get pods -l app.kubernetes.io/instance=gro \
        --field-selector=status.phase=Running -o jsonpath='{.items[0].status.podIP}')
  iptables -t nat -A OUTPUT -d $SVC/32 -p tcp --dport 443 -m comment --comment gro-node -j DNAT --to-destination $POD:9443
  log "webhook Service $SVC:443 -> $POD:9443"
fi
kubectl get nodes -o wide
kubectl -n guardrail-system get deploy,pods -o wide
kubectl -n guardrail-system get lease
log "done"
