/**
 * Migration 0004 (row-level security no longer forced) applied to a live Citus cluster while writers do what the
 * tenant service does: it must finish without failing a write or holding writes up for long, and leave every shard
 * unforced. Needs CITUS_URL (skipped with a printed reason otherwise); drops the platform schema there.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMigrations, runMigrations } from "../src/migrations.js";
import { missingWrites, prepareCitusDatabase, startTenantWriters } from "../src/testing.js";

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping the live migration on Citus: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

describe.skipIf(!CITUS_URL)("migration 0004 on a live Citus cluster", () => {
  let admin: pg.Client;
  let appUrl: string;
  let migratorUrl: string;
  let release: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ appUrl, migratorUrl, release } = await prepareCitusDatabase(CITUS_URL!, { migrateUpTo: 3 }));
    admin = new pg.Client({ connectionString: CITUS_URL });
    await admin.connect();
    await admin.query("INSERT INTO platform.tenants (id, code, name) SELECT gen_random_uuid(), 'test-' || i, 'T' || i FROM generate_series(1, 20) i");
    await admin.query("INSERT INTO platform.users (tenant_id, email) SELECT id, 'owner@' || code || '.test' FROM platform.tenants");
  }, 300_000);
  afterAll(async () => {
    await admin?.end();
    await release?.();
  });

  it("unforces every table and shard while the service writes, failing no write", { timeout: 180_000 }, async () => {
    const tenants = (await admin.query<{ id: string; ownerId: string }>('SELECT tenant_id::text AS id, id::text AS "ownerId" FROM platform.users')).rows;
    // The schema is at 0003, before enter_tenant (0012): the writers open as the service of that schema did.
    const writers = startTenantWriters(appUrl, tenants, { clients: 6, ratePerClient: 25, opening: "set_local" });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const migrator = new pg.Client({ connectionString: migratorUrl });
    await migrator.connect();
    const lines: string[] = [];
    const started = Date.now();
    let ran: number[];
    try {
      // 0004 alone: the migrations after it are not what this test is about.
      ran = (await runMigrations(migrator, { migrations: (await loadMigrations()).filter((m) => m.version <= 4), log: (l) => lines.push(l) })).ran;
    } finally {
      await migrator.end();
    }
    const took = Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const report = await writers.stop();
    console.log(`[migration-live] 0004 in ${took} ms under ${report.acknowledged.length} writes; longest stall ${report.longestStallMs} ms; ${lines.join("; ")}`);
    expect(ran).toEqual([4]);
    expect(report.errors, JSON.stringify(report.messages)).toEqual({});
    expect(report.acknowledged.length).toBeGreaterThan(50);
    expect(await missingWrites(admin, report.acknowledged)).toEqual([]);
    // A write waits at most for the ALTERs' brief exclusive locks, each bounded by the 2 s lock_timeout.
    expect(report.longestStallMs).toBeLessThan(4000);
    const forced = await admin.query<{ result: string }>(
      "SELECT result FROM run_command_on_shards('platform.items', $$SELECT relforcerowsecurity FROM pg_class WHERE oid = '%s'::regclass$$)",
    );
    expect(new Set(forced.rows.map((r) => r.result))).toEqual(new Set(["f"]));
    expect((await admin.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'platform'::regnamespace AND relforcerowsecurity")).rows[0].n).toBe(0);
  });
});
