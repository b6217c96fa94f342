# shellcheck shell=bash
# Shared by every step and by the etcd VMs' bootstrap (infra/src/etcd): shell options, logging, retries, programs.
# The first part of the startup script after the node's variables (infra/src/citus/startup-script.ts).
set -euo pipefail
umask 022

# Paths can be redirected (BOOTSTRAP_*) only so the tests can run the bootstrap's functions in a temporary directory;
# on a VM nothing sets them.
STATE_DIR="${BOOTSTRAP_STATE_DIR:-/var/lib/citus-bootstrap}"

# Logs go to stderr: stdout of helpers such as secret_wait is their value.
log() { echo "${BOOTSTRAP_NAME:-citus-bootstrap}[$ROLE $NODE_HOST]: $*" >&2; }

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
