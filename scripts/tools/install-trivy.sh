#!/usr/bin/env bash
# Builds Trivy (github.com/aquasecurity/trivy) from the Go module proxy, once per version, into
# ${XDG_CACHE_HOME:-~/.cache}/platform-tools/trivy/<version>/bin, and prints the binary's path.
# k8s/test/engines.test.ts and infra/test/trivy.test.ts run its misconfiguration scanner (`trivy config`) offline,
# on the checks compiled into the binary (the github.com/aquasecurity/trivy-checks module its go.mod pins).
#
#   scripts/tools/install-trivy.sh                          # prints e.g. ~/.cache/platform-tools/trivy/v0.74.0/bin/trivy
#   TRIVY_VERSION=v0.73.0 scripts/tools/install-trivy.sh
#
# Exit codes: 0 built or cached; 3 cannot be had here (no Go, or the proxy does not serve it or a module it needs),
# so tests skip with the reason on stderr; 1 a failed build. How it builds: scripts/tools/go-tool.sh.
set -euo pipefail
TRIVY_VERSION="${TRIVY_VERSION:-v0.74.0}"
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
# As Trivy's release build (its goreleaser.yml and magefile): no cgo, encoding/json/v2 on, its version stamped in.
CGO_ENABLED=0 GOEXPERIMENT=jsonv2 build_go_tool trivy github.com/aquasecurity/trivy "$TRIVY_VERSION" ./cmd/trivy \
  -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}"
