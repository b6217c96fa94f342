#!/usr/bin/env bash
# Builds kube-score (github.com/zegl/kube-score) from the Go module proxy, once per version, into
# ${XDG_CACHE_HOME:-~/.cache}/platform-tools/kube-score/<version>/bin, and prints the binary's path.
# k8s/test/engines.test.ts scores every environment's manifests with it.
#
#   scripts/tools/install-kube-score.sh                     # prints e.g. ~/.cache/platform-tools/kube-score/v1.20.0/bin/kube-score
#   KUBE_SCORE_VERSION=v1.19.0 scripts/tools/install-kube-score.sh
#
# Exit codes: 0 built or cached; 3 cannot be had here (no Go, or the proxy does not serve it), so tests skip with
# the reason on stderr; 1 a failed build. How it builds: scripts/tools/go-tool.sh.
set -euo pipefail
KUBE_SCORE_VERSION="${KUBE_SCORE_VERSION:-v1.20.0}"
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
# As kube-score's release build: no cgo, its version stamped in.
CGO_ENABLED=0 build_go_tool kube-score github.com/zegl/kube-score "$KUBE_SCORE_VERSION" ./cmd/kube-score \
  -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION#v}"
