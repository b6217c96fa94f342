/**
 * The postgres engine's database bootstrap (docs/SCALING.md, "Phase 1"), which `scripts/deploy` runs after
 * `cdktf deploy` and before the migrations: what the Citus coordinator's bootstrap does on its first boot
 * (infra/src/citus/bootstrap/lib/roles.sh), for a Cloud SQL instance, which has no boot of ours.
 *
 * 1. Each platform password is generated into its Secret Manager secret where the secret has no version yet, as the
 *    coordinator generates them (40 letters and digits), never printed. The secret is the truth from then on.
 * 2. Each Cloud SQL built-in user gets the password of its secret through Cloud SQL's Admin API (the stack created the
 *    users with a throwaway write-only password): postgres, the migration role, the service role, Hydra's.
 * 3. As postgres, over the migrate step's own connection (MIGRATE_DATABASE_URL, with the user and password replaced):
 *    the SQL that Cloud SQL's API cannot say (bootstrapCloudSql below).
 *
 * Idempotent: run again, it changes nothing that is right.
 */
import { spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import pg from "pg";
import type { EnvironmentConfig, PlatformNames } from "@platform/config";

/** The coordinator's alphabet and length (bootstrap/lib/secrets.sh: base64 stripped to [A-Za-z0-9], 40 characters). */
const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
export function generatePassword(length = 40): string {
  return Array.from({ length }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]).join("");
}

/** The secrets the postgres engine's bootstrap fills, with the Cloud SQL user each is the password of. */
export function cloudSqlSecrets(names: PlatformNames): { readonly secretId: string; readonly user?: string }[] {
  const roles = names.databaseRoles;
  return [
    { secretId: names.secrets.dbSuperuser, user: roles.superuser },
    { secretId: names.secrets.dbMigrator, user: roles.migrator },
    { secretId: names.secrets.dbApp, user: roles.app },
    { secretId: names.secrets.hydraDbPassword, user: roles.hydra },
    { secretId: names.secrets.hydraSystemSecret },
    { secretId: names.secrets.grafanaAdminPassword },
  ];
}

/**
 * The roles and grants of the Citus bootstrap's create_application_roles and create_hydra_database, on Cloud SQL,
 * run as its admin user (postgres: CREATEROLE and CREATEDB, a member of cloudsqlsuperuser, not a superuser) in the
 * platform database. Users that Cloud SQL's API creates come with CREATEROLE, CREATEDB and cloudsqlsuperuser: the
 * platform's login roles give all three back, so the service role holds the migrations' grants and nothing more.
 */
