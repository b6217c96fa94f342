/**
 * Tenant placement (issue 25) on two real PostgreSQL 15 servers: the home database (registry, queue, tenants with no
 * placement) and another one a tenant has been moved to. The move is done by hand here, the way tenantctl's cutover
 * does it (fence the target, copy, fence the source, switch the placement, lift the target's fence), so that what is
 * tested is the service: where it routes, what a stale placement cache does, what a request sees mid-cutover.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "graphile-worker";
import pg from "pg";
import { startPostgres, type PostgresServer } from "@platform/testing";
import { createPlacedDatabase, type PlacedDatabase } from "../src/db/placed.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { mirrorTenantRow } from "../src/repositories/tenants.js";
import { TenantPlacements } from "../src/tenant-placements.js";
import { installQueue } from "../src/worker/queue.js";
import { createTaskList } from "../src/worker/tasks.js";
import { createTenant, migratePlatform, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

describe.skipIf(unavailable !== undefined)("tenant placement across two PostgreSQL 15 databases", () => {
  let stack: Stack;
  let other: PostgresServer;
  let otherAdmin: pg.Pool;
  let placed: PlacedDatabase;
  let platform: string;
  let moved: TenantFixture;
  let stayed: TenantFixture;

  const fence = (admin: pg.Pool, tenantId: string, reason = "test cutover") =>
    admin.query("INSERT INTO platform.tenant_fences (tenant_id, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING", [tenantId, reason]);
  const unfence = (admin: pg.Pool, tenantId: string) => admin.query("DELETE FROM platform.tenant_fences WHERE tenant_id = $1", [tenantId]);
  const count = async (admin: pg.Pool, table: string, tenantId: string) =>
    (await admin.query(`SELECT count(*)::int AS n FROM platform.${table} WHERE ${table === "tenants" ? "id" : "tenant_id"} = $1`, [tenantId])).rows[0].n as number;

  /** Copies a tenant's rows from home to the other database, as the owner (what tenantctl's copy phase does). */
  async function copyTenant(tenantId: string): Promise<void> {
    const tables: Array<[string, string]> = [
      ["tenants", "id"],
      ["users", "tenant_id"],
      ["items", "tenant_id"],
      ["audit_log", "tenant_id"],
      ["tenant_metrics", "tenant_id"],
    ];
    for (const [table, key] of tables) {
      const { rows } = await stack.admin.query(`SELECT coalesce(json_agg(t), '[]') AS rows FROM platform.${table} t WHERE ${key} = $1`, [tenantId]);
      // Generated columns (items.size_bytes, items.search) are computed again on the other side.
      const { rows: columns } = await otherAdmin.query<{ c: string }>(
        "SELECT attname AS c FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
        [`platform.${table}`],
      );
      const list = columns.map((r) => r.c).join(", ");
      await otherAdmin.query(`INSERT INTO platform.${table} (${list}) SELECT ${list} FROM json_populate_recordset(NULL::platform.${table}, $1)`, [JSON.stringify(rows[0].rows)]);
    }
  }

  beforeAll(async () => {
    other = await startPostgres();
    otherAdmin = new pg.Pool({ connectionString: other.url, max: 2 });
    await migratePlatform(other, otherAdmin);
    stack = await startStack({
      database: (home) => {
        const away = createPostgresDatabase({ url: other.urlFor("platform_app", "app"), poolSize: 4 });
        // A long placement cache: the stale placement must be caught by the fence, not by the cache expiring.
        placed = createPlacedDatabase(new Map([["home", home], ["other", away]]), new TenantPlacements(home, { ttlMs: 600_000, max: 100 }).of, mirrorTenantRow);
        return placed;
      },
    });
    platform = await token({ scope: "platform:admin" });
    moved = await createTenant(stack, "moved", platform);
    stayed = await createTenant(stack, "stayed", platform);
  }, 120_000);
  afterAll(async () => {
    await placed?.databases.get("other")?.close();
    await stack?.close();
    await otherAdmin?.end();
    other?.stop();
  });

  const items = (t: TenantFixture) => stack.request({ method: "GET", url: `/v1/tenants/${t.id}/items`, token: t.member });
  const addItem = (t: TenantFixture, title: string) =>
    stack.request({ method: "POST", url: `/v1/tenants/${t.id}/items`, token: t.member, payload: { ownerId: t.userId, title } });

  it("follows a tenant to the database it was moved to, although this replica still holds its old placement", async () => {
    expect((await items(moved)).statusCode).toBe(200); // its placement (home) is cached now, for ten minutes
    await fence(otherAdmin, moved.id, "move in progress: copying");
    await copyTenant(moved.id);
    await fence(stack.admin, moved.id, "moved to other");
    await stack.admin.query("INSERT INTO platform.tenant_placements (tenant_id, database) VALUES ($1, 'other')", [moved.id]);
    await unfence(otherAdmin, moved.id);

    // The home database refuses the tenant (its fence); the service reads the placement again and goes to the other.
    const listed = await items(moved);
    expect(listed.statusCode, listed.body).toBe(200);
    expect(listed.json().data.map((i: { id: string }) => i.id)).toEqual([moved.itemId]);
    const added = await addItem(moved, "written after the move");
    expect(added.statusCode, added.body).toBe(201);
    expect(await count(otherAdmin, "items", moved.id)).toBe(2);
    expect(await count(stack.admin, "items", moved.id)).toBe(1); // the old copy, fenced: nothing more lands there
  });

  it("leaves a tenant that did not move where it is", async () => {
    expect((await addItem(stayed, "still at home")).statusCode).toBe(201);
    expect(await count(stack.admin, "items", stayed.id)).toBe(2);
    expect(await count(otherAdmin, "items", stayed.id)).toBe(0);
  });

  it("answers 503 with Retry-After while the tenant is fenced on both sides (the cutover window), and serves it again after", async () => {
    await fence(otherAdmin, moved.id, "cutover");
    try {
      const during = await addItem(moved, "during the cutover");
      expect(during.statusCode).toBe(503);
      expect(during.headers["retry-after"]).toBe("1");
      expect(during.json().error.code).toBe("tenant_moving");
      expect((await items(stayed)).statusCode).toBe(200);
    } finally {
      await unfence(otherAdmin, moved.id);
    }
    expect((await addItem(moved, "after the cutover")).statusCode).toBe(201);
    expect(await count(otherAdmin, "items", moved.id)).toBe(3);
  });

  it("changes the registry row at home and copies it to the tenant's database", async () => {
    const patched = await stack.request({ method: "PATCH", url: `/v1/tenants/${moved.id}`, token: platform, payload: { plan: "business", maxUsers: 77 } });
    expect(patched.statusCode, patched.body).toBe(200);
    const row = "SELECT plan, max_users FROM platform.tenants WHERE id = $1";
    expect((await stack.admin.query(row, [moved.id])).rows[0]).toEqual({ plan: "business", max_users: 77 });
    expect((await otherAdmin.query(row, [moved.id])).rows[0]).toEqual({ plan: "business", max_users: 77 });
  });

  /** The service role's connection and tenantctl's (the migration role, which awaits a tenant's quiet), closed after `work`. */
  const asServiceAndTenantctl = async (work: (client: pg.Client, quiet: pg.Client) => Promise<void>) => {
    const client = new pg.Client({ connectionString: stack.config.DATABASE_URL });
    await client.connect();
    const quiet = new pg.Client({ connectionString: stack.pg.urlFor("platform_migrator", "migrator") });
    await quiet.connect();
    try {
      await work(client, quiet);
    } finally {
      await client.end();
      await quiet.end();
    }
  };

  it("makes a cutover wait for every transaction that entered the tenant before its fence, and no longer", () =>
    asServiceAndTenantctl(async (client, quiet) => {
      await client.query("BEGIN");
      await client.query(`SET LOCAL app.tenant_id = '${stayed.id}'`);
      await client.query("SELECT platform.enter_tenant($1)", [stayed.id]);
      await quiet.query("SET lock_timeout = 300");
      await expect(quiet.query("SELECT platform.await_tenant_quiet($1)", [stayed.id])).rejects.toMatchObject({ code: "55P03" });
      await expect(quiet.query("SELECT platform.await_tenant_quiet($1)", [moved.id])).resolves.toBeDefined(); // another tenant's is free
      await client.query("COMMIT");
      await expect(quiet.query("SELECT platform.await_tenant_quiet($1)", [stayed.id])).resolves.toBeDefined();
    }));

  it("enters a tenant and reads its row in one statement (enter_tenant_row), with the same fence and cutover lock", () =>
    asServiceAndTenantctl(async (client, quiet) => {
      await client.query("BEGIN");
      const entered = await client.query("SELECT id, code FROM platform.enter_tenant_row($1)", [stayed.id]);
      expect(entered.rows).toEqual([{ id: stayed.id, code: expect.any(String) }]);
      // The transaction is now the tenant's: its context is set, and a cutover waits for it.
      expect((await client.query("SELECT current_setting('app.tenant_id') AS t")).rows[0].t).toBe(stayed.id);
      await quiet.query("SET lock_timeout = 300");
      await expect(quiet.query("SELECT platform.await_tenant_quiet($1)", [stayed.id])).rejects.toMatchObject({ code: "55P03" });
      await client.query("COMMIT");
      // No such tenant here: no row, and nothing else is read.
      await client.query("BEGIN");
      expect((await client.query("SELECT id FROM platform.enter_tenant_row($1)", [randomUUID()])).rows).toEqual([]);
      await client.query("COMMIT");
      // Fenced here (its rows moved to the other database): refused before any row is read.
      await client.query("BEGIN");
      await expect(client.query("SELECT id FROM platform.enter_tenant_row($1)", [moved.id])).rejects.toMatchObject({ code: "PT001" });
      await client.query("ROLLBACK");
    }));

  it("erases a tenant placed in the other database there, and its registry row at home", async () => {
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    const erase = await stack.request({ method: "DELETE", url: `/v1/tenants/${moved.id}`, token: platform });
    expect(erase.statusCode, erase.body).toBe(202);
    // TENANT_ERASURE_GRACE_SECONDS is 7 days by default: start the job now, as a platform administrator could.
    await stack.admin.query("UPDATE platform.tenant_erasures SET erase_after = now() WHERE tenant_id = $1", [moved.id]);
    await stack.admin.query("UPDATE graphile_worker._private_jobs SET run_at = now() WHERE payload ->> 'tenantId' = $1", [moved.id]);
    const pool = new pg.Pool({ connectionString: stack.config.DATABASE_URL, max: 2 });
    try {
      await runOnce({ pgPool: pool, taskList: createTaskList({ db: placed, auditRetentionMonths: 13, rollupBatchSize: 100, erasureBatchSize: 1 }) });
    } finally {
      await pool.end();
    }
    for (const table of ["items", "users", "audit_log", "tenant_metrics", "tenants"]) expect(await count(otherAdmin, table, moved.id), table).toBe(0);
    expect(await count(stack.admin, "tenants", moved.id)).toBe(0);
    const record = (await stack.admin.query("SELECT erased_at IS NOT NULL AS done, row_counts FROM platform.tenant_erasures WHERE tenant_id = $1", [moved.id])).rows[0];
    expect(record.done).toBe(true);
    expect(record.row_counts.items).toBe(3);
    expect((await items(stayed)).statusCode).toBe(200);
  });
});
