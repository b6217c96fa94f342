# shellcheck shell=bash
# Standbys: cloning, what a standby disk holds, fencing and rebuilding a former primary.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

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
  install_program citus-rebuild-standby "$REBUILD_BIN" ""
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
