# shellcheck shell=bash
# The data disk and the packages: what a VM needs before anything else runs.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

mount_data_disk() {
  local device="/dev/disk/by-id/google-${DATA_DISK_NAME:-pgdata}" uuid
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
  # python3-idna: urllib3 suggests it only, but Patroni cannot reach etcd over https without it (found by
  # infra/test/bootstrap-patroni.test.ts: "No module named 'idna'").
  local packages=("postgresql-$PG_MAJOR" "$CITUS_PACKAGE" pgbackrest patroni python3-idna prometheus-postgres-exporter prometheus-node-exporter jq)
  # Debian's Patroni (3.0 on bookworm), the release the failover tests run (infra/test/patroni-*.test.ts), not the
  # newer one in the PGDG repository: written before any install, so a node installed before Patroni gets it too.
  install -d -m 0755 /etc/apt/preferences.d
  printf 'Package: patroni\nPin: release o=Debian\nPin-Priority: 900\n' >/etc/apt/preferences.d/patroni-debian
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
  # Patroni creates the cluster (with data checksums, on the data disk), not the package's postinst.
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
  apt-mark hold "postgresql-$PG_MAJOR" "$CITUS_PACKAGE" pgbackrest patroni >/dev/null
  mkdir -p "$STATE_DIR"
  touch "$marker"
}
