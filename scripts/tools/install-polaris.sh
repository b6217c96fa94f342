#!/usr/bin/env bash
# Builds Fairwinds Polaris (github.com/fairwindsops/polaris) from the Go module proxy, once per version, into
# ${XDG_CACHE_HOME:-~/.cache}/platform-tools/polaris/<version>/bin, and prints the binary's path.
# k8s/test/engines.test.ts audits every environment's manifests with it (`polaris audit`, its default checks).
#
#   scripts/tools/install-polaris.sh
#   POLARIS_VERSION=v0.0.0-<time>-<commit> scripts/tools/install-polaris.sh
#   POLARIS_GIT=/path/to/a/clone scripts/tools/install-polaris.sh
#
# The version is a pseudo-version: Polaris tags its releases v10.x, but its go.mod declares the module without a
# /v10 suffix, so Go accepts none of those tags; the pin is the commit tagged v10.2.2. On this project's machines
# the module proxy refuses the module outright (403 "not available"), so this exits 3 and the Polaris tests are
# skipped with that reason, unless POLARIS_GIT names a clone of github.com/FairwindsOps/polaris that holds the commit
# (go-tool.sh): then it is built from that, with its dependencies from the proxy.
#
# Exit codes: 0 built or cached; 3 cannot be had here (no Go, or the proxy does not serve it), so tests skip with
# the reason on stderr; 1 a failed build. How it builds: scripts/tools/go-tool.sh.
set -euo pipefail
POLARIS_VERSION="${POLARIS_VERSION:-v0.0.0-20260806161001-dafa0b74fc09}"
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
# As Polaris's release build (.goreleaser.yml): no cgo, its version stamped in.
CGO_ENABLED=0 build_go_tool polaris github.com/fairwindsops/polaris "$POLARIS_VERSION" . \
  -ldflags "-s -w -X main.Version=10.2.2"
