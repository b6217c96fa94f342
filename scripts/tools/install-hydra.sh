#!/usr/bin/env bash
# Builds Ory Hydra (github.com/ory/hydra/v2) from the Go module proxy, once per version, into
# ${XDG_CACHE_HOME:-~/.cache}/platform-tools/hydra/<version>/bin, and prints the binary's path.
# services/tenant-service/test/provisioning-hydra.test.ts runs it (SQLite store, `serve all --dev`) to prove the
# provisioning job's OAuth2 clients against the Hydra the charts deploy.
#
#   scripts/tools/install-hydra.sh                          # prints e.g. ~/.cache/platform-tools/hydra/v2.3.0/bin/hydra
#   HYDRA_VERSION=v2.2.0 scripts/tools/install-hydra.sh
#
# The default version is read from config/src/images.ts, where the charts pin Hydra's image: the tests run the Hydra
# that production runs, and a bump there rebuilds this.
#
# Exit codes: 0 built or cached; 3 cannot be had here (no Go, or the proxy does not serve it), so tests skip with
# the reason on stderr; 1 a failed build. How it builds: scripts/tools/go-tool.sh.
set -euo pipefail
if [[ -z "${HYDRA_VERSION:-}" ]]; then
  images="$(dirname "${BASH_SOURCE[0]}")/../../config/src/images.ts"
  HYDRA_VERSION="$(sed -n 's/^[[:space:]]*hydra: {.*tag: "\(v[^"]*\)".*/\1/p' "$images")"
  if [[ -z "$HYDRA_VERSION" ]]; then
    echo "install-hydra: found no hydra image tag in ${images}; set HYDRA_VERSION" >&2
    exit 1
  fi
fi
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
# As Hydra's own Makefile (install-stable) and .docker/Dockerfile-local-build: cgo on and the sqlite tags, so
# `hydra serve` can keep its store in a SQLite file (DSN sqlite://...) and tests need no database server for it.
# Without a C compiler the build cannot have SQLite: that is "cannot be had here", not a failed build.
if ! command -v "${CC:-gcc}" >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
  echo "install-hydra: no C compiler on PATH; Hydra's SQLite store needs cgo" >&2
  exit 3
fi
# Hydra's go.mod replaces its generated API client (github.com/ory/hydra-client-go/v2, used by the CLI commands)
# with ./internal/httpclient, a nested module the proxy's zip of hydra leaves out: the published client its go.mod
# requires is built in instead.
GO_TOOL_DROP_REPLACE=github.com/ory/hydra-client-go/v2 CGO_ENABLED=1 build_go_tool hydra github.com/ory/hydra/v2 "$HYDRA_VERSION" . \
  -tags sqlite,sqlite_omit_load_extension \
  -ldflags "-s -w -X github.com/ory/hydra/v2/driver/config.Version=${HYDRA_VERSION}"
