# shellcheck shell=bash
# Where things are on a Citus VM (infra/src/citus/patroni-vm.ts names the same paths in Patroni's configuration).
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

# Redirected (BOOTSTRAP_*) only by the tests.
SYSTEMD_DIR="${BOOTSTRAP_SYSTEMD_DIR:-/etc/systemd/system}"
TLS_DIR="${BOOTSTRAP_TLS_DIR:-/etc/postgresql/tls}"
PGDATA="$DATA_MOUNT/$PG_MAJOR/main"
# Patroni's configuration (config.yml, with the passwords: postgres only) and the VM's sizing file it includes.
PATRONI_DIR="${BOOTSTRAP_PATRONI_DIR:-/etc/patroni}"
PGBACKREST_CONF_DIR="${BOOTSTRAP_PGBACKREST_DIR:-/etc/pgbackrest}"
PGBACKREST_SPOOL_DIR="${BOOTSTRAP_PGBACKREST_SPOOL_DIR:-/var/spool/pgbackrest}"
EXPORTER_CONF_DIR="${BOOTSTRAP_EXPORTER_DIR:-/etc/prometheus-postgres-exporter}"
EXPORTER_DEFAULTS="${BOOTSTRAP_EXPORTER_DEFAULTS:-/etc/default/prometheus-postgres-exporter}"
# node_exporter's textfile collector reads *.prom files here (Debian's default --collector.textfile.directory).
TEXTFILE_DIR="${BOOTSTRAP_TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}"
BACKUP_METRICS_BIN="${BOOTSTRAP_BACKUP_METRICS_BIN:-/usr/local/sbin/citus-backup-metrics}"
IS_LEADER_BIN="${BOOTSTRAP_IS_LEADER_BIN:-/usr/local/sbin/citus-is-leader}"
RESTORE_POINT_BIN="${BOOTSTRAP_RESTORE_POINT_BIN:-/usr/local/sbin/citus-restore-point}"
RESTORE_BIN="${BOOTSTRAP_RESTORE_BIN:-/usr/local/sbin/citus-restore-to}"
PGUSER_HOME="${BOOTSTRAP_PGUSER_HOME:-/var/lib/postgresql}"
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PSQL=(sudo -u postgres psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only)
# Who owns the server certificate and key (issue_server_certificate).
TLS_OWNER=postgres
