# Citus node bootstrap. The variables above this line are generated per node by infra/src/citus/startup-script.ts;
# this body is the same on every node and branches on ROLE (coordinator, worker, standby).
#
# It runs on every boot (GCE startup script) and is idempotent: each step checks the state it would create.
# Logs: journalctl -u google-startup-scripts (or Cloud Logging, "startup-script").
# Re-run by hand: sudo google_metadata_script_runner startup
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

# Seconds between attempts of the Secret Manager calls below; only the tests shorten it.
SECRET_RETRY_DELAY="${BOOTSTRAP_SECRET_RETRY_DELAY:-10}"

secret_get() {
  gcloud secrets versions access latest --secret="$1" --project="$PROJECT_ID" 2>/dev/null
}

# Whether a secret has a version: 0 yes, 1 no (Secret Manager answered NOT_FOUND). Any other failure (the VM's
# permission not propagated yet, the API unreachable) is retried and then fatal, never read as "no": the
# coordinator would otherwise generate a second password or a second CA over the one every node already uses.
secret_has_version() {
  local attempt err
  for attempt in $(seq 1 30); do
    if err="$(gcloud secrets versions access latest --secret="$1" --project="$PROJECT_ID" 2>&1 >/dev/null)"; then
      return 0
    fi
    [[ "$err" == *NOT_FOUND* ]] && return 1
    log "cannot tell whether secret $1 has a version (attempt $attempt/30): ${err//$'\n'/ }"
    sleep "$SECRET_RETRY_DELAY"
  done
  die "Secret Manager did not answer for secret $1; nothing was generated. Check the VM's service account and retry"
}

secret_put() {
  local attempt
  for attempt in $(seq 1 30); do
    printf '%s' "$2" | gcloud secrets versions add "$1" --data-file=- --project="$PROJECT_ID" >/dev/null && return 0
    log "adding a version to secret $1 failed (attempt $attempt/30); retrying in ${SECRET_RETRY_DELAY}s"
    sleep "$SECRET_RETRY_DELAY"
  done
  die "could not add a version to secret $1"
}

# Waits for a secret another node creates (the coordinator generates every database secret).
secret_wait() {
  local value attempt
  for attempt in $(seq 1 180); do
    if value="$(secret_get "$1")" && [[ -n "$value" ]]; then
      printf '%s' "$value"
      return 0
    fi
    log "waiting for secret $1 (attempt $attempt/180): the coordinator creates it on its first boot"
    sleep 10
  done
  die "secret $1 has no version after 30 minutes: check the coordinator's startup log"
}

mount_data_disk() {
  local device=/dev/disk/by-id/google-pgdata uuid
  for _ in $(seq 1 60); do [[ -e "$device" ]] && break; sleep 2; done
  [[ -e "$device" ]] || die "data disk $device is not attached"
  if ! blkid "$device" >/dev/null 2>&1; then
    log "formatting the empty data disk $device"
    mkfs.ext4 -q -m 0 -E lazy_itable_init=0,lazy_journal_init=0,discard "$device"
  fi
  uuid="$(blkid -s UUID -o value "$device")"
  mkdir -p "$DATA_MOUNT"
  if ! grep -q "UUID=$uuid" /etc/fstab; then
    echo "UUID=$uuid $DATA_MOUNT ext4 discard,defaults,noatime,nofail 0 2" >>/etc/fstab
  fi
  mountpoint -q "$DATA_MOUNT" || mount "$DATA_MOUNT"
}

install_packages() {
  local marker="$STATE_DIR/packages-$PG_MAJOR-$CITUS_PACKAGE"
  local packages=("postgresql-$PG_MAJOR" "$CITUS_PACKAGE" pgbackrest prometheus-postgres-exporter prometheus-node-exporter jq)
  if [[ -f "$marker" ]]; then
    # A package added to the list reaches the nodes installed before it on their next boot. Only the missing ones
    # are named: naming an installed, held package would make apt-get refuse once a newer version is published.
    local missing=() package
    for package in "${packages[@]}"; do
      dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -qx 'install ok installed' || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}: added to the node's packages after it was installed"
    retry 30 10 apt-get update -q
    retry 30 10 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    return 0
  fi
  local codename
  # shellcheck source=/dev/null # the VM image's own /etc/os-release (Debian), read for its release codename
  codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
  log "installing PostgreSQL $PG_MAJOR and $CITUS_PACKAGE from the PGDG and Citus repositories ($codename)"
  # The cluster is created below with data checksums and on the data disk, not by the package's postinst.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/00-platform.conf
  retry 30 10 apt-get update -q
  retry 30 10 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl gnupg ca-certificates openssl
  install -d -m 0755 /usr/share/keyrings
  retry 30 10 fetch_key https://www.postgresql.org/media/keys/ACCC4CF8.asc /usr/share/keyrings/pgdg.gpg
  retry 30 10 fetch_key https://packagecloud.io/citusdata/community/gpgkey /usr/share/keyrings/citusdata.gpg
  chmod 0644 /usr/share/keyrings/pgdg.gpg /usr/share/keyrings/citusdata.gpg
  echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] https://apt.postgresql.org/pub/repos/apt $codename-pgdg main" \
    >/etc/apt/sources.list.d/pgdg.list
  echo "deb [signed-by=/usr/share/keyrings/citusdata.gpg] https://packagecloud.io/citusdata/community/debian/ $codename main" \
    >/etc/apt/sources.list.d/citusdata.list
  chmod 0644 /etc/apt/sources.list.d/pgdg.list /etc/apt/sources.list.d/citusdata.list
  retry 30 10 apt-get update -q
  retry 30 10 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
  # Database upgrades are planned operations (docs/runbooks), never a side effect of unattended-upgrades.
  apt-mark hold "postgresql-$PG_MAJOR" "$CITUS_PACKAGE" pgbackrest >/dev/null
  mkdir -p "$STATE_DIR"
  touch "$marker"
}

# Every node serves TLS with a certificate for its DNS name, signed by the platform database CA, so clients and
# Citus's own node-to-node connections use sslmode=verify-full.
ensure_ca() {
  if secret_has_version "$SECRET_DB_CA_CERT"; then return 0; fi
  log "creating the database CA"
  local work
  work="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$PREFIX database CA" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
  # Key first: nodes wait for the certificate, so once it exists the matching key does too.
  secret_put "$SECRET_DB_CA_KEY" "$(cat "$work/ca.key")"
  secret_put "$SECRET_DB_CA_CERT" "$(cat "$work/ca.crt")"
  rm -rf "$work"
}

