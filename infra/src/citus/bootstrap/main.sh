# shellcheck shell=bash
# Citus node bootstrap: the main script. infra/src/citus/startup-script.ts assembles the startup script from the
# node's variables, the libraries in lib/ (one per concern), the citus-* programs in bin/ and this file, last. The
# body is the same on every node and branches on ROLE (coordinator, worker, standby).
#
# It runs on every boot (GCE startup script) and is idempotent: each step checks the state it would create.
# Logs: journalctl -u google-startup-scripts (or Cloud Logging, "startup-script").
# Re-run by hand: sudo google_metadata_script_runner startup

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
