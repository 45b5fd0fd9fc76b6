#!/usr/bin/env bash
# hke: bootstrap of a Linux node. Every step is logged with a timestamp to
# /var/log/hke-bootstrap.log and the serial console; the first failure stops
# the script with a non-zero exit code.
set -euo pipefail
LOG=/var/log/hke-bootstrap.log
log() { printf '%s hke: %s\n' "$(date -Is)" "$*" | tee -a "$LOG" > /dev/console; }
trap 'log "FAILED at line $LINENO (exit code $?)"; /usr/local/sbin/hke-diagnostics || true' ERR

# Diagnostics for `hke logs` (no SSH needed): the node's logs, printed to the
# serial console in marked sections every 5 minutes and when bootstrap ends
# or fails.
cat > /usr/local/sbin/hke-diagnostics <<'DIAGNOSTICS'
#!/usr/bin/env bash
out=/dev/ttyS0
[ -w "$out" ] || out=/dev/console
section() {
  local name=$1
  shift
  { echo "### hke-log-begin ${name}"; "$@" 2>&1 | tail -n 200; echo "### hke-log-end ${name}"; } > "$out" 2>/dev/null || true
}
section hke-bootstrap.log cat /var/log/hke-bootstrap.log
section cloud-init-output.log cat /var/log/cloud-init-output.log
section kubelet.log journalctl -u kubelet --no-pager -o short-iso
section containerd.log journalctl -u containerd --no-pager -o short-iso
DIAGNOSTICS
chmod 0755 /usr/local/sbin/hke-diagnostics
cat > /etc/systemd/system/hke-diagnostics.service <<'UNIT'
[Unit]
Description=hke: print the node's logs to the serial console

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hke-diagnostics
UNIT
cat > /etc/systemd/system/hke-diagnostics.timer <<'UNIT'
[Unit]
Description=hke: the node's logs to the serial console every 5 minutes

[Timer]
OnBootSec=5min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now hke-diagnostics.timer

NODE='k8s-master-aa910c6f-0'
ROLE='control-plane'
K8S_VERSION='1.36.4'
K8S_RELEASE='1.36'
CONTAINERD_VERSION='2.2.4'

log "preparing ${NODE} (${ROLE}) for Kubernetes ${K8S_VERSION}"
swapoff -a
printf 'overlay\nbr_netfilter\n' > /etc/modules-load.d/kubernetes.conf
modprobe overlay
modprobe br_netfilter
printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n' > /etc/sysctl.d/99-kubernetes.conf
sysctl --system > /dev/null

export DEBIAN_FRONTEND=noninteractive
# First boot races unattended-upgrades and cloud-init's own package steps for
# the dpkg lock: wait for it instead of failing (apt's DPkg::Lock::Timeout).
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -q
apt_get install -y -q apt-transport-https ca-certificates curl gpg runc

log "installing containerd ${CONTAINERD_VERSION}"
base="https://github.com/containerd/containerd/releases/download/v${CONTAINERD_VERSION}"
tarball="containerd-${CONTAINERD_VERSION}-linux-amd64.tar.gz"
curl -fsSL --retry 5 -o "/tmp/${tarball}" "${base}/${tarball}"
curl -fsSL --retry 5 -o "/tmp/${tarball}.sha256sum" "${base}/${tarball}.sha256sum"
(cd /tmp && sha256sum --check --strict "${tarball}.sha256sum")
tar -C /usr/local -xzf "/tmp/${tarball}"
cat > /etc/systemd/system/containerd.service <<'UNIT'
[Unit]
Description=containerd container runtime
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
UNIT
# /etc/containerd/config.toml came with this file (rendered by hke).
systemctl daemon-reload
systemctl enable --now containerd

log "installing kubelet, kubeadm and kubectl ${K8S_VERSION}"
install -d -m 0755 /etc/apt/keyrings
curl -fsSL --retry 5 "https://pkgs.k8s.io/core:/stable:/v${K8S_RELEASE}/deb/Release.key" | gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${K8S_RELEASE}/deb/ /" > /etc/apt/sources.list.d/kubernetes.list
apt_get update -q
apt_get install -y -q "kubelet=${K8S_VERSION}-*" "kubeadm=${K8S_VERSION}-*" "kubectl=${K8S_VERSION}-*"
apt-mark hold kubelet kubeadm kubectl
systemctl enable kubelet

log "installing the CNI plugins"
mkdir -p /opt/cni/bin /etc/cni/net.d
curl -fsSL --retry 5 -o /tmp/cni-plugins.tgz 'https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz'
curl -fsSL --retry 5 -o /tmp/cni-plugins.tgz.sha256 'https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz'.sha256
echo "$(cut -d' ' -f1 /tmp/cni-plugins.tgz.sha256)  /tmp/cni-plugins.tgz" | sha256sum --check --strict
tar -C /opt/cni/bin -xzf /tmp/cni-plugins.tgz