export async function bootstrapCloudSql(client: Pick<pg.Client, "query">, names: PlatformNames, log: (line: string) => void = () => {}): Promise<void> {
  const id = (name: string) => pg.escapeIdentifier(name);
  const { migrator, app, queue, hydra } = names.databaseRoles;
  const exists = async (sql: string, value: string) => (await client.query(sql, [value])).rowCount! > 0;
  const cloudSqlSuperuser = await exists("SELECT 1 FROM pg_roles WHERE rolname = $1", "cloudsqlsuperuser");
  for (const role of [migrator, app, hydra]) {
    await client.query(`ALTER ROLE ${id(role)} NOCREATEDB NOCREATEROLE`);
    if (cloudSqlSuperuser) await client.query(`REVOKE cloudsqlsuperuser FROM ${id(role)}`);
  }
  log(`${migrator}, ${app}, ${hydra}: no CREATEROLE, no CREATEDB, not cloudsqlsuperuser`);
  // With Citus alongside, tenantctl runs as the migration role and reads each moving tenant's changes from a logical
  // replication slot it creates here: REPLICATION, which a cloudsqlsuperuser may grant (docs/SCALING.md, "Phase 2-3").
  if (names.citusAlongside) {
    await client.query(`ALTER ROLE ${id(migrator)} WITH REPLICATION`);
    log(`${migrator}: REPLICATION (tenantctl's slots, database.citusAlongside)`);
  }
  if (!(await exists("SELECT 1 FROM pg_roles WHERE rolname = $1", queue))) {
    await client.query(`CREATE ROLE ${id(queue)} WITH NOLOGIN NOSUPERUSER NOBYPASSRLS`);
    log(`${queue}: created (NOLOGIN)`);
  }
  // The job queue's schema is owned by the queue role; the service and the migration runner act through it.
  await client.query(`GRANT ${id(queue)} TO ${id(app)}, ${id(migrator)}`);
  const db = id(names.citusDatabase);
  await client.query(`GRANT CONNECT, CREATE ON DATABASE ${db} TO ${id(migrator)}`);
  await client.query(`GRANT CONNECT ON DATABASE ${db} TO ${id(app)}`);
  await client.query(`GRANT CREATE ON DATABASE ${db} TO ${id(queue)}`);
  // Hydra owns its database, as on the coordinator; handing it over needs the admin to be a member of hydra for a moment.
  const owner = (await client.query<{ owner: string }>("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [names.hydraDatabase])).rows[0]?.owner;
  if (owner === undefined) throw new Error(`database ${names.hydraDatabase} does not exist: run \`cdktf deploy\` first (the stack creates it)`);
  if (owner !== hydra) {
    await client.query(`GRANT ${id(hydra)} TO CURRENT_USER`);
    await client.query(`ALTER DATABASE ${id(names.hydraDatabase)} OWNER TO ${id(hydra)}`);
    await client.query(`REVOKE ${id(hydra)} FROM CURRENT_USER`);
    log(`${names.hydraDatabase}: owned by ${hydra}`);
  }
  // Cloud SQL has the library loaded; the extension makes its view readable (the flags: infra's cloudSqlFlags).
  await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
}

function gcloud(args: readonly string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync("gcloud", args, { encoding: "utf8", input });
  if (run.error) throw new Error(`gcloud could not run (${run.error.message}): install the Google Cloud CLI (docs/DEPLOYMENT.md, prerequisites)`);
  return run;
}

/** A secret's latest value, or undefined where it has no version yet. */
function readSecret(project: string, secretId: string): string | undefined {
  const run = gcloud(["secrets", "versions", "access", "latest", `--secret=${secretId}`, `--project=${project}`]);
  if (run.status === 0) return run.stdout;
  if (/NOT_FOUND|not found/i.test(run.stderr)) return undefined;
  throw new Error(`reading secret ${secretId} failed: ${run.stderr.trim()}`);
}

async function setUserPassword(config: EnvironmentConfig, names: PlatformNames, user: string, password: string): Promise<void> {
  const token = gcloud(["auth", "print-access-token"]);
  if (token.status !== 0) throw new Error(`gcloud auth print-access-token failed: ${token.stderr.trim()}`);
  const base = `https://sqladmin.googleapis.com/v1/projects/${config.gcp.projectId}`;
  const headers = { authorization: `Bearer ${token.stdout.trim()}`, "content-type": "application/json" };
  const response = await fetch(`${base}/instances/${names.cloudSql.instance}/users?name=${encodeURIComponent(user)}`, { method: "PUT", headers, body: JSON.stringify({ name: user, password }) });
  if (!response.ok) throw new Error(`setting ${user}'s password on ${names.cloudSql.instance} failed: HTTP ${response.status} ${await response.text()}`);
  const operation = (await response.json()) as { name: string; status: string };
  // Bounded: a user update takes seconds.
  for (let attempt = 0; operation.status !== "DONE" && attempt < 60; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const poll = await fetch(`${base}/operations/${operation.name}`, { headers });
    Object.assign(operation, (await poll.json()) as object);
  }
  if (operation.status !== "DONE") throw new Error(`setting ${user}'s password: operation ${operation.name} not done after 2 minutes; run the deploy again`);
}

/** Steps 1 to 3 for one environment; `migrateUrl` is MIGRATE_DATABASE_URL (the tunnel to the instance). */
export async function runCloudSqlBootstrap(config: EnvironmentConfig, names: PlatformNames, migrateUrl: string, log: (line: string) => void): Promise<void> {
  const project = config.gcp.projectId;
  const passwords = new Map<string, string>();
  for (const { secretId, user } of cloudSqlSecrets(names)) {
    let value = readSecret(project, secretId);
    if (value === undefined) {
      const add = gcloud(["secrets", "versions", "add", secretId, "--data-file=-", `--project=${project}`], generatePassword());
      if (add.status !== 0) throw new Error(`adding a version to ${secretId} failed: ${add.stderr.trim()}`);
      value = readSecret(project, secretId);
      log(`${secretId}: generated`);
    }
    if (user && value !== undefined) passwords.set(user, value);
  }
  for (const [user, password] of passwords) {
    await setUserPassword(config, names, user, password);
    log(`${user}: password set from its secret`);
  }
  const url = new URL(migrateUrl);
  url.username = names.databaseRoles.superuser;
  url.password = passwords.get(names.databaseRoles.superuser)!;
  url.pathname = `/${names.citusDatabase}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await bootstrapCloudSql(client, names, log);
  } finally {
    await client.end();
  }
}
