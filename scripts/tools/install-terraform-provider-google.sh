#!/usr/bin/env bash
# Builds the Google provider for Terraform (github.com/hashicorp/terraform-provider-google) from source, at the
# release @cdktf/provider-google was generated for, once per version, into a Terraform filesystem mirror in a cache
# outside the repository, and prints the mirror's directory. infra/test/terraform-validate.test.ts runs
# `terraform init` from it (no registry, no network) and then `terraform validate` and an offline plan.
#
#   scripts/tools/install-terraform-provider-google.sh     # prints e.g. ~/.cache/platform-tools/terraform-provider-google/6.50.0/mirror
#
# The pin is the release tag's commit, not the tag: the module's go.mod has no /v6 suffix, so Go refuses the v6.x
# tags as module versions, and the commit is what a tag cannot be moved away from.
#
# Where the source comes from, in order:
#   1. the Go module proxy, by the pinned commit (it serves what it has fetched before; a commit it has not is
#      refused with 403 "This module version is not available");
#   2. TERRAFORM_PROVIDER_GOOGLE_GIT, a git clone or mirror of github.com/hashicorp/terraform-provider-google that
#      holds the pinned commit (git's object id checks the content).
# Either way the provider's dependencies come from the Go module proxy and are checked against its go.sum.
#
# Exit codes: 0 built or already cached (mirror directory on stdout); 3 the provider cannot be had here (no Go, the
# proxy refuses the pinned commit and no clone was given, or the proxy refuses a module it needs), said on stderr,
# so callers skip with the reason; 1 anything else (a failed build, a clone without the pinned commit).
#
# The build is niced and runs one package at a time (GO_BUILD_PARALLELISM to change): the machines have two cores,
# shared with other builds. Measured on one of them, cold (empty Go build and module caches): see docs/DEPLOYMENT.md.
set -euo pipefail
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"

# @cdktf/provider-google 16.12.1 was generated for hashicorp/google 6.50.0 (its package.json, cdktf.provider.version;
# the stacks' required_providers say the same). Tag v6.50.0 is this commit.
PROVIDER_VERSION="6.50.0"
PROVIDER_COMMIT="956f510990a78614a06730c34e93779171c5e8f7"
MODULE="github.com/hashicorp/terraform-provider-google"

platform="$(go env GOOS 2>/dev/null || uname -s | tr '[:upper:]' '[:lower:]')_$(go env GOARCH 2>/dev/null || echo amd64)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/terraform-provider-google/${PROVIDER_VERSION}"
mirror="$cache/mirror"
# Terraform's unpacked filesystem-mirror layout: HOSTNAME/NAMESPACE/TYPE/VERSION/TARGET/terraform-provider-TYPE_vVERSION
package_dir="$mirror/registry.terraform.io/hashicorp/google/${PROVIDER_VERSION}/${platform}"
binary="$package_dir/terraform-provider-google_v${PROVIDER_VERSION}"

if [[ -x "$binary" ]]; then
  echo "$mirror"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-terraform-provider-google: no Go toolchain on PATH; the provider is built from source with it" >&2
  exit 3
fi

work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
started=$SECONDS

# 1. The module proxy, by commit. A throwaway module directory keeps the download from touching any go.mod of ours.
source_dir=""
mkdir -p "$work/download"
(cd "$work/download" && go mod init platform-tools/provider-download >/dev/null 2>&1)
if download="$(cd "$work/download" && go mod download -json "${MODULE}@${PROVIDER_COMMIT}" 2>&1)"; then
  source_dir="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
else
  proxy_refusal="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Error": "\(.*\)"[,]*$/\1/p' | sed 's/\\n/ /g; s/\\t/ /g')"
  proxy_refusal="${proxy_refusal:-$(printf '%s' "$download" | tr '\n' ' ')}"
  proxy_refusal="${proxy_refusal%.}"
fi

# 2. A clone that holds the pinned commit.
if [[ -z "$source_dir" ]]; then
  clone="${TERRAFORM_PROVIDER_GOOGLE_GIT:-}"
  if [[ -z "$clone" ]]; then
    echo "install-terraform-provider-google: the Go module proxy does not serve ${MODULE} at v${PROVIDER_VERSION}" \
      "(commit ${PROVIDER_COMMIT}): ${proxy_refusal}. Set TERRAFORM_PROVIDER_GOOGLE_GIT to a clone of" \
      "${MODULE} that holds that commit to build from it instead." >&2
    exit 3
  fi
  source_dir="$work/source"
  source_from_clone install-terraform-provider-google TERRAFORM_PROVIDER_GOOGLE_GIT "$PROVIDER_COMMIT" "$source_dir" || exit 1
  echo "install-terraform-provider-google: the module proxy refused ${PROVIDER_COMMIT} (${proxy_refusal}); building it from ${clone}" >&2
fi
if [[ -z "$source_dir" || ! -f "$source_dir/go.mod" ]]; then
  echo "install-terraform-provider-google: no source for ${MODULE} at ${PROVIDER_COMMIT}:" >&2
  printf '%s\n' "${download:-}" >&2
  exit 1
fi

# Build into a temporary file beside the cache and move it in whole: two test runs at once never see half a binary.
# The release's own flags: stripped, and the version the provider reports (its User-Agent and `terraform version`).
mkdir -p "$package_dir"
partial="$(mktemp "$package_dir/.provider.XXXXXX")"
log="$work/build.log"
parallelism="${GO_BUILD_PARALLELISM:-1}"
echo "install-terraform-provider-google: building ${MODULE} v${PROVIDER_VERSION} (${PROVIDER_COMMIT:0:12}) for ${platform}," \
  "once per version: about 12 minutes on two cores (go build -p ${parallelism}, niced)" >&2
if ! (cd "$source_dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 nice -n 10 go build -p "$parallelism" -trimpath \
  -ldflags "-s -w -X ${MODULE}/version.ProviderVersion=${PROVIDER_VERSION}" -o "$partial" .) >"$log" 2>&1; then
  rm -f "$partial"
  rc=0
  go_failure install-terraform-provider-google "${MODULE} v${PROVIDER_VERSION}" building "$log" || rc=$?
  exit "$rc"
fi
chmod 0755 "$partial"
mv -f "$partial" "$binary"
echo "install-terraform-provider-google: built in $((SECONDS - started)) s: $binary" >&2
echo "$mirror"
