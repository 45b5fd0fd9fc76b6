#!/usr/bin/env bash
# Builds real upstream Kubernetes components (and hke-k8s-check, the checker
# that runs upstream parsers on files hke renders) from source through the Go
# module proxy. Idempotent and cached; see README.md.
#
#   e2e/k8s/build.sh                      # all targets
#   e2e/k8s/build.sh hke-k8s-check kubeadm
#
# Env: HKE_K8S_BIN (default ~/.cache/hke/k8s-bin), GO (default: go on PATH,
# else /usr/local/go/bin/go), HKE_K8S_FORCE=1 rebuilds even when up to date.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
BIN="${HKE_K8S_BIN:-$HOME/.cache/hke/k8s-bin}"

export GOMODCACHE="$HOME/.cache/hke/gomod"
export GOCACHE="$HOME/.cache/hke/gobuild"
export CGO_ENABLED=0
export GOFLAGS=-mod=readonly
export GOTOOLCHAIN=local

# Pins (must match tools/go.mod and check/go.mod).
K8S_VERSION=v1.36.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

# target -> "module-dir package"
declare -A PKG=(
  [hke-k8s-check]="check ./cmd/hke-k8s-check"
  [kubeadm]="tools k8s.io/kubernetes/cmd/kubeadm"
  [kubectl]="tools k8s.io/kubernetes/cmd/kubectl"
  [kube-apiserver]="tools k8s.io/kubernetes/cmd/kube-apiserver"
  [kube-controller-manager]="tools k8s.io/kubernetes/cmd/kube-controller-manager"
  [kube-scheduler]="tools k8s.io/kubernetes/cmd/kube-scheduler"
  [etcd]="tools go.etcd.io/etcd/server/v3"
  [kwok]="tools sigs.k8s.io/kwok/cmd/kwok"
)
ALL=(hke-k8s-check kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

if [ $# -gt 0 ]; then targets=("$@"); else targets=("${ALL[@]}"); fi
for t in "${targets[@]}"; do
  [ -n "${PKG[$t]:-}" ] || { echo "build.sh: unknown target '$t' (known: ${ALL[*]})" >&2; exit 2; }
done

# Version stamping as kubernetes/hack/lib/version.sh does. kubeadm refuses
# configs (control plane version skew) when its own version reads v0.0.0, and
# hke-k8s-check runs kubeadm's validation, so it gets the same flags. The
# build date is the module's publication time from the proxy (reproducible).
k8s_ldflags() {
  local minor date
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  date="$(cd "$HERE/tools" && "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes 2>/dev/null || echo 1970-01-01T00:00:00Z)"
  local f="" pkg kv
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=archive "buildDate=$date"; do
      f+=" -X $pkg.$kv"
    done
  done
  echo "$f"
}

ldflags_for() {
  case "$1" in
    etcd) echo "-s -w" ;;
    kwok) echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}" ;;
    *) echo "-s -w$K8S_LDFLAGS" ;;
  esac
}

# Everything a binary depends on: toolchain, flags, the module files of its
# module (pins + go.sum) and, for the checker, its sources.
stamp_for() {
  local t="$1" dir="$2" pkg="$3"
  {
    echo "$t $pkg $K8S_VERSION $ETCD_VERSION $KWOK_VERSION"
    "$GO" env GOVERSION GOOS GOARCH CGO_ENABLED
    ldflags_for "$t"
    cat "$HERE/$dir/go.mod" "$HERE/$dir/go.sum"
    if [ "$dir" = check ]; then
      (cd "$HERE/check" && find . -name '*.go' -not -name '*_test.go' | LC_ALL=C sort | xargs cat)
    fi
  } | sha256sum | cut -d' ' -f1
}

K8S_LDFLAGS="$(k8s_ldflags)"
mkdir -p "$BIN/.stamp"
total_start=$(date +%s)
for t in "${targets[@]}"; do
  read -r dir pkg <<<"${PKG[$t]}"
  stamp="$(stamp_for "$t" "$dir" "$pkg")"
  if [ -z "${HKE_K8S_FORCE:-}" ] && [ -x "$BIN/$t" ] && [ "$(cat "$BIN/.stamp/$t" 2>/dev/null)" = "$stamp" ]; then
    echo "::: $t: up to date (0s)"
    continue
  fi
  start=$(date +%s)
  (cd "$HERE/$dir" && "$GO" build -trimpath -ldflags="$(ldflags_for "$t")" -o "$BIN/.$t.tmp" "$pkg")
  mv -f "$BIN/.$t.tmp" "$BIN/$t"
  if [ "$t" = kubeadm ]; then
    v="$("$BIN/kubeadm" version -o short)"
    [ "$v" = "$K8S_VERSION" ] || { echo "build.sh: kubeadm reports version '$v', want $K8S_VERSION" >&2; exit 1; }
  fi
  echo "$stamp" >"$BIN/.stamp/$t"
  echo "::: $t: built in $(( $(date +%s) - start ))s ($(du -h "$BIN/$t" | cut -f1))"
done
echo "::: go builds: $(( $(date +%s) - total_start ))s"
echo "::: binaries in $BIN"
