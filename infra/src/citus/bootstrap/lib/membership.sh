# shellcheck shell=bash
# The coordinator adds the configured workers to the cluster.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

# Workers can boot after the coordinator, so joining them is a retrying unit, not a one-shot step that could give up.
install_worker_join_unit() {
  install -d -m 0755 "$SYSTEMD_DIR"
  local hosts=() host list=""
  read -r -a hosts <<<"$WORKER_HOSTS"
  for host in "${hosts[@]}"; do list+=" $(printf '%q' "$host")"; done
  install_program citus-join-workers "$JOIN_WORKERS_BIN" \
    "$(printf 'readonly DB_NAME=%q COORDINATOR_HOST=%q PG_PORT=%q\nreadonly WORKER_HOSTS=(%s )' "$DB_NAME" "$COORDINATOR_HOST" "$PG_PORT" "$list")"
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