issue_server_certificate() {
  install -d -m 0700 -o postgres -g postgres "$TLS_DIR"
  secret_wait "$SECRET_DB_CA_CERT" >"$TLS_DIR/ca.crt"
  if [[ -f "$TLS_DIR/server.crt" ]] && [[ -f "$STATE_DIR/cert-hosts" ]] && [[ "$(cat "$STATE_DIR/cert-hosts")" == "$CERT_HOSTS" ]] \
    && openssl x509 -checkend 2592000 -noout -in "$TLS_DIR/server.crt" >/dev/null \
    && openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" >/dev/null 2>&1; then
    chown postgres:postgres "$TLS_DIR"/*
    return 0
  fi
  log "issuing the server certificate for $NODE_HOST"
  local work ip
  work="$(mktemp -d)"
  ip="$(hostname -I | awk '{print $1}')"
  secret_wait "$SECRET_DB_CA_KEY" >"$work/ca.key"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$NODE_HOST" \
    -keyout "$TLS_DIR/server.key" -out "$work/server.csr" 2>/dev/null
  # A standby also carries its primary's name: failover repoints that DNS record to it (docs/runbooks).
  local san="IP:$ip" host
  for host in $CERT_HOSTS; do san="$san,DNS:$host"; done
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$work/ext"
  openssl x509 -req -in "$work/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 825 -extfile "$work/ext" -out "$TLS_DIR/server.crt" 2>/dev/null
  rm -rf "$work"
  chown postgres:postgres "$TLS_DIR"/*
  chmod 0600 "$TLS_DIR/server.key"
  echo "$CERT_HOSTS" >"$STATE_DIR/cert-hosts"
}

# Passwords are generated here, on the coordinator, straight into Secret Manager: they never appear in Terraform
# configuration or state.
ensure_password() {
  if secret_has_version "$1"; then return 0; fi
  log "generating a password into secret $1"
  secret_put "$1" "$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 40)"
}

# Whether the installed server has a setting: an unknown one in postgresql.conf stops it from starting.
postgres_knows_setting() {
  local settings
  settings="$(runuser -u postgres -- "$PG_BIN/postgres" --describe-config)" || die "cannot list the settings of $PG_BIN/postgres"
  awk -F '\t' -v name="$1" '$1 == name { found = 1 } END { exit !found }' <<<"$settings"
}

write_postgres_config() {
  local mem_mb shared_buffers cache maintenance
  mem_mb="$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
  shared_buffers=$((mem_mb / 4))
  cache=$((mem_mb * 3 / 4))
  maintenance=$((mem_mb / 16 > 2048 ? 2048 : mem_mb / 16))
  install -d -m 0755 -o postgres -g postgres "$PGCONF/conf.d"
  cat >"$PGCONF/conf.d/50-platform.conf" <<CONF
# Generated by the Citus bootstrap on every boot: change infra/src/citus, not this file.
listen_addresses = '*'
port = $PG_PORT
max_connections = $MAX_CONNECTIONS
shared_buffers = ${shared_buffers}MB
effective_cache_size = ${cache}MB
maintenance_work_mem = ${maintenance}MB
shared_preload_libraries = 'citus,pg_stat_statements'
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$TLS_DIR/server.crt'
ssl_key_file = '$TLS_DIR/server.key'
ssl_ca_file = '$TLS_DIR/ca.crt'
ssl_min_protocol_version = 'TLSv1.2'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
# A lost standby must not fill the primary's disk with retained WAL.
max_slot_wal_keep_size = '$MAX_SLOT_WAL_KEEP'
hot_standby = on
wal_compression = on
archive_mode = on
archive_command = 'pgbackrest --stanza=$STANZA archive-push %p'
archive_timeout = 60
citus.shard_count = $SHARD_COUNT
citus.shard_replication_factor = 1
# Tenant isolation: the service sends SET LOCAL as its own statement; 'local' forwards it to the workers inside
# the transaction, so row-level security sees the tenant on router and multi-shard queries alike.
citus.propagate_set_commands = 'local'
# Per-tenant query counts and CPU (citus_stat_tenants), exported for the per-tenant dashboard.
citus.stat_tenants_track = 'all'
citus.node_conninfo = 'sslmode=verify-full sslrootcert=$TLS_DIR/ca.crt'
log_line_prefix = '%m [%p] %q%u@%d/%a '
log_min_duration_statement = 1000
log_lock_waits = on
log_temp_files = 0
CONF
  # PostgreSQL 15.19, 16.15 and 17.11 decode only with the output plugins named here (by default pgoutput and
  # test_decoding). Citus moves shards with pgoutput but splits them, as tenant isolation does, with its own "citus"
  # plugin, which would fail with 'library "citus" may not be used as an output plugin'. An older minor does not know
  # the setting and would refuse to start on it.
  if postgres_knows_setting output_plugin_libraries; then
    echo "output_plugin_libraries = 'pgoutput, citus'" >>"$PGCONF/conf.d/50-platform.conf"
  fi
  if [[ "$ROLE" == standby && "$STANDBY_STATE" != promoted ]]; then
    cat >>"$PGCONF/conf.d/50-platform.conf" <<CONF
primary_conninfo = 'host=$PRIMARY_HOST port=$PG_PORT user=replicator passfile=$PGUSER_HOME/.pgpass sslmode=verify-full sslrootcert=$TLS_DIR/ca.crt application_name=standby'
primary_slot_name = 'standby'
CONF
  fi
  chown postgres:postgres "$PGCONF/conf.d/50-platform.conf"
  chmod 0644 "$PGCONF/conf.d/50-platform.conf"

  # First match wins: the superuser only from the database subnet, everything over TLS with SCRAM, the rest rejected.
  {
    echo "# Generated by the Citus bootstrap on every boot: change infra/src/citus, not this file."
    echo "local   all          postgres                 peer"
    echo "local   all          prometheus               peer"
    echo "local   all          all                      scram-sha-256"
    echo "hostssl replication  replicator  $DATA_CIDR   scram-sha-256"
    echo "hostssl all          postgres    $DATA_CIDR   scram-sha-256"
    echo "hostssl all          postgres    0.0.0.0/0    reject"
    echo "hostssl all          replicator  0.0.0.0/0    reject"
    for cidr in $CLIENT_CIDRS; do
      echo "hostssl $DB_NAME     all         $cidr   scram-sha-256"
      echo "hostssl hydra        hydra       $cidr   scram-sha-256"
    done
    echo "host    all          all         0.0.0.0/0    reject"
    echo "host    all          all         ::/0         reject"
  } >"$PGCONF/pg_hba.conf"
  chown postgres:postgres "$PGCONF/pg_hba.conf"
  chmod 0640 "$PGCONF/pg_hba.conf"

  install -d -m 0750 -o postgres -g postgres "$PGBACKREST_SPOOL_DIR"
  install -d -m 0755 "$PGBACKREST_CONF_DIR"
  cat >"$PGBACKREST_CONF_DIR/pgbackrest.conf" <<CONF
[global]
repo1-type=gcs
repo1-gcs-bucket=$BACKUP_BUCKET
repo1-gcs-key-type=auto
repo1-path=/pgbackrest
repo1-retention-full-type=count
repo1-retention-full=$FULL_BACKUP_RETENTION
compress-type=zst
process-max=2
start-fast=y
archive-async=y
spool-path=$PGBACKREST_SPOOL_DIR
log-level-console=info
log-level-file=detail

[$STANZA]
pg1-path=$PGDATA
pg1-port=$PG_PORT
CONF
  chmod 0644 "$PGBACKREST_CONF_DIR/pgbackrest.conf"
}

# libpq reads this file for streaming replication and for Citus's node-to-node connections, which Citus opens as
# the client's own role: a query by platform_app on the coordinator reaches the workers as platform_app.
write_pgpass() {
  local superuser replication migrator app
  superuser="$(secret_wait "$SECRET_DB_SUPERUSER")"
  replication="$(secret_wait "$SECRET_DB_REPLICATION")"
  migrator="$(secret_wait "$SECRET_DB_MIGRATOR")"
  app="$(secret_wait "$SECRET_DB_APP")"
  install -m 0600 -o postgres -g postgres /dev/null "$PGUSER_HOME/.pgpass"
  {
    printf '*:%s:replication:replicator:%s\n' "$PG_PORT" "$replication"
    printf '*:%s:*:postgres:%s\n' "$PG_PORT" "$superuser"
    printf '*:%s:*:platform_migrator:%s\n' "$PG_PORT" "$migrator"
    printf '*:%s:*:platform_app:%s\n' "$PG_PORT" "$app"
  } >"$PGUSER_HOME/.pgpass"
}

# The cluster never starts on its own at boot (start.conf is "manual"): only this script starts it, after checking
# that the node has not been fenced, so a failed primary that comes back cannot become a second primary.
start_postgres() {
  echo manual >"$PGCONF/start.conf"
  systemctl restart "postgresql@$PG_MAJOR-main"
  for _ in $(seq 1 60); do
    sudo -u postgres pg_isready -q -p "$PG_PORT" && return 0
    sleep 2
  done
  die "PostgreSQL did not start: journalctl -u postgresql@$PG_MAJOR-main"
}

# postgresql-common's registration of the cluster ($PGCONF: postgresql.conf, start.conf, pg_ctl.conf, environment),
# without which postgresql@<major>-main cannot start it, lives on the boot disk and the data on the data disk, so
# either can be new without the other: a first boot, or a VM recreated around its kept data disk (a new image
# replaces the boot disk). A new primary's data is created here. Data that exists already (a primary's after a
# recreation, a standby's clone) is registered through a throwaway cluster: pg_createcluster imports only a data
# directory that carries its own postgresql.conf, which these do not, and a throwaway gives every node the same
# Debian defaults a new primary gets.
register_cluster() {
  [[ -f "$PGCONF/postgresql.conf" ]] && return 0
  # Generated again on every boot (write_postgres_config); pg_createcluster refuses to run over one.
  rm -f "$PGCONF/pg_hba.conf"
  chown postgres:postgres "$DATA_MOUNT"
  install -d -m 0755 -o postgres -g postgres "$DATA_MOUNT/$PG_MAJOR"
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    # A standby's data comes only from its primary (clone_from_primary), never from initdb.
    [[ "$ROLE" != standby ]] || die "no cluster in $PGDATA to register: a standby is registered after its clone"
    log "creating the PostgreSQL $PG_MAJOR cluster in $PGDATA with data checksums"
    pg_createcluster "$PG_MAJOR" main -d "$PGDATA" -- --data-checksums --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    return 0
  fi
  log "registering the existing cluster in $PGDATA with postgresql-common"
  local scratch
  scratch="$(mktemp -d "${TMPDIR:-/var/tmp}/citus-register.XXXXXX")"
  chown postgres:postgres "$scratch"
  pg_createcluster "$PG_MAJOR" main -d "$scratch/data" >/dev/null
  pg_conftool "$PG_MAJOR" main set data_directory "$PGDATA"
  rm -rf "$scratch"
}

# psql reads the password from the environment (\getenv), so it never appears in a process list or a log.
# Run in the Citus database on the coordinator, the change propagates to every worker.
set_role_password() {
  local role="$1" password="$2" database="${3:-postgres}"
  PLATFORM_ROLE_PASSWORD="$password" "${PSQL[@]}" -d "$database" -v role="$role" <<'SQL'
\getenv password PLATFORM_ROLE_PASSWORD
ALTER ROLE :"role" PASSWORD :'password';
SQL
}

configure_primary() {
  local superuser replication
  superuser="$(secret_wait "$SECRET_DB_SUPERUSER")"
  replication="$(secret_wait "$SECRET_DB_REPLICATION")"
  set_role_password postgres "$superuser"
  # Workers create the replication role locally: it must exist before the coordinator knows the node.
  "${PSQL[@]}" <<'SQL'
SELECT 'CREATE ROLE replicator WITH REPLICATION LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'replicator') \gexec
SQL
  create_monitoring_role
  set_role_password replicator "$replication"
  "${PSQL[@]}" -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  "${PSQL[@]}" -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS citus" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  if [[ -n "$STANDBY_HOST" ]]; then
    "${PSQL[@]}" -c "SELECT pg_create_physical_replication_slot('standby') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'standby')" >/dev/null
  fi
}

# postgres_exporter (Debian's package) runs as the OS user prometheus and connects over the local socket with peer
# authentication, as the database role of the same name: no password anywhere, and only pg_monitor's reads.
# Each node creates it for itself, like the replication role (standbys get it through replication).
create_monitoring_role() {
  "${PSQL[@]}" <<'SQL'
SET citus.enable_ddl_propagation TO off;
SELECT 'CREATE ROLE prometheus WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'prometheus') \gexec
GRANT pg_monitor TO prometheus;
SQL
}

# The exporters Prometheus scrapes on every database VM (the firewall opens their ports to the pod range only):
# postgres_exporter with the platform's queries (monitoring/src/exporter-queries.ts), and node_exporter for disk,
# memory and CPU, which the package starts with its defaults.
configure_exporters() {
  install -d -m 0755 "$EXPORTER_CONF_DIR"
  printf '%s\n' "$EXPORTER_QUERIES" >"$EXPORTER_CONF_DIR/queries.yaml"
  chmod 0644 "$EXPORTER_CONF_DIR/queries.yaml"
  cat >"$EXPORTER_DEFAULTS" <<CONF
# Generated by the Citus bootstrap on every boot: change infra/src/citus, not this file.
DATA_SOURCE_NAME='host=/var/run/postgresql port=$PG_PORT dbname=$DB_NAME user=prometheus sslmode=disable'
ARGS='--web.listen-address=:$POSTGRES_EXPORTER_PORT --extend.query-path=$EXPORTER_CONF_DIR/queries.yaml'
CONF
  chmod 0644 "$EXPORTER_DEFAULTS"
  if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
    systemctl enable prometheus-postgres-exporter prometheus-node-exporter >/dev/null
    systemctl restart prometheus-postgres-exporter prometheus-node-exporter
  fi
}

# What the backups repository holds for this node's stanza, as node_exporter textfile metrics that the CitusBackup*
# alerts read (docs/runbooks/backups.md). The scheduled backups rewrite it when they end, failed or not, and every
# boot does. It reads the repository rather than a timer's exit status, so a backup taken by hand counts, a timer
# that stopped firing shows as an ageing timestamp, and an unreadable repository leaves the file to age the same way.
install_backup_metrics() {
  install -d -m 0755 "$(dirname "$BACKUP_METRICS_BIN")" "$TEXTFILE_DIR"
  {
    echo '#!/bin/bash'
    echo '# Generated by the Citus bootstrap on every boot: change infra/src/citus/bootstrap.sh, not this file.'
    printf 'readonly STANZA=%q TEXTFILE_DIR=%q\n' "$STANZA" "$TEXTFILE_DIR"
    cat <<'SCRIPT'
set -euo pipefail
info="$(runuser -u postgres -- pgbackrest --stanza="$STANZA" --output=json info)"
tmp="$(mktemp "$TEXTFILE_DIR/.pgbackrest.prom.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# The newest backup of each type (full, diff, incr). jq -e fails when the stanza is not in the answer at all.
jq -e -r --arg stanza "$STANZA" '
  (.[] | select(.name == $stanza)) as $s
  | ($s.backup | group_by(.type) | map(max_by(.timestamp.stop))) as $newest
  | "# HELP pgbackrest_stanza_status_code pgBackRest status of the stanza: 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data, 4 different across repos, 5 database mismatch across repos, 99 other.",
    "# TYPE pgbackrest_stanza_status_code gauge",
    "pgbackrest_stanza_status_code{stanza=\"\($stanza)\"} \($s.status.code)",
    "# HELP pgbackrest_backup_last_completion_timestamp_seconds When the newest backup of the type in the repository finished.",
    "# TYPE pgbackrest_backup_last_completion_timestamp_seconds gauge",
    ($newest[] | "pgbackrest_backup_last_completion_timestamp_seconds{stanza=\"\($stanza)\",type=\"\(.type)\"} \(.timestamp.stop)"),
    "# HELP pgbackrest_backup_error 1 when the newest backup of the type reported errors, such as invalid page checksums.",
    "# TYPE pgbackrest_backup_error gauge",
    ($newest[] | "pgbackrest_backup_error{stanza=\"\($stanza)\",type=\"\(.type)\"} \(if .["error"] then 1 else 0 end)")
' <<<"$info" >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$TEXTFILE_DIR/pgbackrest.prom"
SCRIPT
  } >"$BACKUP_METRICS_BIN.new"
  chmod 0755 "$BACKUP_METRICS_BIN.new"
  mv "$BACKUP_METRICS_BIN.new" "$BACKUP_METRICS_BIN"
}

configure_backups() {
  # runuser, unlike sudo, keeps the environment: the tests point pgBackRest at a local repository through it.
  if ! runuser -u postgres -- pgbackrest --stanza="$STANZA" info --output=json | grep -q '"status":{"code":0'; then
    log "creating pgBackRest stanza $STANZA in gs://$BACKUP_BUCKET/pgbackrest"
    runuser -u postgres -- pgbackrest --stanza="$STANZA" stanza-create
    runuser -u postgres -- pgbackrest --stanza="$STANZA" --type=full backup
  fi
  install_backup_metrics
  install -d -m 0755 "$SYSTEMD_DIR"
  local kind schedule
  for kind in full diff; do
    if [[ "$kind" == full ]]; then schedule="Sun *-*-* 01:00:00"; else schedule="Mon..Sat *-*-* 01:00:00"; fi
    # ExecStopPost runs after a failed backup too; "+" runs it as root, which writes node_exporter's directory.
    cat >"$SYSTEMD_DIR/pgbackrest-$kind.service" <<UNIT
[Unit]
Description=pgBackRest $kind backup of $STANZA
After=postgresql@$PG_MAJOR-main.service

[Service]
Type=oneshot
User=postgres
ExecStart=/usr/bin/pgbackrest --stanza=$STANZA --type=$kind backup
ExecStopPost=+$BACKUP_METRICS_BIN
UNIT
    cat >"$SYSTEMD_DIR/pgbackrest-$kind.timer" <<UNIT
[Unit]
Description=pgBackRest $kind backup schedule

[Timer]
OnCalendar=$schedule
RandomizedDelaySec=1800
Persistent=true

[Install]
WantedBy=timers.target
UNIT
  done
  chmod 0644 "$SYSTEMD_DIR"/pgbackrest-*.service "$SYSTEMD_DIR"/pgbackrest-*.timer
  # Not fatal: the node serves and archives WAL without it, and CitusBackupMetricsMissing says the file is absent.
  "$BACKUP_METRICS_BIN" || log "could not write the backup metrics to $TEXTFILE_DIR (the error is above); docs/runbooks/backups.md"
  if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
    systemctl daemon-reload
    systemctl enable --now pgbackrest-full.timer pgbackrest-diff.timer >/dev/null
  fi
}

# Cluster-wide restore points (docs/runbooks/restore-points.md). Restoring each node to the same time does not give
# a consistent cluster: a distributed transaction may be committed on one node and not yet on another at that
# instant. citus_create_restore_point blocks distributed commits for a moment and writes one named record into every
# node's WAL; restoring every node to that name is consistent. Installed on both coordinator VMs of a pair: on a
# standby the command does nothing, so after a promotion (which does not reboot) the new primary carries on.
install_restore_points() {
  install -d -m 0755 "$(dirname "$RESTORE_POINT_BIN")" "$SYSTEMD_DIR" "$TEXTFILE_DIR"
  {
    echo '#!/bin/bash'
    echo '# Generated by the Citus bootstrap on every boot: change infra/src/citus/bootstrap.sh, not this file.'
    printf 'readonly TEXTFILE_DIR=%q INTERVAL_SECONDS=%q\n' "$TEXTFILE_DIR" "$((RESTORE_POINT_INTERVAL_MINUTES * 60))"
    cat <<'SCRIPT'
set -euo pipefail
# runuser keeps the environment: the unit sets PGDATABASE and PGPORT.
psql=(runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only)
recovery="$("${psql[@]}" -c 'SELECT pg_is_in_recovery()')" || {
  echo "citus-restore-point: cannot reach PostgreSQL here (the error is above); no restore point written" >&2
  exit 1
}
if [[ "$recovery" == t ]]; then
  echo "citus-restore-point: this coordinator is a standby; its primary writes the restore points"
  exit 0
fi
# The name is the restore target (pgbackrest restore --type=name); UTC to the second, so it is unique and sorts.
name="citus-$(date -u +%Y%m%dT%H%M%SZ)"
# citus_create_restore_point takes exclusive locks on pg_dist_node, pg_dist_partition and pg_dist_transaction, and
# every distributed commit needs pg_dist_transaction. Waiting behind a long holder (a node addition, a table being
# distributed) would queue every commit of the cluster behind this call, so it gives up after two seconds and the
# next run tries again.
lsn="$(PGOPTIONS='-c lock_timeout=2s' "${psql[@]}" -v name="$name" <<'SQL'
SELECT citus_create_restore_point(:'name')
SQL
)" || {
  echo "citus-restore-point: citus_create_restore_point('$name') failed (the error is above); the last restore point stays the newest" >&2
  exit 1
}
tmp="$(mktemp "$TEXTFILE_DIR/.citus-restore-point.prom.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<METRICS
# HELP citus_restore_point_last_timestamp_seconds When the newest cluster-wide restore point was written; its name label is the restore target.
# TYPE citus_restore_point_last_timestamp_seconds gauge
citus_restore_point_last_timestamp_seconds{name="$name"} $(date +%s)
# HELP citus_restore_point_interval_seconds How often the coordinator writes a cluster-wide restore point.
# TYPE citus_restore_point_interval_seconds gauge
citus_restore_point_interval_seconds $INTERVAL_SECONDS
METRICS
chmod 0644 "$tmp"
mv "$tmp" "$TEXTFILE_DIR/citus-restore-point.prom"
echo "citus-restore-point: wrote $name at coordinator LSN $lsn"
SCRIPT
  } >"$RESTORE_POINT_BIN.new"
  chmod 0755 "$RESTORE_POINT_BIN.new"
  mv "$RESTORE_POINT_BIN.new" "$RESTORE_POINT_BIN"
  # Runs as root, which writes node_exporter's directory; the script reaches PostgreSQL as postgres.
  cat >"$SYSTEMD_DIR/citus-restore-point.service" <<UNIT
[Unit]
Description=Write a cluster-wide Citus restore point
After=postgresql@$PG_MAJOR-main.service

[Service]
Type=oneshot
Environment=PGDATABASE=$DB_NAME PGPORT=$PG_PORT
ExecStart=$RESTORE_POINT_BIN
UNIT
  cat >"$SYSTEMD_DIR/citus-restore-point.timer" <<UNIT
[Unit]
Description=Cluster-wide Citus restore point schedule

[Timer]
OnBootSec=5min
OnUnitActiveSec=${RESTORE_POINT_INTERVAL_MINUTES}min
AccuracySec=1min

[Install]
WantedBy=timers.target
UNIT
  chmod 0644 "$SYSTEMD_DIR/citus-restore-point.service" "$SYSTEMD_DIR/citus-restore-point.timer"
  if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
    systemctl daemon-reload
    systemctl enable --now citus-restore-point.timer >/dev/null
  fi
}

# `sudo citus-restore-to <restore point>` restores this node's data directory to a cluster-wide restore point
# (docs/runbooks/restore-points.md), run on every node of the cluster with the same name. pgBackRest picks the latest
# backup by itself only for time targets; for a named one it must be told a backup that finished before the point,
# and picking it by hand on each of dozens of nodes at 3 a.m. is where a restore goes wrong.
install_restore_command() {
  install -d -m 0755 "$(dirname "$RESTORE_BIN")"
  {
    echo '#!/bin/bash'
    echo '# Generated by the Citus bootstrap on every boot: change infra/src/citus/bootstrap.sh, not this file.'
    printf 'readonly STANZA=%q PGDATA=%q PG_BIN=%q PG_MAJOR=%q\n' "$STANZA" "$PGDATA" "$PG_BIN" "$PG_MAJOR"
    cat <<'SCRIPT'
set -euo pipefail
die() { echo "citus-restore-to: $*" >&2; exit 2; }
[[ "$(id -u)" == 0 ]] || die "run it as root: sudo citus-restore-to <restore point>"
target="${1:-}"
[[ "$target" =~ ^citus-([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z$ ]] ||
  die "usage: citus-restore-to citus-YYYYMMDDTHHMMSSZ, the name of a cluster-wide restore point (docs/runbooks/restore-points.md); got '$target'"
written="$(date -u -d "${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-${BASH_REMATCH[3]} ${BASH_REMATCH[4]}:${BASH_REMATCH[5]}:${BASH_REMATCH[6]}" +%s)" ||
  die "'$target' does not name a real time"
if runuser -u postgres -- "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; then
  die "PostgreSQL is running on $PGDATA: stop it first (sudo systemctl stop postgresql@$PG_MAJOR-main); nothing was changed"
fi
info="$(runuser -u postgres -- pgbackrest --stanza="$STANZA" --output=json info)" || die "pgBackRest cannot read the $STANZA repository (the error is above); nothing was changed"
# The newest backup that finished before the restore point was written: replaying its WAL reaches the point.
set="$(jq -r --arg stanza "$STANZA" --argjson written "$written" '
  .[] | select(.name == $stanza) | .backup | map(select(.timestamp.stop < $written)) | max_by(.timestamp.stop) | .label // empty
' <<<"$info")"
[[ -n "$set" ]] || die "no backup of $STANZA finished before $target: this node cannot be brought back to it (pgbackrest info lists what there is); nothing was changed"
echo "citus-restore-to: restoring $STANZA from backup $set, then replaying WAL to restore point $target"
runuser -u postgres -- pgbackrest --stanza="$STANZA" --delta --set="$set" --type=name --target="$target" --target-action=promote restore
echo "citus-restore-to: restored. Start PostgreSQL (sudo systemctl start postgresql@$PG_MAJOR-main): it replays to $target and"
echo "promotes; its log must say 'recovery stopping at restore point \"$target\"'. Every node is restored to the same name."
SCRIPT
  } >"$RESTORE_BIN.new"
  chmod 0755 "$RESTORE_BIN.new"
  mv "$RESTORE_BIN.new" "$RESTORE_BIN"
}

create_application_roles() {
  local migrator app
  migrator="$(secret_wait "$SECRET_DB_MIGRATOR")"
  app="$(secret_wait "$SECRET_DB_APP")"
  # Created on the coordinator, so Citus propagates them to every worker, including workers added later.
  "${PSQL[@]}" -d "$DB_NAME" <<'SQL'
SELECT 'CREATE ROLE platform_migrator WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_migrator') \gexec
SELECT 'CREATE ROLE platform_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_app') \gexec
SELECT 'CREATE ROLE platform_queue WITH NOLOGIN NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_queue') \gexec
-- The job queue's schema is owned by platform_queue; the service and the migration runner act through it.
GRANT platform_queue TO platform_app, platform_migrator;
SQL
  set_role_password platform_migrator "$migrator" "$DB_NAME"
  set_role_password platform_app "$app" "$DB_NAME"
  "${PSQL[@]}" -v db="$DB_NAME" <<'SQL'
GRANT CONNECT, CREATE ON DATABASE :"db" TO platform_migrator;
GRANT CONNECT ON DATABASE :"db" TO platform_app;
GRANT CREATE ON DATABASE :"db" TO platform_queue;
SQL
}

# Ory Hydra keeps its own small, plain PostgreSQL database on the coordinator (no Citus extension in it).
create_hydra_database() {
  "${PSQL[@]}" <<'SQL'
SELECT 'CREATE ROLE hydra WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hydra') \gexec
SELECT 'CREATE DATABASE hydra OWNER hydra'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'hydra') \gexec
SQL
  set_role_password hydra "$(secret_wait "$SECRET_HYDRA_DB")"
}

# Workers can boot after the coordinator, so joining them is a retrying unit, not a one-shot step that could give up.
install_worker_join_unit() {
  install -d -m 0755 "$(dirname "$JOIN_WORKERS_BIN")" "$SYSTEMD_DIR"
  cat >"$JOIN_WORKERS_BIN" <<SCRIPT
#!/bin/bash
set -euo pipefail
psql=(psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only -d '$DB_NAME')
"\${psql[@]}" -c "SELECT citus_set_coordinator_host('$COORDINATOR_HOST', $PG_PORT)" >/dev/null
missing=0
for host in $WORKER_HOSTS; do
  if [[ "\$("\${psql[@]}" -c "SELECT count(*) FROM pg_dist_node WHERE nodename = '\$host' AND noderole = 'primary'")" != 0 ]]; then
    continue
  fi
  if ! "\${psql[@]}" -h "\$host" -c "SELECT 1 FROM pg_extension WHERE extname = 'citus'" 2>/dev/null | grep -q 1; then
    echo "worker \$host is not ready yet"
    missing=1
    continue
  fi
  "\${psql[@]}" -c "SELECT citus_add_node('\$host', $PG_PORT)" >/dev/null
  echo "added worker \$host"
done
exit \$missing
SCRIPT
  chmod 0755 "$JOIN_WORKERS_BIN"
  cat >"$SYSTEMD_DIR/citus-join-workers.service" <<UNIT
[Unit]
Description=Add the configured Citus workers to the coordinator
After=postgresql@$PG_MAJOR-main.service
Requires=postgresql@$PG_MAJOR-main.service

[Service]
Type=oneshot
User=postgres
Environment=PGSSLMODE=verify-full PGSSLROOTCERT=$TLS_DIR/ca.crt PGPORT=$PG_PORT
ExecStart=$JOIN_WORKERS_BIN
Restart=on-failure
RestartSec=30
UNIT
  chmod 0644 "$SYSTEMD_DIR/citus-join-workers.service"
  if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
    systemctl daemon-reload
    systemctl start --no-block citus-join-workers.service
  fi
}

# What the data disk of a standby VM holds, read before anything touches it:
#   standby   a streaming standby (standby.signal);
#   promoted  a standby that has been promoted (docs/runbooks/citus-failover.md): the live primary of its pair;
#   empty     nothing worth keeping: a new disk, or a clone cut short (pg_basebackup writes backup_label first and
#             pg_control last, and a finished clone gets standby.signal before it ever starts).
# Any other cluster stops the bootstrap: a data directory it does not understand is never deleted.
standby_data_state() {
  if [[ -f "$PGDATA/standby.signal" ]]; then echo standby; return 0; fi
  if [[ ! -f "$PGDATA/global/pg_control" || -f "$PGDATA/backup_label" ]]; then echo empty; return 0; fi
  local control state timeline
  control="$(LC_ALL=C "$PG_BIN/pg_controldata" "$PGDATA")" || die "pg_controldata cannot read $PGDATA: left as it is"
  state="$(sed -n 's/^Database cluster state: *//p' <<<"$control")"
  timeline="$(sed -n "s/^Latest checkpoint's TimeLineID: *//p" <<<"$control")"
  case "$state" in
    # Promotion always starts a new timeline, and a clean shutdown checkpoints on it.
    "shut down") if [[ "$timeline" =~ ^[0-9]+$ ]] && ((timeline >= 2)); then echo promoted; return 0; fi ;;
    # Ran as a primary and stopped without a clean shutdown (the first checkpoint after promotion may not have
    # been written yet, so the timeline proves nothing here).
    "in production" | "shutting down" | "in crash recovery") echo promoted; return 0 ;;
  esac
  die "$PGDATA holds a cluster in state '$state' on timeline $timeline without standby.signal; left as it is. If it is this node's standby copy, recreate standby.signal; otherwise see docs/runbooks/citus-failover.md"
}

