import pg from "pg";
import { runMigrations } from "./migrations.js";

export const CITUS_TEST_ROLES = { migrator: ["platform_migrator", "migrator"], app: ["platform_app", "app"] } as const;

/** The connection string of CITUS_URL's cluster as another role. */
export function citusUrlAs(citusUrl: string, user: string, password: string): string {
  const url = new URL(citusUrl);
  url.username = user;
  url.password = password;
  return url.toString();
}

/**
 * For test suites that run against a real Citus cluster (CITUS_URL, a superuser on the coordinator): drops and
 * re-creates the platform schema, creates the two roles, and migrates as the migration role. Refuses when the
 * database holds tenants whose code does not start with "test-", so it cannot wipe a real cluster by mistake.
 */
export async function prepareCitusDatabase(
  citusUrl: string,
): Promise<{ appUrl: string; migratorUrl: string; release: () => Promise<void> }> {
  // Suites that reset the schema run one at a time: each holds this lock from setup to teardown (release()).
  const lock = new pg.Client({ connectionString: citusUrl, application_name: "platform-citus-test-lock" });
  await lock.connect();
  await lock.query("SELECT pg_advisory_lock(7302615002)");
  const release = async () => {
    await lock.end().catch(() => {});
  };
  const admin = new pg.Client({ connectionString: citusUrl });
  await admin.connect();
  try {
    const workers = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM citus_get_active_worker_nodes()");
    if ((workers.rows[0]?.n ?? 0) < 2) throw new Error("CITUS_URL's cluster needs two or more active workers");
    if ((await admin.query("SELECT to_regclass('platform.tenants') AS t")).rows[0].t) {
      const foreign = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.tenants WHERE code NOT LIKE 'test-%'");
      if ((foreign.rows[0]?.n ?? 0) > 0) throw new Error("CITUS_URL's database holds real tenants: refusing to drop the platform schema");
    }
    await admin.query("DROP SCHEMA IF EXISTS platform CASCADE");
    await admin.query("DROP SCHEMA IF EXISTS platform_migrations CASCADE");
    for (const [role, password] of Object.values(CITUS_TEST_ROLES)) {
      if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rows.length === 0) await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`ALTER ROLE ${role} PASSWORD '${password}'`);
    }
    await admin.query(`GRANT CREATE ON DATABASE ${admin.database} TO platform_migrator`);
    // The queue's owner (the tenant service's graphile-worker schema), as the bootstrap creates it.
    if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'platform_queue'")).rows.length === 0) await admin.query("CREATE ROLE platform_queue NOLOGIN");
    await admin.query("GRANT platform_queue TO platform_app, platform_migrator");
    await admin.query(`GRANT CREATE ON DATABASE ${admin.database} TO platform_queue`);
    await admin.query("DROP SCHEMA IF EXISTS graphile_worker CASCADE");
  } catch (error) {
    await release();
    throw error;
  } finally {
    await admin.end();
  }
  const migratorUrl = citusUrlAs(citusUrl, ...CITUS_TEST_ROLES.migrator);
  const migrator = new pg.Client({ connectionString: migratorUrl });
  await migrator.connect();
  try {
    const result = await runMigrations(migrator);
    if (!result.citus) throw new Error("CITUS_URL points at a database without the citus extension");
  } catch (error) {
    await release();
    throw error;
  } finally {
    await migrator.end();
  }
  return { appUrl: citusUrlAs(citusUrl, ...CITUS_TEST_ROLES.app), migratorUrl, release };
}
