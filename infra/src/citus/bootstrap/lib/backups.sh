# shellcheck shell=bash
# pgBackRest: the stanza, scheduled backups and their metrics, cluster-wide restore points, restores.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

# What the backups repository holds for this node's stanza, as node_exporter textfile metrics that the CitusBackup*
# alerts read (docs/runbooks/backups.md). The scheduled backups rewrite it when they end, failed or not, and every
# boot does. It reads the repository rather than a timer's exit status, so a backup taken by hand counts, a timer
# that stopped firing shows as an ageing timestamp, and an unreadable repository leaves the file to age the same way.
install_backup_metrics() {
  install -d -m 0755 "$TEXTFILE_DIR"
  install_program citus-backup-metrics "$BACKUP_METRICS_BIN" "$(printf 'readonly STANZA=%q TEXTFILE_DIR=%q' "$STANZA" "$TEXTFILE_DIR")"
}

install_leader_check() {
  install_program citus-is-leader "$IS_LEADER_BIN" "$(printf 'readonly PG_PORT=%q' "$PG_PORT")"
}

# pgBackRest's configuration: the same on every member of a group (one stanza per group; only its leader archives
# and backs up, whichever member that is).
write_pgbackrest_config() {
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

# On every member of a group: the schedules, which run only where the group's leader is at that moment
# (citus-is-leader, ExecCondition: elsewhere the run is skipped, not failed), so a failover needs no step. The stanza
# and its first backup are made by the leader, once.
configure_backups() {
  install_leader_check
  # runuser, unlike sudo, keeps the environment: the tests point pgBackRest at a local repository through it.
  if ! runuser -u postgres -- "$IS_LEADER_BIN" >/dev/null; then
    log "a replica of group $CITUS_GROUP: its leader made the stanza; the backup schedules run here once this member leads"
  elif ! runuser -u postgres -- pgbackrest --stanza="$STANZA" info --output=json | grep -q '"status":{"code":0'; then
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
After=patroni.service

[Service]
Type=oneshot
User=postgres
ExecCondition=$IS_LEADER_BIN
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
# node's WAL; restoring every node to that name is consistent. Installed on every member of the coordinator's group:
# on a replica the command does nothing, so after a failover (which reboots nothing) the new leader carries on.
install_restore_points() {
  install -d -m 0755 "$SYSTEMD_DIR" "$TEXTFILE_DIR"
  install_program citus-restore-point "$RESTORE_POINT_BIN" \
    "$(printf 'readonly TEXTFILE_DIR=%q INTERVAL_SECONDS=%q' "$TEXTFILE_DIR" "$((RESTORE_POINT_INTERVAL_MINUTES * 60))")"
  # Runs as root, which writes node_exporter's directory; the script reaches PostgreSQL as postgres.
  cat >"$SYSTEMD_DIR/citus-restore-point.service" <<UNIT
[Unit]
Description=Write a cluster-wide Citus restore point
After=patroni.service

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
  install_program citus-restore-to "$RESTORE_BIN" \
    "$(printf 'readonly STANZA=%q PGDATA=%q PG_BIN=%q' "$STANZA" "$PGDATA" "$PG_BIN")"
}
