#!/usr/bin/env bash
# Prints the path of a Terraform CLI at the version the project pins. A `terraform` on PATH that reports exactly
# that version is used as it is; otherwise Terraform is built from the Go module proxy (github.com/hashicorp/terraform
# at the release tag), once per version, into a cache outside the repository. infra/test/terraform-validate.test.ts
# validates and plans the synthesized stacks with it.
#
#   scripts/tools/install-terraform.sh                   # prints e.g. /usr/local/bin/terraform
#   TERRAFORM_FROM_SOURCE=1 scripts/tools/install-terraform.sh   # ignore PATH, use (or build) the cached build
#
# Why Terraform and not OpenTofu: `cdktf deploy` (docs/DEPLOYMENT.md) runs the terraform CLI, the stacks' lock and
# state are Terraform's, and the machines come with this release; pinning the same one keeps tests and deploys on
# one engine. `terraform test` with mock_provider and override_data needs 1.7 or later.
#
# Exit codes: 0 found or built (path on stdout); 3 Terraform cannot be had here (no Go, or the module proxy does not
# serve it or a module it needs), said on stderr, so callers skip; 1 anything else (a failed build).
set -euo pipefail

TERRAFORM_VERSION="1.11.4"
MODULE="github.com/hashicorp/terraform"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/terraform/${TERRAFORM_VERSION}"
binary="$cache/bin/terraform"

version_of() {
  CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$1" version -json 2>/dev/null | sed -n 's/^[[:space:]]*"terraform_version": "\([^"]*\)",*$/\1/p'
}

if [[ -z "${TERRAFORM_FROM_SOURCE:-}" ]] && on_path="$(command -v terraform 2>/dev/null)"; then
  found="$(version_of "$on_path")"
  if [[ "$found" == "$TERRAFORM_VERSION" ]]; then
    echo "$on_path"
    exit 0
  fi
  echo "install-terraform: ${on_path} is Terraform ${found:-of unknown version}, not the pinned ${TERRAFORM_VERSION}; using a build of ${TERRAFORM_VERSION}" >&2
fi

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-terraform: no Go toolchain on PATH; Terraform ${TERRAFORM_VERSION} is built from source with it" >&2
  exit 3
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init platform-tools/terraform-download >/dev/null 2>&1

started=$SECONDS
if ! download="$(go mod download -json "${MODULE}@v${TERRAFORM_VERSION}" 2>&1)"; then
  reason="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Error": "\(.*\)"[,]*$/\1/p' | sed 's/\\n/ /g; s/\\t/ /g')"
  echo "install-terraform: the Go module proxy does not serve ${MODULE}@v${TERRAFORM_VERSION}: ${reason:-$download}" >&2
  exit 3
fi
source_dir="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$source_dir" || ! -d "$source_dir" ]]; then
  echo "install-terraform: go mod download did not say where ${MODULE}@v${TERRAFORM_VERSION} is:" >&2
  printf '%s\n' "$download" >&2
  exit 1
fi

# Built inside the downloaded module, so its replace directives apply as in its own build (`go install module@version`
# refuses them), with the release's flags (scripts/build.sh there): stripped, and not marked as a dev build.
mkdir -p "$cache/bin"
partial="$(mktemp "$cache/bin/.terraform.XXXXXX")"
log="$work/build.log"
parallelism="${GO_BUILD_PARALLELISM:-1}"
echo "install-terraform: building ${MODULE}@v${TERRAFORM_VERSION} (once per version; several minutes on two cores, go build -p ${parallelism}, niced)" >&2
if ! (cd "$source_dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 nice -n 10 go build -p "$parallelism" -trimpath \
  -ldflags "-s -w -X '${MODULE}/version.dev=no'" -o "$partial" .) >"$log" 2>&1; then
  rm -f "$partial"
  refused="$(sed -n 's/^go: \([^ ]*@[^ :]*\): reading .*: 4[0-9][0-9] .*/\1/p; s/^.*: \([^ ]*@v[^ :]*\): reading .*: 4[0-9][0-9] .*/\1/p' "$log" | sort -u | paste -sd ' ' -)"
  if [[ -n "$refused" ]]; then
    echo "install-terraform: the Go module proxy does not serve what ${MODULE}@v${TERRAFORM_VERSION} needs: ${refused}" >&2
    exit 3
  fi
  grep -v '^go: downloading ' "$log" >&2 || true
  echo "install-terraform: building ${MODULE}@v${TERRAFORM_VERSION} failed (output above)" >&2
  exit 1
fi
chmod 0755 "$partial"
found="$(version_of "$partial")"
if [[ "$found" != "$TERRAFORM_VERSION" ]]; then
  rm -f "$partial"
  echo "install-terraform: the build reports version '${found}', not ${TERRAFORM_VERSION}" >&2
  exit 1
fi
mv -f "$partial" "$binary"
echo "install-terraform: built in $((SECONDS - started)) s: $binary" >&2
echo "$binary"
