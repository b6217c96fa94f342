#!/usr/bin/env bash
# Installs Checkov (https://www.checkov.io, PyPI package `checkov`) at a pinned version into a Python virtual
# environment in a cache outside the repository, once per version, and prints the path of its `checkov`.
# infra/test/checkov.test.ts runs it, then runs Checkov's Terraform checks over every synthesized environment.
#
#   scripts/tools/install-checkov.sh                      # prints e.g. ~/.cache/platform-tools/checkov/3.3.30/venv/bin/checkov
#   CHECKOV_VERSION=3.3.29 scripts/tools/install-checkov.sh
#
# Exit codes: 0 installed or already cached (path on stdout); 3 Checkov cannot be had here (no Python 3.9+ with venv,
# or PyPI does not serve checkov at that version), said on stderr, so callers skip; 1 anything else (a failed install).
#
set -euo pipefail
# shellcheck source=SCRIPTDIR/pip-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/pip-tool.sh"

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
install_pip_tool checkov checkov "$CHECKOV_VERSION" checkov
