# shellcheck shell=bash
# Secret Manager: the coordinator generates every database secret, the other nodes wait for them.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

# Seconds between attempts of the Secret Manager calls in this file; only the tests shorten it.
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

# Passwords are generated here, on the coordinator, straight into Secret Manager: they never appear in Terraform
# configuration or state.
ensure_password() {
  if secret_has_version "$1"; then return 0; fi
  log "generating a password into secret $1"
  secret_put "$1" "$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 40)"
}
