/**
 * `pnpm bench:schema-change`: two schema changes on a table of 10,000,000 rows while writers do what the tenant
 * service does (BEGIN, SET LOCAL app.tenant_id, the item and its audit row, COMMIT), through the migration runner as
 * `pnpm migrate` applies them:
 *   - an index, built with CREATE INDEX CONCURRENTLY in a `-- migrate:no-transaction` migration (the runner refuses
 *     the blocking kind on a table with rows);
 *   - a column with a constant default (PostgreSQL 11+ stores the default in the catalog: no table rewrite).
 * For each: its duration, the writes acknowledged during it, the longest gap between two acknowledged writes (the
 * stall), and the acknowledged writes missing afterwards (must be 0). On PostgreSQL 15 (started here), and on Citus
 * when CITUS_URL is set (it takes the test suites' lock and replaces the platform schema, as they do).
 *
 *   BENCH_ROWS=10000000 pnpm bench:schema-change
 *   CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform BENCH_ROWS=2000000 pnpm bench:schema-change
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startPostgres } from "@platform/testing";
import { MIGRATIONS_DIR, loadMigrations, runMigrations } from "../src/migrations.js";
import { CITUS_TEST_ROLES, citusUrlAs, missingWrites, prepareCitusDatabase, startTenantWriters } from "../src/testing.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
if (!Number.isInteger(ROWS) || ROWS < 1000) {
  console.error(`BENCH_ROWS must be an integer of at least 1000 (got "${process.env.BENCH_ROWS}")`);
  process.exit(2);
}
const TENANTS = 100;
/** The stall bound this benchmark holds the runner to: a write may wait about one lock_timeout (2 s), not the build. */
const STALL_BOUND_MS = 3000;

interface Target {
  readonly label: string;
  /** Superuser connection to the database. */
  readonly adminUrl: string;
  readonly migratorUrl: string;
  readonly appUrl: string;
  readonly citus: boolean;
  release(): Promise<void>;
}

async function plainPostgres(): Promise<Target> {
  const server = await startPostgres({ settings: { max_connections: "200", shared_buffers: "512MB", max_wal_size: "8GB" } });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  for (const [role, password] of Object.values(CITUS_TEST_ROLES)) await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  await admin.query("GRANT CREATE ON DATABASE postgres TO platform_migrator");
  await admin.end();
  const migratorUrl = server.urlFor(...CITUS_TEST_ROLES.migrator);
  const migrator = new pg.Client({ connectionString: migratorUrl });
  await migrator.connect();
  await runMigrations(migrator);
  await migrator.end();
  return { label: "PostgreSQL 15", adminUrl: server.url, migratorUrl, appUrl: server.urlFor(...CITUS_TEST_ROLES.app), citus: false, release: async () => server.stop() };
}

async function citus(url: string): Promise<Target> {
  const db = await prepareCitusDatabase(url);
  return { label: "Citus 13", adminUrl: url, migratorUrl: db.migratorUrl, appUrl: citusUrlAs(url, ...CITUS_TEST_ROLES.app), citus: true, release: db.release };
}

async function run(target: Target): Promise<boolean> {
  const admin = new pg.Client({ connectionString: target.adminUrl });
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), "bench-schema-"));
  let ok = true;
  try {
    // Tenants with an owner each, then ROWS items spread over them, written as the superuser.
    const started = Date.now();
    await admin.query(
      "INSERT INTO platform.tenants (id, code, name) SELECT md5('schema-' || i)::uuid, 'test-schema-' || i, 'Schema ' || i FROM generate_series(1, $1::int) i",
      [TENANTS],
    );
    await admin.query("INSERT INTO platform.users (tenant_id, id, email) SELECT md5('schema-' || i)::uuid, md5('owner-' || i)::uuid, 'owner@schema-' || i || '.test' FROM generate_series(1, $1::int) i", [TENANTS]);
    // Each owner's items from a series joined to the users table, not one series over every row: on Citus the
    // plain series is evaluated on the coordinator and every row is pulled through it, while this one (method
    // "repartition") is computed on the workers from their users shards and written worker to worker.
    const perTenant = Math.ceil(ROWS / TENANTS);
    const batch = Math.max(1, Math.floor(1_000_000 / TENANTS));
    for (let lo = 1; lo <= perTenant; lo += batch) {
      const hi = Math.min(perTenant, lo + batch - 1);
      await admin.query(
        "INSERT INTO platform.items (tenant_id, owner_id, title, body) SELECT u.tenant_id, u.id, 'item ' || k, 'a small body' FROM platform.users u CROSS JOIN generate_series($1::int, $2::int) k",
        [lo, hi],
      );
    }
    await admin.query("VACUUM ANALYZE platform.items");
    console.log(`${target.label}: ${(perTenant * TENANTS).toLocaleString("en")} items over ${TENANTS} tenants seeded in ${((Date.now() - started) / 1000).toFixed(0)} s`);

    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    const shipped = (await loadMigrations(dir)).length;
    const changes = [
      { file: `${String(shipped + 1).padStart(4, "0")}_items_by_title.sql`, sql: "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY items_by_title ON platform.items (tenant_id, title);\n", what: "index, CONCURRENTLY" },
      { file: `${String(shipped + 2).padStart(4, "0")}_items_archived.sql`, sql: "ALTER TABLE platform.items ADD COLUMN archived boolean NOT NULL DEFAULT false;\n", what: "column with a default" },
    ];
    const tenants = Array.from({ length: TENANTS }, (_, i) => i + 1);
    const ids = await admin.query<{ id: string; owner: string }>(
      "SELECT md5('schema-' || i)::uuid::text AS id, md5('owner-' || i)::uuid::text AS owner FROM unnest($1::int[]) i",
      [tenants],
    );
    const writerTenants = ids.rows.map((r) => ({ id: r.id, ownerId: r.owner }));
    for (const change of changes) {
      writeFileSync(join(dir, change.file), change.sql);
      const migrator = new pg.Client({ connectionString: target.migratorUrl });
      await migrator.connect();
      const writers = startTenantWriters(target.appUrl, writerTenants, { clients: 6, ratePerClient: 50, maxMs: 30 * 60_000 });
      await new Promise((resolve) => setTimeout(resolve, 1000)); // writers in their stride first
      const t0 = Date.now();
      try {
        await runMigrations(migrator, { migrations: await loadMigrations(dir) });
      } finally {
        await migrator.end();
      }
      const took = Date.now() - t0;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const report = await writers.stop();
      const missing = await missingWrites(admin, report.acknowledged);
      const errors = Object.entries(report.errors).map(([k, n]) => `${n} x ${k} (${report.messages[k]})`).join("; ") || "none";
      if (missing.length > 0 || report.longestStallMs > STALL_BOUND_MS) ok = false;
      console.log(
        `${target.label}: ${change.what.padEnd(22)} ${(took / 1000).toFixed(1).padStart(6)} s; writes acknowledged ${report.acknowledged.length}, ` +
          `longest stall ${report.longestStallMs} ms (bound ${STALL_BOUND_MS} ms), lost ${missing.length}, errors: ${errors}`,
      );
    }
  } finally {
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
    await target.release();
  }
  return ok;
}

let ok = await run(await plainPostgres());
if (process.env.CITUS_URL) ok = (await run(await citus(process.env.CITUS_URL))) && ok;
else console.log("Citus: skipped (CITUS_URL is not set)");
console.log(ok ? "within bounds" : "OUT OF BOUNDS: see above");
process.exitCode = ok ? 0 : 1;
