# shellcheck shell=bash
# Citus node bootstrap: the main script. infra/src/citus/startup-script.ts assembles the startup script from the
# node's variables, the libraries in lib/ (one per concern), the citus-* programs in bin/ and this file, last. The
# body is the same on every node and branches on ROLE (coordinator, worker, standby).
#
# It runs on every boot (GCE startup script) and is idempotent: each step checks the state it would create.
# Logs: journalctl -u google-startup-scripts (or Cloud Logging, "startup-script").
# Re-run by hand: sudo google_metadata_script_runner startup

main() {
  install_restore_command
  mkdir -p "$STATE_DIR"
  mount_data_disk
  install_packages
  # One member generates every secret: two generating at once on a first boot would each keep their own.
  if [[ "$GENERATES_SECRETS" == 1 ]]; then
    for secret in "$SECRET_DB_SUPERUSER" "$SECRET_DB_REPLICATION" "$SECRET_DB_MIGRATOR" "$SECRET_DB_APP" "$SECRET_HYDRA_DB" \
      "$SECRET_HYDRA_SYSTEM" "$SECRET_GRAFANA_ADMIN" "$SECRET_ETCD_ROOT" "$SECRET_ETCD_PATRONI" "$SECRET_PATRONI_API"; do
      ensure_password "$secret"
    done
    ensure_ca
  fi
  issue_server_certificate
  wait_for_dcs
  retire_debian_cluster
  write_pgpass
  write_sizing_conf
  write_patroni_config
  write_pgbackrest_config
  configure_watchdog
  configure_exporters
  # Patroni starts or adopts PostgreSQL: it initialises a new group's first member, clones a new replica from the
  # leader, and follows the DCS on every boot after. Nothing here starts PostgreSQL itself.
  install_patroni_unit
  local role
  role="$(wait_for_member)"
  if [[ "$role" == primary ]]; then configure_leader; fi
  configure_backups
  if [[ "$ROLE" == coordinator ]]; then
    if [[ "$role" == primary ]]; then
      create_application_roles
      create_hydra_database
    fi
    install_restore_points
  fi
  log "ready: Patroni member $MEMBER_NAME of group $CITUS_GROUP, now its $role (patronictl -c $PATRONI_DIR/config.yml list)"
}

# The tests source this file with BOOTSTRAP_SOURCE_ONLY=1 to call single functions; on a VM nothing sets it.
if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
  main "$@"
fi
