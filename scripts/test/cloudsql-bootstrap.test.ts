/**
 * The postgres engine's database bootstrap (src/cloudsql-bootstrap.ts) on a real PostgreSQL 15 made to look like a
 * fresh Cloud SQL instance: a cloudsqlsuperuser role (CREATEROLE, CREATEDB), the admin user as a member of it but no
 * superuser, the platform's users as Cloud SQL's API creates them (LOGIN, CREATEROLE, CREATEDB, in cloudsqlsuperuser)
 * and the two databases owned by cloudsqlsuperuser. Then the bootstrap, twice, as that admin, and the migrations,
 * unchanged, as the migration role. What stock PostgreSQL cannot imitate: Cloud SQL lets cloudsqlsuperuser create
 * pg_stat_statements, which here the real superuser creates first. The secrets and the Admin API (steps 1 and 2)
 * need a Google project and are not run here.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMigrations } from "@platform/citus";
import { loadEnvironment, platformNames } from "@platform/config";
import { postgresUnavailable, startPostgres, type PostgresServer } from "@platform/testing";
import { bootstrapCloudSql, cloudSqlSecrets, generatePassword } from "../src/cloudsql-bootstrap.js";

const names = platformNames(loadEnvironment("dev", { env: { PLATFORM_DEV_DATABASE_ENGINE: "postgres" } }));
const { migrator, app, queue, hydra } = names.databaseRoles;
const unavailable = postgresUnavailable();
let server: PostgresServer;

async function withClient<T>(url: string, use: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe.skipIf(unavailable)("the Cloud SQL database bootstrap on PostgreSQL 15", () => {
  const log: string[] = [];
  beforeAll(async () => {
    server = await startPostgres();
    await withClient(server.url, async (su) => {
      await su.query("CREATE ROLE cloudsqlsuperuser NOLOGIN CREATEROLE CREATEDB");
      await su.query("CREATE ROLE cloudsql_admin LOGIN PASSWORD 'admin' CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser");
      for (const [role, password] of [[migrator, "migrator"], [app, "app"], [hydra, "hydra"]]) {
        await su.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser`);
      }
      await su.query(`CREATE DATABASE ${names.citusDatabase} OWNER cloudsqlsuperuser`);
      await su.query(`CREATE DATABASE ${names.hydraDatabase} OWNER cloudsqlsuperuser`);
    });
    await withClient(server.urlFor("postgres", "postgres", names.citusDatabase), (su) => su.query("CREATE EXTENSION pg_stat_statements"));
    const admin = server.urlFor("cloudsql_admin", "admin", names.citusDatabase);
    await withClient(admin, (c) => bootstrapCloudSql(c, names, (l) => log.push(l)));
    // A second deploy runs it again: nothing to change, nothing fails.
    await withClient(admin, (c) => bootstrapCloudSql(c, names));
    await withClient(server.urlFor(migrator, "migrator", names.citusDatabase), (c) => runMigrations(c));
  }, 120_000);
  afterAll(() => server?.stop());

  it("takes CREATEROLE, CREATEDB and cloudsqlsuperuser back from the platform's login roles", async () => {
    const rows = await withClient(server.url, async (su) =>
      (
        await su.query<{ rolname: string; rolcreaterole: boolean; rolcreatedb: boolean; rolsuper: boolean; rolbypassrls: boolean; cloudsql: boolean }>(
          `SELECT rolname, rolcreaterole, rolcreatedb, rolsuper, rolbypassrls, pg_has_role(oid, 'cloudsqlsuperuser', 'MEMBER') AS cloudsql
           FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
          [[migrator, app, hydra]],
        )
      ).rows,
    );
    expect(rows.map((r) => r.rolname).sort()).toEqual([app, hydra, migrator].sort());
    for (const r of rows) expect(r, r.rolname).toMatchObject({ rolcreaterole: false, rolcreatedb: false, rolsuper: false, rolbypassrls: false, cloudsql: false });
  });

  it("makes the queue's NOLOGIN owner role, with the service and migration roles its members", async () => {
    const [role] = await withClient(server.url, async (su) => (await su.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", [queue])).rows);
    expect(role).toEqual({ rolcanlogin: false });
    const members = await withClient(server.url, async (su) => (await su.query("SELECT pg_has_role($1, $3, 'MEMBER') AS a, pg_has_role($2, $3, 'MEMBER') AS m", [app, migrator, queue])).rows[0]);
    expect(members).toEqual({ a: true, m: true });
    expect(log).toContain(`${queue}: created (NOLOGIN)`);
  });

  it("gives Hydra its own database, and the admin no lasting membership in hydra", async () => {
    const row = await withClient(server.url, async (su) =>
      (await su.query("SELECT pg_get_userbyid(datdba) AS owner, pg_has_role('cloudsql_admin', $2, 'MEMBER') AS admin_in_hydra FROM pg_database WHERE datname = $1", [names.hydraDatabase, hydra])).rows[0],
    );
    expect(row).toEqual({ owner: hydra, admin_in_hydra: false });
  });

  it("lets the migrations run unchanged as the migration role, and the service role read under them but create no role", async () => {
    await withClient(server.urlFor(app, "app", names.citusDatabase), async (c) => {
      const { rows } = await c.query("SELECT count(*)::int AS n FROM platform.tenants");
      expect(rows[0]).toEqual({ n: 0 });
      await expect(c.query("CREATE ROLE sneaky LOGIN")).rejects.toThrow(/permission denied to create role/);
      await expect(c.query("CREATE DATABASE sneaky")).rejects.toThrow(/permission denied to create database/);
      const ext = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
      expect(ext.rowCount).toBe(1);
    });
  });
});

describe.skipIf(unavailable)("the Cloud SQL database bootstrap with Citus alongside", () => {
  const alongside = platformNames(loadEnvironment("dev", { env: { PLATFORM_DEV_DATABASE_ENGINE: "postgres", PLATFORM_DEV_DATABASE_CITUS_ALONGSIDE: "true" } }));
  let own: PostgresServer;
  beforeAll(async () => {
    own = await startPostgres();
    await withClient(own.url, async (su) => {
      await su.query("CREATE ROLE cloudsqlsuperuser NOLOGIN CREATEROLE CREATEDB");
      for (const role of [migrator, app, hydra]) await su.query(`CREATE ROLE ${role} LOGIN CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser`);
      await su.query(`CREATE DATABASE ${alongside.citusDatabase} OWNER cloudsqlsuperuser`);
      await su.query(`CREATE DATABASE ${alongside.hydraDatabase} OWNER cloudsqlsuperuser`);
    });
    await withClient(own.urlFor("postgres", "postgres", alongside.citusDatabase), (su) => su.query("CREATE EXTENSION pg_stat_statements"));
  }, 120_000);
  afterAll(() => own?.stop());
  const superuser = () => own.urlFor("postgres", "postgres", alongside.citusDatabase);

  // Cloud SQL lets its admin (cloudsqlsuperuser) grant REPLICATION; stock PostgreSQL only a superuser, which stands in here.
  it("gives the migration role REPLICATION for tenantctl's slots, and nothing of the kind without Citus alongside", async () => {
    const replication = () => withClient(own.url, async (su) => (await su.query<{ r: boolean }>("SELECT rolreplication AS r FROM pg_roles WHERE rolname = $1", [migrator])).rows[0]!.r);
    await withClient(superuser(), (c) => bootstrapCloudSql(c, names));
    expect(await replication()).toBe(false);
    const log: string[] = [];
    await withClient(superuser(), (c) => bootstrapCloudSql(c, alongside, (l) => log.push(l)));
    expect(await replication()).toBe(true);
    expect(log).toContain(`${migrator}: REPLICATION (tenantctl's slots, database.citusAlongside)`);
  });
});

describe("the postgres engine's secrets", () => {
  it("are the Citus engine's ids, each login role's with its Cloud SQL user", () => {
    expect(cloudSqlSecrets(names)).toEqual([
      { secretId: names.secrets.dbSuperuser, user: "postgres" },
      { secretId: names.secrets.dbMigrator, user: migrator },
      { secretId: names.secrets.dbApp, user: app },
      { secretId: names.secrets.hydraDbPassword, user: hydra },
      { secretId: names.secrets.hydraSystemSecret },
      { secretId: names.secrets.grafanaAdminPassword },
    ]);
  });
  it("generates passwords as the coordinator does: 40 letters and digits, never the same twice", () => {
    const passwords = Array.from({ length: 50 }, () => generatePassword());
    for (const p of passwords) expect(p).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(new Set(passwords).size).toBe(50);
  });
});
