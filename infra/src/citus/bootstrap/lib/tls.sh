# shellcheck shell=bash
# The platform database CA and each node's server certificate.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

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
  install -d -m 0700 -o "$TLS_OWNER" -g "$TLS_OWNER" "$TLS_DIR"
  secret_wait "$SECRET_DB_CA_CERT" >"$TLS_DIR/ca.crt"
  if [[ -f "$TLS_DIR/server.crt" ]] && [[ -f "$STATE_DIR/cert-hosts" ]] && [[ "$(cat "$STATE_DIR/cert-hosts")" == "$CERT_HOSTS" ]] \
    && openssl x509 -checkend 2592000 -noout -in "$TLS_DIR/server.crt" >/dev/null \
    && openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" >/dev/null 2>&1; then
    chown "$TLS_OWNER:$TLS_OWNER" "$TLS_DIR"/*
    return 0
  fi
  log "issuing the server certificate for $NODE_HOST"
  local work ip
  work="$(mktemp -d)"
  ip="$(hostname -I | awk '{print $1}')"
  secret_wait "$SECRET_DB_CA_KEY" >"$work/ca.key"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$NODE_HOST" \
    -keyout "$TLS_DIR/server.key" -out "$work/server.csr" 2>/dev/null
  # Every name the node answers for (a coordinator member also the load balancer's), and its address.
  local san="IP:$ip" host
  for host in $CERT_HOSTS; do san="$san,DNS:$host"; done
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$work/ext"
  openssl x509 -req -in "$work/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 825 -extfile "$work/ext" -out "$TLS_DIR/server.crt" 2>/dev/null
  rm -rf "$work"
  chown "$TLS_OWNER:$TLS_OWNER" "$TLS_DIR"/*
  chmod 0600 "$TLS_DIR/server.key"
  echo "$CERT_HOSTS" >"$STATE_DIR/cert-hosts"
}