clone_from_primary() {
  chown postgres:postgres "$DATA_MOUNT"
  # Assigned on its own line so that a die inside stops the bootstrap (set -e ignores it inside a case word).
  local state
  state="$(standby_data_state)"
  case "$state" in
    standby) return 0 ;;
    # Cloning starts by emptying the data directory: never over the primary a failover made of this node.
    promoted) die "refusing to clone $PRIMARY_HOST over $PGDATA: this node has been promoted and holds the live data" ;;
  esac
  log "cloning $PRIMARY_HOST with pg_basebackup"
  install -d -m 0755 -o postgres -g postgres "$DATA_MOUNT/$PG_MAJOR"
  install -d -m 0700 -o postgres -g postgres "$PGDATA"
  systemctl stop "postgresql@$PG_MAJOR-main" 2>/dev/null || true
  # The primary creates the 'standby' slot on its own boot, which may come after this one: retry for 30 minutes.
  local attempt
  for attempt in $(seq 1 180); do
    find "$PGDATA" -mindepth 1 -delete
    if sudo -u postgres env PGSSLMODE=verify-full PGSSLROOTCERT="$TLS_DIR/ca.crt" \
      pg_basebackup -h "$PRIMARY_HOST" -p "$PG_PORT" -U replicator -D "$PGDATA" -X stream -S standby --checkpoint=fast; then
      sudo -u postgres touch "$PGDATA/standby.signal"
      return 0
    fi
    log "pg_basebackup from $PRIMARY_HOST failed (attempt $attempt/180); retrying in 10s"
    sleep 10
  done
  die "could not clone $PRIMARY_HOST: check that it is up and has the replication slot 'standby'"
}

