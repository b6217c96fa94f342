#!/usr/bin/env bash
# Builds the Kubernetes control plane the manifests are applied to in tests: kube-apiserver, kube-controller-manager,
# kubectl and the etcd they store in, from the Go module proxy, once per version, into
# ${XDG_CACHE_HOME:-~/.cache}/platform-tools/kubernetes/<version>/bin, and prints that directory.
# k8s/test/apiserver.test.ts starts them on loopback and applies every environment as docs/DEPLOYMENT.md says.
#
#   scripts/tools/install-kubernetes.sh                       # prints e.g. ~/.cache/platform-tools/kubernetes/v1.35.4/bin
#   KUBERNETES_VERSION=v1.34.4 scripts/tools/install-kubernetes.sh
#
# Beside bin/ it keeps crds/: the custom resource definitions GKE's add-ons install in every cluster and the manifests
# use (SecretProviderClass, from the Secret Manager add-on's Secrets Store CSI driver), taken from that driver's
# module at a pinned version, so the API server validates those objects against their real schema.
#
# Why a minor of 1.35: GKE's stable channel runs it (config: production's release channel is STABLE), and the
# manifests must be accepted by the API server they will meet there. etcd is the version that Kubernetes release
# pins in its own go.mod (go.etcd.io/etcd/server/v3), so the pair is the one Kubernetes tests together.
#
# k8s.io/kubernetes cannot be built with `go install module@version` or inside its own module download: its go.mod
# replaces every k8s.io/* library with ./staging/src/..., and the module zip leaves those directories out (each has a
# go.mod of its own). Kubernetes publishes each of them as its own module at v0.<minor>.<patch>, so the recipe below
# is a throwaway module that requires k8s.io/kubernetes and replaces each staging path with that published version,
# read from Kubernetes' own go.mod, so the list follows the version.
#
# Exit codes: 0 built or cached (directory on stdout); 3 cannot be had here (no Go, or the proxy does not serve
# what the build needs), said on stderr so tests skip with the reason; 1 a failed build.
set -euo pipefail
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.35.4}"
SECRETS_STORE_CSI_DRIVER_VERSION="${SECRETS_STORE_CSI_DRIVER_VERSION:-v1.4.8}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/kubernetes/${KUBERNETES_VERSION}"
programs=(kube-apiserver kube-controller-manager kubectl etcd)

built() {
  local p
  for p in "${programs[@]}"; do [[ -x "$cache/bin/$p" ]] || return 1; done
  [[ -s "$cache/crds/secretproviderclasses.yaml" ]]
}
if built; then
  echo "$cache/bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-kubernetes: no Go toolchain on PATH; the control plane is built from source with it" >&2
  exit 3
fi

mkdir -p "$cache"
# One build at a time per version: the test files that need it start together on a cold machine.
exec {lock}>"$cache/.lock"
flock "$lock"
if built; then
  echo "$cache/bin"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
cd "$work"
go mod init platform-tools/kubernetes-download >/dev/null 2>&1
if ! download="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" 2>&1)"; then
  echo "install-kubernetes: the Go module proxy does not serve k8s.io/kubernetes@${KUBERNETES_VERSION}: $(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Error": "\(.*\)"[,]*$/\1/p')" >&2
  exit 3
fi
gomod="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
etcd_version="$(sed -n 's/^[[:space:]]*go.etcd.io\/etcd\/server\/v3 \(v[^ ]*\).*/\1/p' "$gomod")"
if [[ -z "$etcd_version" ]]; then
  echo "install-kubernetes: k8s.io/kubernetes@${KUBERNETES_VERSION}'s go.mod names no go.etcd.io/etcd/server/v3 version" >&2
  exit 1
fi

rm -f go.mod
{
  echo "module platform-tools/kubernetes-build"
  echo
  echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes ${KUBERNETES_VERSION}"
  echo "	go.etcd.io/etcd/server/v3 ${etcd_version}"
  echo ")"
  echo
  echo "replace ("
  # shellcheck disable=SC2016 # the $ is sed's end of line
  sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*$#\t\1 => \1 '"$staging_version"'#p' "$gomod"
  echo ")"
} >go.mod
cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF

log="$work/build.log"
if ! go mod tidy >"$log" 2>&1; then
  rc=0
  go_failure install-kubernetes "k8s.io/kubernetes@${KUBERNETES_VERSION}" "resolving the modules of" "$log" || rc=$?
  exit "$rc"
fi

echo "install-kubernetes: building kube-apiserver, kube-controller-manager, kubectl ${KUBERNETES_VERSION} and etcd ${etcd_version} (once per version; about 15 minutes on two cores)" >&2
mkdir -p "$cache/bin" "$work/out"
# As Kubernetes' release build: static, no cgo, the version stamped in where kubectl version and the API's /version
# read it.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION}"
# build SUBJECT go-build-arguments...: one program, or the script ends the way go_failure says.
build() {
  local subject="$1" rc=0
  shift
  CGO_ENABLED=0 nice -n 10 go build -trimpath "$@" >>"$log" 2>&1 && return 0
  go_failure install-kubernetes "$subject" building "$log" || rc=$?
  exit "$rc"
}
for program in kube-apiserver kube-controller-manager kubectl; do
  build "${program} ${KUBERNETES_VERSION}" -ldflags "$ldflags" -o "$work/out/$program" "k8s.io/kubernetes/cmd/$program"
done
build "etcd ${etcd_version}" -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3
csi="$(go mod download -json "sigs.k8s.io/secrets-store-csi-driver@${SECRETS_STORE_CSI_DRIVER_VERSION}" 2>&1)" || {
  echo "install-kubernetes: the Go module proxy does not serve sigs.k8s.io/secrets-store-csi-driver@${SECRETS_STORE_CSI_DRIVER_VERSION}" >&2
  exit 3
}
csi_dir="$(printf '%s\n' "$csi" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
mkdir -p "$cache/crds"
cp "$csi_dir/deploy/secrets-store.csi.x-k8s.io_secretproviderclasses.yaml" "$cache/crds/secretproviderclasses.yaml"
# Moved in whole, each after all are built: a second run never sees half a set.
for program in "${programs[@]}"; do mv -f "$work/out/$program" "$cache/bin/$program"; done
echo "install-kubernetes: built in $((SECONDS - started)) s: $cache/bin" >&2
echo "$cache/bin"
