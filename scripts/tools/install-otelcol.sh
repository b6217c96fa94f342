#!/usr/bin/env bash
# Builds an OpenTelemetry Collector holding the components the platform's collector configuration names
# (k8s/src/charts/monitoring/otel-collector.ts, otelCollectorConfig: the OTLP receiver, memory_limiter and batch, the googlecloud
# exporter, health_check), with the collector project's own builder (ocb), from the Go module proxy, once per
# version, into ${XDG_CACHE_HOME:-~/.cache}/platform-tools/otelcol/<version>/bin/otelcol, and prints its path.
# k8s/test/otel-collector.test.ts runs `otelcol validate` on every environment's rendered configuration with it: the
# collector's own parser and each component's own config validation, not a copy of their rules.
#
#   scripts/tools/install-otelcol.sh                         # prints e.g. ~/.cache/platform-tools/otelcol/0.165.0/bin/otelcol
#   OTELCOL_VERSION=0.164.0 scripts/tools/install-otelcol.sh
#
# The version is the one of the contrib image the cluster runs (config/src/images.ts, otelCollector), so the
# components validated are the ones deployed. A component added to the configuration must be added below too: the
# validation names it as unknown until then.
#
# Exit codes: 0 built or cached (path on stdout); 3 cannot be had here (no Go, or the proxy does not serve what the
# build needs), said on stderr so tests skip with the reason; 1 a failed build.
set -euo pipefail
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
OTELCOL_VERSION="${OTELCOL_VERSION:-0.165.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/otelcol/${OTELCOL_VERSION}"
binary="$cache/bin/otelcol"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi
# The builder is a Go command like the others (cached beside them); it then generates and compiles the collector.
builder="$(CGO_ENABLED=0 build_go_tool otelcol-builder go.opentelemetry.io/collector/cmd/builder "v${OTELCOL_VERSION}" .)"

mkdir -p "$cache/bin"
exec {lock}>"$cache/.lock"
flock "$lock"
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
core=go.opentelemetry.io/collector
contrib=github.com/open-telemetry/opentelemetry-collector-contrib
cat >"$work/manifest.yaml" <<EOF
dist:
  name: otelcol
  description: the platform's collector components, for otelcol validate
  output_path: ${work}/dist
  version: ${OTELCOL_VERSION}
receivers:
  - gomod: ${core}/receiver/otlpreceiver v${OTELCOL_VERSION}
processors:
  - gomod: ${core}/processor/memorylimiterprocessor v${OTELCOL_VERSION}
  - gomod: ${core}/processor/batchprocessor v${OTELCOL_VERSION}
exporters:
  - gomod: ${contrib}/exporter/googlecloudexporter v${OTELCOL_VERSION}
extensions:
  - gomod: ${contrib}/extension/healthcheckextension v${OTELCOL_VERSION}
EOF

echo "install-otelcol: building the collector ${OTELCOL_VERSION} with its builder (once per version; minutes on two cores)" >&2
log="$work/build.log"
# One package at a time and niced, as the other Go builds here: the machines have two cores, shared.
if ! CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -p=1" nice -n 10 "$builder" --config "$work/manifest.yaml" >"$log" 2>&1; then
  rc=0
  go_failure install-otelcol "the collector ${OTELCOL_VERSION}" building "$log" || rc=$?
  exit "$rc"
fi
partial="$(mktemp "$cache/bin/.otelcol.XXXXXX")"
cp "$work/dist/otelcol" "$partial"
chmod 0755 "$partial"
mv -f "$partial" "$binary"
echo "install-otelcol: built in $((SECONDS - started)) s: $binary" >&2
echo "$binary"