# The instance's citus-fenced metadata value, empty when it is not set. An answer other than the value or "not set"
# is retried for a minute and then stops the boot: a fenced VM must never start PostgreSQL because the flag could
# not be read.
fence_flag() {
  local out code attempt
  for attempt in $(seq 1 30); do
    out="$(curl -sS -H 'Metadata-Flavor: Google' -w '\n%{http_code}' \
      http://metadata.google.internal/computeMetadata/v1/instance/attributes/citus-fenced 2>/dev/null || true)"
    code="${out##*$'\n'}"
    case "$code" in
      200) printf '%s' "${out%$'\n'*}"; return 0 ;;
      404) return 0 ;;
    esac
    log "cannot read citus-fenced from the metadata server (HTTP ${code:-none}, attempt $attempt/30)"
    sleep "$FENCE_RETRY_DELAY"
  done
  die "the metadata server did not say whether this VM is fenced; PostgreSQL was not started"
}

# The pair's primary DNS name: this VM's own on a primary, the one it streams from on a standby. After a failover it
# points at the promoted VM (docs/runbooks/citus-failover.md, step 4).
pair_primary_host() { if [[ "$ROLE" == standby ]]; then echo "$PRIMARY_HOST"; else echo "$NODE_HOST"; fi; }

# citus-rebuild-standby (docs/runbooks/citus-failover.md, step 5): makes the fenced former primary of a pair a standby
# of the promoted one. It discards this disk's cluster, so it checks first and stops, deleting nothing, unless: this
# VM is fenced; PostgreSQL is not running on it; and the pair's primary answers, as the replication role, for the
# same cluster (system identifier) on a later timeline than this disk's. Then what is here is the superseded past of
# what runs there, and the only writes lost are those the failover already gave up.
#
# `citus-rebuild-standby --reclone` clones a standby copy again, fenced or not: after a whole-cluster restore (its
# primary restarted behind it, docs/runbooks/restore-points.md, step 5). It requires standby.signal on the disk
# instead of the fence and the timeline: a standby copy is never the only copy of anything its primary still serves.
rebuild_as_standby() {
  local mode="${1:-}" primary fenced conninfo remote remote_id remote_tli control local_id local_tli slot create=()
  primary="$(pair_primary_host)"
  case "$mode" in
    --reclone)
      mount_data_disk
      [[ -f "$PGDATA/standby.signal" ]] ||
        die "--reclone: $PGDATA holds no standby copy (no standby.signal; a primary, or a promoted node, has none): left as it is"
      ;;
    "")
      fenced="$(fence_flag)"
      [[ "$fenced" == true ]] || die "not fenced: only a fenced former primary is rebuilt (docs/runbooks/citus-failover.md, step 2)"
      mount_data_disk
      if [[ -f "$PGDATA/standby.signal" ]]; then
        log "$PGDATA already holds a standby copy; starting it"
        start_postgres
        return 0
      fi
      ;;
    *) die "usage: citus-rebuild-standby [--reclone]" ;;
  esac
  if runuser -u postgres -- "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; then
    die "PostgreSQL is running on $PGDATA: stop it first (sudo systemctl stop postgresql@$PG_MAJOR-main)"
  fi
  # Only the tests point this elsewhere (a local server without TLS).
  conninfo="${BOOTSTRAP_REBUILD_SOURCE:-host=$primary port=$PG_PORT user=replicator sslmode=verify-full sslrootcert=$TLS_DIR/ca.crt}"
  # dbname=replication: the name .pgpass lists the replication password under, as pg_basebackup uses it.
  remote="$(runuser -u postgres -- psql -X -At -F ' ' -d "$conninfo dbname=replication replication=true" -c IDENTIFY_SYSTEM)" ||
    die "cannot reach $primary as the replication role: it must be the promoted primary (steps 3 and 4) first"
  read -r remote_id remote_tli _ <<<"$remote"
  if [[ -f "$PGDATA/global/pg_control" ]]; then
    control="$(LC_ALL=C "$PG_BIN/pg_controldata" "$PGDATA")" || die "pg_controldata cannot read $PGDATA: left as it is"
    local_id="$(sed -n 's/^Database system identifier: *//p' <<<"$control")"
    local_tli="$(sed -n "s/^Latest checkpoint's TimeLineID: *//p" <<<"$control")"
    [[ "$local_id" == "$remote_id" ]] ||
      die "$PGDATA holds another cluster (system identifier $local_id; $primary has $remote_id): left as it is"
    if [[ "$mode" == --reclone ]]; then
      log "discarding the standby copy in $PGDATA (timeline $local_tli) to clone $primary (timeline $remote_tli) again"
    else
      ((local_tli < remote_tli)) ||
        die "$PGDATA is on timeline $local_tli and $primary on $remote_tli: this disk is not behind it and may hold the newest data; left as it is"
      log "discarding the superseded cluster in $PGDATA (timeline $local_tli; $primary is on timeline $remote_tli)"
    fi
  fi
  # The promoted node never created the slot its new standby needs (it was a standby itself): create it if missing.
  slot="$(runuser -u postgres -- psql -X -At -d "$conninfo dbname=replication replication=true" -c "READ_REPLICATION_SLOT standby")"
  [[ "${slot%%|*}" == physical ]] || create=(--create-slot)
  install -d -m 0755 -o postgres -g postgres "$DATA_MOUNT/$PG_MAJOR"
  install -d -m 0700 -o postgres -g postgres "$PGDATA"
  find "$PGDATA" -mindepth 1 -delete
  log "cloning $primary into $PGDATA"
  runuser -u postgres -- pg_basebackup -d "$conninfo" -D "$PGDATA" -X stream -S standby "${create[@]}" -R --checkpoint=fast
  register_cluster
  start_postgres
  if [[ "$mode" == --reclone ]]; then
    log "streaming from $primary as its standby"
  else
    log "streaming from $primary as its standby. The VM stays fenced; a reboot starts it as a standby again"
  fi
}

