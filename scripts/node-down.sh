#!/usr/bin/env bash
# Undoes scripts/node-up.sh: uninstalls the chart, stops the processes whose pids node-up.sh
# recorded (and its own testcp), unmounts, removes the cgroups, iptables rules, bridge and state
# it created, and puts back the sysctls it recorded. The cached binaries stay.
set -uo pipefail
K=/var/lib/gro-node
CTR="ctr --address /run/gro-node/containerd.sock -n k8s.io"
say() { echo "[node-down] $*"; }
stop_pid() { # pidfile, seconds before SIGKILL
  local f=$1 n=${2:-20} p
  [ -e "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq $((n * 5))); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && { say "SIGKILL $p ($f)"; kill -KILL "$p"; sleep 0.5; }
  fi
  rm -f "$f"
}

# 1. let kubelet tear the pods down properly (CRI StopPodSandbox -> CNI DEL, netns removal)
if [ -e $K/testcp.env ]; then
  . $K/testcp.env
  if kill -0 "$TESTCP_PID" 2>/dev/null && [ -e $K/kubelet.pid ] && kill -0 "$(cat $K/kubelet.pid)" 2>/dev/null; then
    timeout 60 "$HELM" uninstall gro -n guardrail-system --kubeconfig "$KUBECONFIG" --wait 2>/dev/null || true
    timeout 90 kubectl delete ns guardrail-system llm-gateway --wait=true --ignore-not-found 2>/dev/null || true
    # wait until containerd has no sandboxes left (kubelet removes them)
    for _ in $(seq 60); do
      [ -z "$($CTR tasks ls -q 2>/dev/null)" ] && break; sleep 1
    done
  fi
fi

# 2. scheduler, extra kcm, kubelet
stop_pid $K/sched.pid 10
stop_pid $K/kcm2.pid 10
stop_pid $K/kubelet.pid 20

# 3. anything still running in containerd: kill tasks, remove containers (shims exit with them)
if [ -e $K/containerd.pid ] && kill -0 "$(cat $K/containerd.pid)" 2>/dev/null; then
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks kill -s KILL "$t"; done
  sleep 1
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks rm -f "$t"; done
  for c in $($CTR containers ls -q 2>/dev/null); do $CTR containers rm "$c"; done
fi
# 4. containerd (1.6.20 did not exit on SIGTERM once here: SIGKILL after 10 s)
stop_pid $K/containerd.pid 10

# 5. our testcp (SIGTERM to its pid only; it removes nothing because of --keep-dir, so rm its dir)
if [ -e $K/testcp.env ]; then
  . $K/testcp.env
  if [ -r /proc/$TESTCP_PID/cmdline ] && tr '\0' ' ' < /proc/$TESTCP_PID/cmdline | grep -q 'testcp serve'; then
    kill -TERM "$TESTCP_PID"
    for _ in $(seq 200); do kill -0 "$TESTCP_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$TESTCP_PID" 2>/dev/null && kill -KILL "$TESTCP_PID"
  fi
  case "$TESTCP_DIR" in $K/testcp.*) rm -rf "$TESTCP_DIR";; esac
  rm -f $K/testcp.env
fi

# 6. mounts under our dirs (deepest first, lazily)
findmnt -rn -o TARGET | grep -E '^/(var/lib|run)/gro-node' | sort -r | while read -r m; do umount -l "$m" || true; done
# netns created by our pods (not in the baseline list) that are still there
for n in $(ls /run/netns 2>/dev/null); do
  grep -qx "$n" $K/netns.orig 2>/dev/null && continue
  case "$n" in cni-*) if [ -n "${REMOVE_NETNS:-}" ]; then ip netns delete "$n"; else say "leftover netns $n (REMOVE_NETNS=1 to delete)"; fi;; esac
done

# 7. cgroups created by kubelet (kubepods) and by `ctr run` / containerd (k8s.io), every hierarchy
for h in /sys/fs/cgroup/*; do
  for top in kubepods k8s.io; do
    [ -d "$h/$top" ] && find "$h/$top" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$h/$top" ] && say "could not remove $h/$top"
  done
done

# 8. iptables: our DNAT rules (comment gro-node), CNI kcni chains, kubelet's KUBE-* chains
for tbl in nat filter mangle; do
  iptables -t $tbl -S 2>/dev/null | grep -E -- '--comment "?(gro-node|name: \\"kcni\\")' | sed 's/^-A/-D/' |
    while read -r r; do eval iptables -t $tbl $r; done
done
for ch in $(iptables -t nat -S | awk '/^-N CNI-/{print $2}'); do iptables -t nat -F $ch; iptables -t nat -X $ch; done
iptables -D INPUT -j KUBE-FIREWALL 2>/dev/null; iptables -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
iptables -F KUBE-FIREWALL 2>/dev/null; iptables -X KUBE-FIREWALL 2>/dev/null
for ipt in iptables ip6tables; do
  for tbl in filter nat mangle; do
    for ch in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      $ipt -t $tbl -F $ch 2>/dev/null; $ipt -t $tbl -X $ch 2>/dev/null
    done
  done
done

# 9. the bridge (veths died with their netns), CNI state
ip link del kcni0 2>/dev/null
rm -rf /var/lib/cni/networks/kcni /var/lib/gro-node/cni-ipam
for f in $(ls /var/lib/cni/results 2>/dev/null); do
  grep -qx "$f" $K/cni-results.orig 2>/dev/null && continue
  case "$f" in kcni-*|cni-loopback-*) rm -f "/var/lib/cni/results/$f";; esac
done

# 10. sysctls back to what node-up.sh recorded
if [ -e $K/sysctl.orig ]; then
  while IFS='=' read -r k v; do sysctl -qw "$k=$v"; done < $K/sysctl.orig
  sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops vm.panic_on_oom net.ipv4.ip_forward
fi

# 11. state dirs (containerd root holds the imported images; kubelet root)
rm -rf /var/lib/gro-node /run/gro-node /etc/gro-node
# /var/lib/cni did not exist before the first pod here (created by CNI/containerd): drop it if empty
rmdir /var/lib/cni/networks /var/lib/cni/results /var/lib/cni 2>/dev/null
say "done"
