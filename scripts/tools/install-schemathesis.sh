#!/usr/bin/env bash
# Installs Schemathesis (https://schemathesis.readthedocs.io, PyPI package `schemathesis`) at a pinned version into a
# Python virtual environment in a cache outside the repository, once per version, and prints the path of its `st`.
# services/tenant-service/test/schemathesis.test.ts runs it, then runs Schemathesis against the tenant service's
# /openapi.json on loopback.
#
#   scripts/tools/install-schemathesis.sh        # prints e.g. ~/.cache/platform-tools/schemathesis/4.32.5/venv/bin/st
#   SCHEMATHESIS_VERSION=4.32.4 scripts/tools/install-schemathesis.sh
#
# Exit codes: 0 installed or already cached (path on stdout); 3 Schemathesis cannot be had here (no Python 3.9+ with
# venv, or PyPI does not serve schemathesis at that version or cannot be reached), said on stderr, so callers skip;
# 1 anything else (a failed install).
#
set -euo pipefail
# shellcheck source=SCRIPTDIR/pip-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/pip-tool.sh"

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
install_pip_tool schemathesis schemathesis "$SCHEMATHESIS_VERSION" st
