#!/usr/bin/env bash
# Prints the path of the Terraform CLI at the version the project pins, after checking that it is that version.
# infra/test/terraform-validate.test.ts validates and plans the synthesized stacks with it.
#
#   scripts/tools/install-terraform.sh          # prints e.g. /usr/local/bin/terraform
#   TERRAFORM=/opt/tf/terraform scripts/tools/install-terraform.sh   # check and use that one instead of PATH's
#
# Why Terraform, and this release: `cdktf deploy` (docs/DEPLOYMENT.md) runs the terraform CLI, so the checks run on
# the engine that deploys; the project's machines come with Terraform 1.11.4; `terraform test` with mock_provider and
# override_data needs 1.7 or later.
#
# Why it is not built here when missing: Terraform cannot be built from the Go module proxy. Its go.mod replaces its
# state backends (internal/backend/remote-state/{azure,consul,cos,gcs,kubernetes,oss,pg,s3} and internal/legacy) with
# directories that are modules of their own, which a module's download leaves out, and the proxy serves no version of
# them. OpenTofu builds from the proxy, but it is another engine than the one that deploys. No prebuilt binary is
# downloaded either.
#
# Exit codes: 0 the pinned version (path on stdout); 3 no terraform here, said on stderr, so callers skip; 1 a
# terraform of another version, said on stderr, so callers fail: the checks would run on an engine the project does
# not pin.
set -euo pipefail

TERRAFORM_VERSION="1.11.4"

candidate="${TERRAFORM:-$(command -v terraform 2>/dev/null || true)}"
if [[ -z "$candidate" || ! -x "$candidate" ]]; then
  echo "install-terraform: no terraform ${candidate:+at ${candidate} }on this machine; the project pins Terraform ${TERRAFORM_VERSION}," \
    "which comes with the machine image (it cannot be built from the Go module proxy: the proxy does not serve its" \
    "state backend modules)" >&2
  exit 3
fi

found="$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$candidate" version -json 2>/dev/null |
  sed -n 's/^[[:space:]]*"terraform_version": "\([^"]*\)",*$/\1/p')"
if [[ "$found" != "$TERRAFORM_VERSION" ]]; then
  echo "install-terraform: ${candidate} is Terraform ${found:-of unknown version}; the project pins ${TERRAFORM_VERSION}" \
    "(scripts/tools/install-terraform.sh). Put Terraform ${TERRAFORM_VERSION} first on PATH (or in TERRAFORM=), or" \
    "move the pin and check the stacks with the new version" >&2
  exit 1
fi
echo "$candidate"