# The command an SRE runs for rebuild_as_standby: it sources this VM's own startup script from the instance metadata,
# so the checks and the clone are the bootstrap's. Installed at every boot, fenced or not.
install_rebuild_command() {
  install -d -m 0755 "$(dirname "$REBUILD_BIN")"
  cat >"$REBUILD_BIN.new" <<'SCRIPT'
#!/bin/bash
# Generated by the Citus bootstrap: change infra/src/citus/bootstrap.sh, not this file.
# Makes this fenced former primary a standby of its promoted pair (docs/runbooks/citus-failover.md, step 5); with
# --reclone, clones this VM's out-of-date standby copy again (docs/runbooks/restore-points.md, step 5).
set -euo pipefail
[[ "$(id -u)" == 0 ]] || { echo "citus-rebuild-standby: run it as root (sudo citus-rebuild-standby)" >&2; exit 2; }
script="$(mktemp)"
trap 'rm -f "$script"' EXIT
curl -fsS -H 'Metadata-Flavor: Google' -o "$script" \
  http://metadata.google.internal/computeMetadata/v1/instance/attributes/startup-script
# shellcheck disable=SC2034 # read by the startup script sourced below: it defines its functions and does not run main
BOOTSTRAP_SOURCE_ONLY=1
# shellcheck source=/dev/null # this VM's startup script, fetched from the instance metadata above
source "$script"
rebuild_as_standby "$@"
SCRIPT
  chmod 0755 "$REBUILD_BIN.new"
  mv "$REBUILD_BIN.new" "$REBUILD_BIN"
}

