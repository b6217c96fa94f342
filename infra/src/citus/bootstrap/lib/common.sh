# shellcheck shell=bash
# Shared by every step: the paths a VM uses (and the tests redirect), logging, retries.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.
set -euo pipefail
umask 022

# Paths can be redirected only so the tests can render the configuration against a real PostgreSQL in a temporary
# directory (infra/test/bootstrap-postgres.test.ts); on a VM nothing sets them.
STATE_DIR="${BOOTSTRAP_STATE_DIR:-/var/lib/citus-bootstrap}"
TLS_DIR="${BOOTSTRAP_TLS_DIR:-/etc/postgresql/tls}"
PGDATA="$DATA_MOUNT/$PG_MAJOR/main"
PGCONF="${BOOTSTRAP_PGCONF_DIR:-/etc/postgresql/$PG_MAJOR/main}"
PGBACKREST_CONF_DIR="${BOOTSTRAP_PGBACKREST_DIR:-/etc/pgbackrest}"
PGBACKREST_SPOOL_DIR="${BOOTSTRAP_PGBACKREST_SPOOL_DIR:-/var/spool/pgbackrest}"
EXPORTER_CONF_DIR="${BOOTSTRAP_EXPORTER_DIR:-/etc/prometheus-postgres-exporter}"
EXPORTER_DEFAULTS="${BOOTSTRAP_EXPORTER_DEFAULTS:-/etc/default/prometheus-postgres-exporter}"
SYSTEMD_DIR="${BOOTSTRAP_SYSTEMD_DIR:-/etc/systemd/system}"
# node_exporter's textfile collector reads *.prom files here (Debian's default --collector.textfile.directory).
TEXTFILE_DIR="${BOOTSTRAP_TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}"
BACKUP_METRICS_BIN="${BOOTSTRAP_BACKUP_METRICS_BIN:-/usr/local/sbin/citus-backup-metrics}"
JOIN_WORKERS_BIN="${BOOTSTRAP_JOIN_WORKERS_BIN:-/usr/local/sbin/citus-join-workers}"
REBUILD_BIN="${BOOTSTRAP_REBUILD_BIN:-/usr/local/sbin/citus-rebuild-standby}"
RESTORE_POINT_BIN="${BOOTSTRAP_RESTORE_POINT_BIN:-/usr/local/sbin/citus-restore-point}"
RESTORE_BIN="${BOOTSTRAP_RESTORE_BIN:-/usr/local/sbin/citus-restore-to}"
# Seconds between reads of the fencing flag when the metadata server does not answer; only the tests shorten it.
FENCE_RETRY_DELAY="${BOOTSTRAP_FENCE_RETRY_DELAY:-2}"
PGUSER_HOME=/var/lib/postgresql
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
# On a standby VM, what its data disk holds (standby_data_state); main sets it before anything touches the disk.
STANDBY_STATE=""
PSQL=(sudo -u postgres psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only)

# Logs go to stderr: stdout of helpers such as secret_wait is their value.
log() { echo "citus-bootstrap[$ROLE $NODE_HOST]: $*" >&2; }

die() { log "FATAL: $*"; exit 1; }

# Runs a command until it succeeds, at most ATTEMPTS times, DELAY seconds apart. For the first boot's downloads: the
# package repositories are reached through Cloud NAT, and a network hiccup must not leave a VM half installed until
# someone reboots it (a startup script runs once per boot).
retry() {
  local attempts="$1" delay="$2" attempt
  shift 2
  for attempt in $(seq 1 "$attempts"); do
    "$@" && return 0
    ((attempt < attempts)) || break
    log "'$*' failed (attempt $attempt/$attempts); retrying in ${delay}s"
    sleep "$delay"
  done
  log "'$*' failed $attempts times"
  return 1
}

fetch_key() { curl -fsSL "$1" | gpg --dearmor --yes -o "$2"; }

# Installs the citus-* program $1 (infra/src/citus/bootstrap/bin/$1, carried in this script by citus_program) at $2,
# with this node's settings $3 (shell assignments) after its shebang; written aside and renamed, so a unit that runs
# it meanwhile never reads half a file.
install_program() {
  local name="$1" dest="$2" settings="$3"
  install -d -m 0755 "$(dirname "$dest")"
  {
    citus_program "$name" | sed -n 1p
    echo "# Installed by the Citus bootstrap on every boot: change infra/src/citus/bootstrap/bin/$name, not this file."
    [[ -z "$settings" ]] || printf '%s\n' "$settings"
    citus_program "$name" | sed 1d
  } >"$dest.new"
  chmod 0755 "$dest.new"
  mv "$dest.new" "$dest"
}
