#!/usr/bin/env bash
# Builds the local Kubernetes control plane the e2e tests run against — etcd, kube-apiserver,
# kube-controller-manager, kubectl, helm, and hollow-node (a kubelet with the real volume code and a
# fake runtime, ./hollow-node) — from their Go modules, into a cache directory outside the clone:
#
#   ${CLIENTCREDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clientcreds}/control-plane/<k8s>-<etcd>/bin
#
# The versions come from go.mod next to this script (one build module, so the packages the
# binaries share are compiled once). Idempotent: when the binaries for this go.mod are already
# there, it says so and does nothing. Prints the bin directory on its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go 1.26 or newer (https://go.dev/dl/) and run this script again."

mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$here/go.mod"; }
k8s_version="$(mod_version k8s.io/kubernetes)"
etcd_version="$(mod_version go.etcd.io/etcd/server/v3)"
[[ -n "$k8s_version" && -n "$etcd_version" ]] \
    || die "cannot read the k8s.io/kubernetes and go.etcd.io/etcd/server/v3 versions from $here/go.mod"

cache_root="${CLIENTCREDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clientcreds}"
dir="$cache_root/control-plane/$k8s_version-$etcd_version"
bin="$dir/bin"
binaries=(etcd kube-apiserver kube-controller-manager kubectl helm hollow-node)
# The stamp ties the binaries to the exact module graph and build flags they were built from.
stamp_want="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here/hollow-node/main.go" | sha256sum | cut -d' ' -f1)"

complete=true
for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || complete=false; done
if $complete && [[ "$(cat "$dir/stamp" 2>/dev/null)" == "$stamp_want" ]]; then
    log "up to date: Kubernetes $k8s_version, etcd $etcd_version in $bin (nothing to do)"
    echo "$bin"
    exit 0
fi

mkdir -p "$dir" || die "cannot create $dir (set CLIENTCREDS_CACHE_DIR to a writable directory)"
# One build at a time per cache directory (several test runs may start this together).
exec 9>"$dir/.lock"
if ! flock -n 9; then
    log "another build is running in $dir; waiting for it"
    flock 9
fi
# Re-check now that we hold the lock: the other build may have finished the job.
complete=true
for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || complete=false; done
if $complete && [[ "$(cat "$dir/stamp" 2>/dev/null)" == "$stamp_want" ]]; then
    log "up to date: Kubernetes $k8s_version, etcd $etcd_version in $bin (nothing to do)"
    echo "$bin"
    exit 0
fi

start=$(date +%s)
log "building Kubernetes $k8s_version (kube-apiserver, kube-controller-manager, kubectl, hollow-node), etcd $etcd_version and helm $(mod_version helm.sh/helm/v3)"
log "into $bin"
log "a cold build downloads the Go modules and compiles for a long while (see tests/README.md); later runs are instant"

staging="$dir/staging"
rm -rf "$staging"
mkdir -p "$staging"
cd "$here"

log "downloading Go modules (go mod download)"
nice -n 10 go mod download \
    || die "'go mod download' failed in $here; check that the Go module proxy ($(go env GOPROXY)) is reachable"

# Built outside the Kubernetes repository, the binaries would report v0.0.0-master; stamp the
# release the way Kubernetes' own build (hack/lib/version.sh) does, so kubectl and helm see it.
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
# helm's offline default (helm template, helm lint) is Kubernetes 1.20 unless its release build
# stamps one (helm's Makefile does); charts with a kubeVersion need the real one.
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
done

log "compiling (go build, CGO_ENABLED=0, -trimpath); this is the long part"
# A go.etcd.io/etcd/server/v3 main package is named after the module: its binary comes out as 'server'.
# A heartbeat on stderr while it compiles, so a long quiet build is visibly alive.
( while sleep 60; do log "still compiling ($(( ($(date +%s) - start) / 60 )) min so far)"; done ) &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null || true' EXIT
CGO_ENABLED=0 nice -n 10 go build -mod=readonly -trimpath -ldflags="$ldflags" -o "$staging/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl \
    helm.sh/helm/v3/cmd/helm \
    ./hollow-node \
    || die "'go build' failed in $here (output above); nothing was installed into $bin"
kill "$heartbeat" 2>/dev/null || true
mv "$staging/server" "$staging/etcd"

for b in "${binaries[@]}"; do
    [[ -x "$staging/$b" ]] || die "'go build' did not produce $b"
done
mkdir -p "$bin"
for b in "${binaries[@]}"; do mv -f "$staging/$b" "$bin/$b"; done
rmdir "$staging"
echo "$stamp_want" > "$dir/stamp"

elapsed=$(( $(date +%s) - start ))
log "done in $((elapsed / 60))m$((elapsed % 60))s: $(cd "$bin" && echo "${binaries[*]}")"
"$bin/kube-apiserver" --version >&2 || true
"$bin/etcd" --version | head -1 >&2 || true
echo "$bin"