# A fenced VM serves as no primary, so none of a primary's schedules run on it: its backups would fail against a
# stopped server or a standby copy, and so would its restore points, every hour. The boot that next configures
# them (unfenced, or promoted) enables them again.
stop_primary_schedules() {
  local timer
  for timer in pgbackrest-full.timer pgbackrest-diff.timer citus-restore-point.timer; do
    [[ -f "$SYSTEMD_DIR/$timer" ]] || continue
    systemctl disable --now "$timer" >/dev/null 2>&1 || log "could not stop $timer: run systemctl disable --now $timer"
  done
}

# A fenced VM (docs/runbooks/citus-failover.md, step 2) never serves as a primary. Its data disk may hold a standby
# copy of the pair's new primary (step 5, citus-rebuild-standby): that one is started, so a reboot does not leave the
# pair without its standby. Anything else stays down.
exit_if_fenced() {
  # Assigned on its own line: a die inside fence_flag stops the boot here (set -e ignores it inside [[ ]]).
  local fenced
  fenced="$(fence_flag)"
  [[ "$fenced" == true ]] || return 0
  stop_primary_schedules
  mount_data_disk
  if [[ -f "$PGDATA/standby.signal" && -f "$PGCONF/postgresql.conf" ]]; then
    log "fenced (instance metadata citus-fenced=true); its data disk holds a standby copy, started as a standby"
    start_postgres
    exit 0
  fi
  log "fenced (instance metadata citus-fenced=true): PostgreSQL stays down. docs/runbooks/citus-failover.md"
  systemctl stop "postgresql@$PG_MAJOR-main" 2>/dev/null || true
  exit 0
}