# Azure CNI: pods take the NIC's secondary addresses (azure-vnet-ipam reads
# them from the wireserver); 10-azure.conflist came with this file. Its
# bridge mode needs ebtables, and traffic leaving the VNet is masqueraded
# (azure-container-networking docs/cni.md for clusters outside AKS).
log "installing Azure CNI"
apt_get install -y -q ebtables
curl -fsSL --retry 5 -o /tmp/azure-cni.tgz 'https://github.com/Azure/azure-container-networking/releases/download/v1.6.21/azure-vnet-cni-linux-amd64-v1.6.21.tgz'
mkdir -p /tmp/azure-cni
tar -C /tmp/azure-cni -xzf /tmp/azure-cni.tgz
install -m 0755 /tmp/azure-cni/azure-vnet /tmp/azure-cni/azure-vnet-ipam /opt/cni/bin/
cat > /usr/local/sbin/hke-azure-masquerade <<'MASQ'
#!/usr/bin/env bash
set -euo pipefail
rule=(-m addrtype ! --dst-type local ! -d "$1" -j MASQUERADE)
iptables -t nat -C POSTROUTING "${rule[@]}" 2>/dev/null || iptables -t nat -A POSTROUTING "${rule[@]}"
MASQ
chmod 0755 /usr/local/sbin/hke-azure-masquerade
cat > /etc/systemd/system/hke-azure-masquerade.service <<UNIT
[Unit]
Description=hke: masquerade pod traffic that leaves the VNet (Azure CNI)
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hke-azure-masquerade '10.240.0.0/12'
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now hke-azure-masquerade.service

log "kubeadm init"
kubeadm init --config /etc/hke/kubeadm.yaml
export KUBECONFIG=/etc/kubernetes/admin.conf
if [ -d /etc/hke/manifests ]; then
  # The add-ons hke rendered for this cluster (network plugin, Windows
  # daemons, RuntimeClasses), pinned: nothing is fetched from a URL here.
  # Server-side apply, file by file in name order; retried while the API
  # server settles (and while just-created CRDs become established).
  for manifest in /etc/hke/manifests/*.yaml; do
    log "applying ${manifest}"
    ok=0
    for attempt in $(seq 1 30); do
      if kubectl apply --server-side --force-conflicts --field-manager=hke -f "${manifest}"; then ok=1; break; fi
      log "attempt ${attempt} failed; retrying in 10s"
      sleep 10
    done
    [ "${ok}" = 1 ] || { log "could not apply ${manifest}"; exit 1; }
  done
fi
# The bootstrap token in every node's boot file is kubeadm's: it expires 24 h
# after `kubeadm init` and the token cleaner then deletes it, so a Windows
# node that joins late or a scale-set instance added later could not join.
# Every control-plane node pushes its expiry 24 h ahead each hour (the
# `expiration` key of the bootstrap-token-<id> Secret, k8s.io/cluster-bootstrap
# token/api), and recreates the token if it is gone; `hke` rotates the token
# itself only by a new boot file.
log "keeping the bootstrap token alive"
cat > /usr/local/sbin/hke-bootstrap-token <<'TOKEN'
#!/usr/bin/env bash
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
token=$(sed -n 's/^[ -]*token: *"\{0,1\}\([a-z0-9]\{6\}\.[a-z0-9]\{16\}\)"\{0,1\} *$/\1/p' /etc/hke/kubeadm.yaml | head -n 1)
[ -n "${token}" ] || { echo "hke: no bootstrap token in /etc/hke/kubeadm.yaml" >&2; exit 1; }
id=${token%%.*}
expires=$(date -u -d '+24 hours' +%Y-%m-%dT%H:%M:%SZ)
if kubectl -n kube-system get secret "bootstrap-token-${id}" > /dev/null 2>&1; then
  kubectl -n kube-system patch secret "bootstrap-token-${id}" --type merge \
    -p "{\"stringData\":{\"expiration\":\"${expires}\"}}" > /dev/null
else
  kubeadm token create "${token}" --kubeconfig "${KUBECONFIG}" --ttl 24h0m0s --usages signing,authentication \
    --groups system:bootstrappers:kubeadm:default-node-token > /dev/null
fi
echo "$(date -Is) hke: bootstrap token ${id} valid until ${expires}"
TOKEN
chmod 0700 /usr/local/sbin/hke-bootstrap-token
cat > /etc/systemd/system/hke-bootstrap-token.service <<'UNIT'
[Unit]
Description=hke: keep the nodes' bootstrap token valid
After=kubelet.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hke-bootstrap-token
UNIT
cat > /etc/systemd/system/hke-bootstrap-token.timer <<'UNIT'
[Unit]
Description=hke: keep the nodes' bootstrap token valid, hourly

[Timer]
OnActiveSec=10min
OnUnitActiveSec=1h
RandomizedDelaySec=5min

[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now hke-bootstrap-token.timer
log "node bootstrap complete"
/usr/local/sbin/hke-diagnostics || true
