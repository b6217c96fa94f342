# shellcheck shell=bash
# The etcd VMs' bootstrap, main script: infra/src/etcd/startup-script.ts assembles the startup script from the
# member's variables, the Citus bootstrap's common, secrets, disk and TLS libraries, lib/etcd.sh and this file.
# Runs on every boot and is idempotent. Logs: journalctl -u google-startup-scripts.

main() {
  mkdir -p "$STATE_DIR"
  mount_data_disk
  install_etcd
  issue_server_certificate
  write_etcd_config
  start_etcd
  wait_for_quorum
  if [[ "$ENABLES_AUTH" == 1 ]]; then
    # Assigned first: a secret_wait that gives up stops the boot here (set -e ignores it inside an argument).
    local root patroni
    root="$(secret_wait "$SECRET_ETCD_ROOT")"
    patroni="$(secret_wait "$SECRET_ETCD_PATRONI")"
    enable_etcd_auth "$root" "$patroni"
  fi
  log "ready: etcd member $MEMBER_NAME"
}

# The tests source this file with BOOTSTRAP_SOURCE_ONLY=1 to call single functions; on a VM nothing sets it.
if [[ "${BOOTSTRAP_SOURCE_ONLY:-}" != 1 ]]; then
  main "$@"
fi