main() {
  install_rebuild_command
  install_restore_command
  exit_if_fenced
  mkdir -p "$STATE_DIR"
  mount_data_disk
  install_packages
  if [[ "$ROLE" == coordinator ]]; then
    for secret in "$SECRET_DB_SUPERUSER" "$SECRET_DB_REPLICATION" "$SECRET_DB_MIGRATOR" "$SECRET_DB_APP" "$SECRET_HYDRA_DB" "$SECRET_HYDRA_SYSTEM" "$SECRET_GRAFANA_ADMIN"; do
      ensure_password "$secret"
    done
    ensure_ca
  fi
  issue_server_certificate
  if [[ "$ROLE" == standby ]]; then
    STANDBY_STATE="$(standby_data_state)"
    write_pgpass
    [[ "$STANDBY_STATE" != empty ]] || clone_from_primary
    register_cluster
    write_postgres_config
    start_postgres
    if [[ "$STANDBY_STATE" == promoted ]]; then
      # After a failover this VM is the primary of its pair until the roles are swapped in the config: it keeps
      # its data across reboots and takes the scheduled backups its old primary took (same pgBackRest stanza).
      configure_backups
      configure_exporters
      # A promoted coordinator's standby adds the configured workers, as the coordinator did: a worker added to the
      # config after the failover joins through it (citus-join-workers is idempotent).
      if [[ "$NODE_KIND" == coordinator ]]; then install_worker_join_unit; install_restore_points; fi
      log "promoted: serving as the primary for $PRIMARY_HOST, with no standby of its own (docs/runbooks/citus-failover.md, step 5)"
      return 0
    fi
    configure_exporters
    # Idle while this is a standby; a promotion, which does not reboot, makes it write the restore points.
    if [[ "$NODE_KIND" == coordinator ]]; then install_restore_points; fi
    log "streaming from $PRIMARY_HOST; promotion is manual: docs/runbooks/citus-failover.md"
    return 0
  fi
  register_cluster
  write_postgres_config
  write_pgpass
  start_postgres
  configure_primary
  configure_backups
  configure_exporters
  if [[ "$ROLE" == coordinator ]]; then
    create_application_roles
    create_hydra_database
    install_worker_join_unit
    install_restore_points
  fi
  log "ready"
}

# The tests source this file with BOOTSTRAP_SOURCE_ONLY=1 to call single functions; on a VM nothing sets it.
if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
  main "$@"
fi
