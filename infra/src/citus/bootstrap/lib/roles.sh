# shellcheck shell=bash
# Database roles and databases: the superuser's and replication passwords, monitoring, the application roles, Hydra.
# Part of the Citus startup script: infra/src/citus/startup-script.ts assembles it after the node's variables.

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
  set_role_password postgres "$superuser"
  "${PSQL[@]}" <<'SQL'
SELECT 'CREATE ROLE replicator WITH REPLICATION LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'replicator') \gexec
SQL
  create_monitoring_role
  set_role_password replicator "$replication"
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
  "${PSQL[@]}" <<'SQL'
SET citus.enable_ddl_propagation TO off;
SELECT 'CREATE ROLE prometheus WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'prometheus') \gexec
GRANT pg_monitor TO prometheus;
SQL
}

create_application_roles() {
  local migrator app
  migrator="$(secret_wait "$SECRET_DB_MIGRATOR")"
  app="$(secret_wait "$SECRET_DB_APP")"
  # Created on the coordinator, so Citus propagates them to every worker, including workers added later.
  "${PSQL[@]}" -d "$DB_NAME" <<'SQL'
SELECT 'CREATE ROLE platform_migrator WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_migrator') \gexec
SELECT 'CREATE ROLE platform_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_app') \gexec
SELECT 'CREATE ROLE platform_queue WITH NOLOGIN NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_queue') \gexec
-- The job queue's schema is owned by platform_queue; the service and the migration runner act through it.
GRANT platform_queue TO platform_app, platform_migrator;
SQL
  set_role_password platform_migrator "$migrator" "$DB_NAME"
  set_role_password platform_app "$app" "$DB_NAME"
  "${PSQL[@]}" -v db="$DB_NAME" <<'SQL'
GRANT CONNECT, CREATE ON DATABASE :"db" TO platform_migrator;
GRANT CONNECT ON DATABASE :"db" TO platform_app;
GRANT CREATE ON DATABASE :"db" TO platform_queue;
SQL
}

# Ory Hydra keeps its own small, plain PostgreSQL database on the coordinator (no Citus extension in it).
create_hydra_database() {
  "${PSQL[@]}" <<'SQL'
SELECT 'CREATE ROLE hydra WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hydra') \gexec
SELECT 'CREATE DATABASE hydra OWNER hydra'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'hydra') \gexec
SQL
  set_role_password hydra "$(secret_wait "$SECRET_HYDRA_DB")"
}
