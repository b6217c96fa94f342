# shellcheck shell=bash
# Database roles and databases: the superuser's and replication passwords, monitoring, the application roles, Hydra.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.
# The roles' names are the startup script's DB_ROLE_* (config/src/names.ts, DATABASE_ROLES), given to psql as
# variables: :"app" where SQL takes an identifier, :'app' where it takes a string.
PSQL_ROLES=(-v superuser="$DB_ROLE_SUPERUSER" -v replication="$DB_ROLE_REPLICATION" -v monitoring="$DB_ROLE_MONITORING"
  -v migrator="$DB_ROLE_MIGRATOR" -v app="$DB_ROLE_APP" -v queue="$DB_ROLE_QUEUE" -v hydra="$DB_ROLE_HYDRA")

# psql reads the password from the environment (\getenv), so it never appears in a process list or a log.
# Run in the Citus database on the coordinator, the change propagates to every worker.
set_role_password() {
  local role="$1" password="$2" database="${3:-postgres}"
  PLATFORM_ROLE_PASSWORD="$password" "${PSQL[@]}" -d "$database" -v role="$role" <<'SQL'
\getenv password PLATFORM_ROLE_PASSWORD
ALTER ROLE :"role" PASSWORD :'password';
SQL
}

# On a group's leader, at boot: what Patroni does not make. Patroni creates the superuser's and the replication
# role's passwords when it initialises a group, the Citus database and extension (Citus mode); the rest replicates to
# the group's other members, and a later leader finds it done. Idempotent: the passwords are set from Secret Manager
# again, so a secret is the truth on every boot.
configure_leader() {
  local superuser replication
  superuser="$(secret_wait "$SECRET_DB_SUPERUSER")"
  replication="$(secret_wait "$SECRET_DB_REPLICATION")"
  set_role_password "$DB_ROLE_SUPERUSER" "$superuser"
  "${PSQL[@]}" "${PSQL_ROLES[@]}" <<'SQL'
SELECT format('CREATE ROLE %I WITH REPLICATION LOGIN', :'replication')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'replication') \gexec
SQL
  create_monitoring_role
  set_role_password "$DB_ROLE_REPLICATION" "$replication"
  "${PSQL[@]}" -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  "${PSQL[@]}" -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS citus" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
}

# postgres_exporter (Debian's package) runs as the OS user prometheus and connects over the local socket with peer
# authentication, as the database role of the same name: no password anywhere, and only pg_monitor's reads.
# Each group's leader creates it for itself, like the replication role (its replicas get it through replication).
create_monitoring_role() {
  "${PSQL[@]}" "${PSQL_ROLES[@]}" <<'SQL'
SET citus.enable_ddl_propagation TO off;
SELECT format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', :'monitoring')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'monitoring') \gexec
GRANT pg_monitor TO :"monitoring";
SQL
}

create_application_roles() {
  local migrator app
  migrator="$(secret_wait "$SECRET_DB_MIGRATOR")"
  app="$(secret_wait "$SECRET_DB_APP")"
  # Created on the coordinator, so Citus propagates them to every worker, including workers added later.
  "${PSQL[@]}" "${PSQL_ROLES[@]}" -d "$DB_NAME" <<'SQL'
SELECT format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', :'migrator')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'migrator') \gexec
SELECT format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', :'app')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
SELECT format('CREATE ROLE %I WITH NOLOGIN NOSUPERUSER NOBYPASSRLS', :'queue')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'queue') \gexec
-- The job queue's schema is owned by the queue role; the service and the migration runner act through it.
GRANT :"queue" TO :"app", :"migrator";
SQL
  set_role_password "$DB_ROLE_MIGRATOR" "$migrator" "$DB_NAME"
  set_role_password "$DB_ROLE_APP" "$app" "$DB_NAME"
  "${PSQL[@]}" "${PSQL_ROLES[@]}" -v db="$DB_NAME" <<'SQL'
GRANT CONNECT, CREATE ON DATABASE :"db" TO :"migrator";
GRANT CONNECT ON DATABASE :"db" TO :"app";
GRANT CREATE ON DATABASE :"db" TO :"queue";
SQL
}

# Ory Hydra keeps its own small, plain PostgreSQL database on the coordinator (no Citus extension in it), named
# after its role (names.hydraDatabase).
create_hydra_database() {
  "${PSQL[@]}" "${PSQL_ROLES[@]}" <<'SQL'
SELECT format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', :'hydra')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'hydra') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'hydra', :'hydra')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'hydra') \gexec
SQL
  set_role_password "$DB_ROLE_HYDRA" "$(secret_wait "$SECRET_HYDRA_DB")"
}
