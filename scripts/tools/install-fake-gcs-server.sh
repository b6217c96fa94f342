#!/usr/bin/env bash
# Builds fake-gcs-server (github.com/fsouza/fake-gcs-server), a Cloud Storage JSON and XML API server, from the Go
# module proxy, once per version, into ${XDG_CACHE_HOME:-~/.cache}/platform-tools/fake-gcs-server/<version>/bin, and
# prints the binary's path. services/tenant-service/test/export-gcs.test.ts runs the tenant service's gcs export
# store (@google-cloud/storage: resumable upload, reads, V4 signed URLs) against it.
#
#   scripts/tools/install-fake-gcs-server.sh                # prints e.g. ~/.cache/platform-tools/fake-gcs-server/v1.56.1/bin/fake-gcs-server
#   FAKE_GCS_SERVER_VERSION=v1.56.0 scripts/tools/install-fake-gcs-server.sh
#
# Exit codes: 0 built or cached; 3 cannot be had here (no Go, or the proxy does not serve it), so tests skip with
# the reason on stderr; 1 a failed build. How it builds: scripts/tools/go-tool.sh.
set -euo pipefail
FAKE_GCS_SERVER_VERSION="${FAKE_GCS_SERVER_VERSION:-v1.56.1}"
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
# As its release build: no cgo.
CGO_ENABLED=0 build_go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_SERVER_VERSION" . -ldflags "-s -w"
