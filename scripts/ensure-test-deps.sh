#!/usr/bin/env bash
# Installs the Debian packages the test suites run real components from, when they are missing.
# Run by `pnpm test` before vitest. As root it installs with apt-get, non-interactively; otherwise it says what is
# missing and the suites that need it skip with a printed reason.
# `pnpm bench:tenant` runs it too: the benchmark needs the same servers, and wrk.
set -euo pipefail

# command-or-path : Debian package
REQUIRED=(
  "/usr/lib/postgresql/15/bin/postgres:postgresql-15"
  "openssl:openssl"
  "runuser:util-linux"
  "redis-server:redis-server"
  "promtool:prometheus"
  "amtool:prometheus-alertmanager"
  "wrk:wrk"
  "pgbackrest:pgbackrest"
  "jq:jq"
  "prometheus-node-exporter:prometheus-node-exporter"
  "systemd-analyze:systemd"
  # Automatic failover: infra/test/patroni-failover.test.ts and pnpm bench:failover run a real Patroni group with etcd.
  "/usr/bin/patroni:patroni"
  "/usr/bin/etcd:etcd-server"
  # The Citus VMs' etcd bootstrap (infra/test/etcd-bootstrap.test.ts) turns auth on with etcdctl; Patroni reaches
  # etcd over https only with python3-idna.
  "etcdctl:etcd-client"
  "/usr/lib/python3/dist-packages/idna:python3-idna"
  # The live Prometheus test (monitoring/test/live-prometheus.test.ts) scrapes Debian's exporters.
  "prometheus:prometheus"
  "prometheus-postgres-exporter:prometheus-postgres-exporter"
  "prometheus-redis-exporter:prometheus-redis-exporter"
  # The engines: shellcheck from Debian; Checkov and Schemathesis are installed from PyPI into venvs.
  "shellcheck:shellcheck"
  "python3:python3"
  # A network cut between a worker and PostgreSQL (services/tenant-service/test/partition.test.ts): namespaces,
  # veth links and a queue that drops everything, made with ip and tc.
  "ip:iproute2"
  "tc:iproute2"
)

missing=()
for entry in "${REQUIRED[@]}"; do
  probe="${entry%%:*}"
  package="${entry##*:}"
  if [[ "$probe" == /* ]]; then
    [[ -x "$probe" ]] || missing+=("$package")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("$package")
  fi
done

python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python3-venv")

# After the Debian packages: the engines the tests run, at their pinned versions (Go builds and PyPI installs).
engines() {
  bash "$(dirname "$0")/tools/install-all.sh"
}

if [[ ${#missing[@]} -eq 0 ]]; then
  engines
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test dependencies missing: ${missing[*]}. Install them (sudo apt-get install ${missing[*]}); until then the" \
    "tests that need them are skipped with a reason (a benchmark falls back or says what it needs)." >&2
  engines
  exit 0
fi

echo "installing test dependencies: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages start their own servers; the tests start theirs on free ports, so stop the defaults.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus prometheus-node-exporter prometheus-alertmanager prometheus-postgres-exporter prometheus-redis-exporter etcd patroni >/dev/null 2>&1 || true; fi
pkill -x etcd >/dev/null 2>&1 || true
pkill -x prometheus >/dev/null 2>&1 || true
pkill -f /usr/bin/prometheus-node-exporter >/dev/null 2>&1 || true
pkill -f prometheus-alertmanager >/dev/null 2>&1 || true
if command -v redis-cli >/dev/null 2>&1; then redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true; fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h | awk '{print $1, $2}' | while read -r version name; do pg_ctlcluster "$version" "$name" stop || true; done
fi
engines
