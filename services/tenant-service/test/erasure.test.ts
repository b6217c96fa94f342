/**
 * Tenant erasure (DELETE /v1/tenants/{t}, the tenant.erase job) against a real PostgreSQL 15 and Redis, with the
 * worker's real tasks run by graphile-worker's runOnce. Rows are counted as the superuser, whom no policy filters.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "graphile-worker";
import { Redis } from "ioredis";
import pg from "pg";
import { buildApp } from "../src/app.js";
import type { Database } from "../src/db/database.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { RATE_LIMIT_PREFIX, tenantRateKey } from "../src/rate-limit-store.js";
import { TENANT_TABLES, eraseJobKey } from "../src/worker/erasure.js";
import { installQueue } from "../src/worker/queue.js";
import { createTaskList } from "../src/worker/tasks.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

if (unavailable) console.warn(`skipping erasure tests: ${unavailable}`);

const TABLES = TENANT_TABLES.map((t) => t.table);
/** What rowsOf finds of an erased tenant: nothing in any table. */
const NO_ROWS = Object.fromEntries([...TABLES, "tenants"].map((t) => [t, 0]));

describe.skipIf(unavailable !== undefined)("tenant erasure on PostgreSQL 15 and Redis", () => {
  let stack: Stack;
  let appPool: pg.Pool;
  let db: ReturnType<typeof createPostgresDatabase>;
  let redis: Redis;
  let platform: string;
  let bystander: TenantFixture;

  /** The tenant's rows in every tenant table and in platform.tenants, as the superuser. */
  const rowsOf = async (tenantId: string): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {};
    for (const table of TABLES) counts[table] = (await stack.admin.query(`SELECT count(*)::int AS n FROM platform.${table} WHERE tenant_id = $1`, [tenantId])).rows[0].n;
    counts.tenants = (await stack.admin.query("SELECT count(*)::int AS n FROM platform.tenants WHERE id = $1", [tenantId])).rows[0].n;
    return counts;
  };
  /** Everything of a tenant, to compare before and after. */
  const snapshot = async (tenantId: string) =>
    JSON.stringify(
      (
        await stack.admin.query(
          `SELECT (SELECT json_agg(u ORDER BY id) FROM platform.users u WHERE tenant_id = $1) AS users,
                  (SELECT json_agg(i ORDER BY id) FROM platform.items i WHERE tenant_id = $1) AS items,
                  (SELECT json_agg(m ORDER BY day) FROM platform.tenant_metrics m WHERE tenant_id = $1) AS metrics,
                  (SELECT json_agg(a ORDER BY occurred_at, id) FROM platform.audit_log a WHERE tenant_id = $1 AND action NOT LIKE 'tenant.erasure%') AS audit,
                  (SELECT row_to_json(t) FROM platform.tenants t WHERE id = $1)::jsonb - 'updated_at' AS tenant`,
          [tenantId],
        )
      ).rows[0],
    );
  const work = (options: { db?: Database; batchSize?: number } = {}) =>
    runOnce({ pgPool: appPool, taskList: createTaskList({ db: options.db ?? db, auditRetentionMonths: 13, rollupBatchSize: 100, erasureBatchSize: options.batchSize ?? 7, redis }) });
  const jobsOf = async (tenantId: string) =>
    (await stack.admin.query("SELECT key, run_at, attempts, last_error FROM graphile_worker._private_jobs WHERE payload ->> 'tenantId' = $1", [tenantId])).rows;
  /** A tenant with more rows than one batch in every table, provisioned (metrics row, audit entry). */
  const bigTenant = async (code: string): Promise<TenantFixture> => {
    const t = await createTenant(stack, code, platform);
    await stack.admin.query(
      `INSERT INTO platform.users (tenant_id, email) SELECT $1, 'u' || g || '@${code}.test' FROM generate_series(1, 20) g`,
      [t.id],
    );
    await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 30) g`, [t.id, t.userId]);
    await stack.admin.query(
      `INSERT INTO platform.tenant_metrics (tenant_id, day, users, items, storage_bytes, writes) SELECT $1, current_date - g, 0, 0, 0, 0 FROM generate_series(1, 10) g`,
      [t.id],
    );
    // A webhook with more deliveries than one batch.
    await stack.admin.query(
      `WITH w AS (INSERT INTO platform.webhooks (tenant_id, url, events, secret, created_by) VALUES ($1, 'https://hooks.example/', '{item.created}', repeat('s', 32), 'test') RETURNING tenant_id, id)
       INSERT INTO platform.webhook_deliveries (tenant_id, webhook_id, event_id, event_type, body) SELECT w.tenant_id, w.id, gen_random_uuid(), 'item.created', '{}' FROM w, generate_series(1, 9)`,
      [t.id],
    );
    await stack.admin.query(`INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type) SELECT $1, 'test', 'test.event', 'test' FROM generate_series(1, 15) g`, [t.id]);
    await stack.admin.query(`INSERT INTO platform.exports (tenant_id, requested_by, store, status, finished_at, expires_at) SELECT $1, 'test', 'local', 'done', now(), now() + interval '1 day' FROM generate_series(1, 4)`, [t.id]);
    await stack.admin.query(
      `INSERT INTO platform.import_rows (tenant_id, kind, import_key, entity_id, import_id, line) SELECT $1, 'item', 'k' || g, gen_random_uuid(), gen_random_uuid(), g FROM generate_series(1, 8) g`,
      [t.id],
    );
    await work({ batchSize: 1_000 }); // its provisioning: a metrics row and an audit entry
    return t;
  };
  const erase = (t: { id: string }, as = platform) => stack.request({ method: "DELETE", url: `/v1/tenants/${t.id}`, token: as });

  beforeAll(async () => {
    stack = await startStack({ env: { TENANT_ERASURE_GRACE_SECONDS: "0" } });
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    appPool = new pg.Pool({ connectionString: stack.config.DATABASE_URL, max: 4 });
    db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 4 });
    redis = new Redis(stack.redis.url, { maxRetriesPerRequest: 1 });
    platform = await token({ scope: "platform:admin" });
    bystander = await bigTenant("bystander");
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await appPool?.end();
    await db?.close();
    await stack?.close();
  });

  it("empties every platform table that holds a tenant_id (a new one must be added to TENANT_TABLES)", async () => {
    const { rows } = await stack.admin.query(
      `SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'platform'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY 1`,
    );
    // tenant_erasures is the platform's record of the erasure itself: it keeps the id and nothing of the tenant.
    // tenant_placements and tenant_fences are the registry's (migration 0012): which database, and nothing else;
    // tenant_moves is tenantctl's record of a move (0014): database names, phases and positions.
    const registry = ["tenant_erasures", "tenant_placements", "tenant_fences", "tenant_moves"];
    expect(rows.map((r) => r.relname).filter((t) => !registry.includes(t))).toEqual([...TABLES].sort());
  });

  it("with no grace period erases every row of the tenant, keeps a record with the counts, and leaves other tenants alone", async () => {
    const victim = await bigTenant("victim");
    // The tenant's requests leave a rate-limit count in Redis.
    expect((await stack.request({ method: "GET", url: "/v1/items", token: victim.member })).statusCode).toBe(200);
    const rateKey = RATE_LIMIT_PREFIX + tenantRateKey(victim.id);
    expect(await redis.exists(rateKey)).toBe(1);
    // A job of the tenant's still queued, which must not outlive it.
    await stack.admin.query("SELECT graphile_worker.add_job('tenant.provision', json_build_object('tenantId', $1::text), run_at := now() + interval '1 day')", [victim.id]);
    const before = await rowsOf(victim.id);
    const bystanderBefore = await snapshot(bystander.id);

    const res = await erase(victim);
    expect(res.statusCode, res.body).toBe(202);
    expect(res.headers.location).toBe(`/v1/erasures/${victim.id}`);
    expect(res.json()).toMatchObject({ tenantId: victim.id, state: "scheduled", requestedBy: "user-1", previousStatus: "active", rowCounts: {} });
    // Marked at once: its own tokens are refused like a suspended tenant's; the platform sees it and can list it.
    const own = await stack.request({ method: "GET", url: "/v1/items", token: victim.member });
    expect(own.statusCode).toBe(403);
    expect(own.json().error.code).toBe("tenant_deleting");
    expect((await stack.request({ method: "GET", url: `/v1/tenants/${victim.id}`, token: platform })).json().status).toBe("deleting");
    const listed = await stack.request({ method: "GET", url: "/v1/tenants?status=deleting", token: platform });
    expect(listed.json().data.map((t: { id: string }) => t.id)).toEqual([victim.id]);
    // Asking again changes nothing: the same request, still one job.
    const again = await erase(victim);
    expect(again.statusCode).toBe(202);
    expect(again.json().id).toBe(res.json().id);

    await work();

    expect(await rowsOf(victim.id)).toEqual(NO_ROWS);
    expect((await stack.request({ method: "GET", url: `/v1/tenants/${victim.id}`, token: platform })).statusCode).toBe(404);
    expect((await stack.request({ method: "GET", url: `/v1/tenants/${victim.code}`, token: platform })).statusCode).toBe(404);
    const record = await stack.request({ method: "GET", url: `/v1/erasures/${victim.id}`, token: platform });
    expect(record.statusCode, record.body).toBe(200);
    const [erased] = record.json().data;
    // Every row counted once; the audit log had two more entries by then (the request, the member's read is none).
    expect(erased).toMatchObject({ state: "erased", tenantId: victim.id, rowCounts: { ...before, audit_log: before.audit_log! + 1, tenants: 1 } });
    expect(new Date(erased.erasedAt).getTime()).toBeGreaterThanOrEqual(new Date(erased.startedAt).getTime());
    // The record holds the id, not the tenant's data.
    const stored = JSON.stringify((await stack.admin.query("SELECT * FROM platform.tenant_erasures WHERE tenant_id = $1", [victim.id])).rows);
    expect(stored).not.toContain(victim.code);
    expect(stored).not.toContain(victim.code.toUpperCase());
    expect(await redis.exists(rateKey)).toBe(0);
    expect(await jobsOf(victim.id)).toEqual([]);
    expect(await snapshot(bystander.id)).toBe(bystanderBefore);
    expect((await stack.request({ method: "GET", url: "/v1/items", token: bystander.member })).statusCode).toBe(200);
  });

  it("cancelled within the grace period, keeps every row and gives the tenant its status back", async () => {
    const graceApp = await buildApp({ config: { ...stack.config, TENANT_ERASURE_GRACE_SECONDS: 3_600 }, db });
    try {
      const call = (method: "DELETE" | "POST" | "PATCH" | "GET", url: string, as: string, payload?: object) =>
        graceApp.inject({ method, url, payload, headers: { authorization: `Bearer ${as}` } });
      const kept = await bigTenant("kept");
      expect((await call("PATCH", `/v1/tenants/${kept.id}`, platform, { status: "suspended" })).statusCode).toBe(200);
      const before = await snapshot(kept.id);
      const requested = await call("DELETE", `/v1/tenants/${kept.id}`, platform);
      expect(requested.statusCode, requested.body).toBe(202);
      const eraseAfter = new Date(requested.json().eraseAfter).getTime();
      expect(eraseAfter - Date.now()).toBeGreaterThan(3_500_000);
      const [job] = (await jobsOf(kept.id)).filter((j) => j.key === eraseJobKey(kept.id));
      expect(new Date(job.run_at).getTime()).toBe(eraseAfter);
      // The business dashboard counts it apart (platform.tenant_counts, by plan and status).
      const counted = await stack.admin.query("SELECT tenants::int AS n FROM platform.tenant_counts() WHERE status = 'deleting'");
      expect(counted.rows).toEqual([{ n: 1 }]);
      // Nothing runs before its time.
      await work();
      expect(await rowsOf(kept.id)).toMatchObject({ items: 31, tenants: 1 });
      // A PATCH cannot take the tenant out of `deleting`: that is the cancel's.
      const patched = await call("PATCH", `/v1/tenants/${kept.id}`, platform, { status: "active" });
      expect(patched.statusCode).toBe(409);
      expect(patched.json().error.code).toBe("tenant_deleting");

      const cancelled = await call("POST", `/v1/tenants/${kept.code}/erasure/cancel`, platform);
      expect(cancelled.statusCode, cancelled.body).toBe(200);
      expect(cancelled.json()).toMatchObject({ state: "cancelled", cancelledBy: "user-1" });
      expect((await call("GET", `/v1/tenants/${kept.id}`, platform)).json().status).toBe("suspended");
      expect(await jobsOf(kept.id)).toEqual([]);
      expect(await snapshot(kept.id)).toBe(before);
      const twice = await call("POST", `/v1/tenants/${kept.id}/erasure/cancel`, platform);
      expect(twice.statusCode).toBe(409);
      expect(twice.json().error.code).toBe("no_erasure_pending");
      // The request and the cancel stay on the platform's record.
      const history = (await call("GET", `/v1/erasures/${kept.id}`, platform)).json().data;
      expect(history.map((e: { state: string }) => e.state)).toEqual(["cancelled"]);
      // A tenant's own administrator can neither erase nor cancel, even its own tenant.
      expect((await call("DELETE", `/v1/tenants/${kept.id}`, kept.admin)).statusCode).toBe(403);
      expect((await call("GET", `/v1/erasures/${kept.id}`, kept.admin)).statusCode).toBe(403);
    } finally {
      await graceApp.close();
    }
  });

  it("a crash after one batch resumes where it stopped: the counts stay exact and the erasure converges", async () => {
    const crashed = await bigTenant("crashed");
    const before = await rowsOf(crashed.id);
    expect((await erase(crashed)).statusCode).toBe(202);
    // The worker dies right after its first batch committed (every later erasure transaction fails).
    let erasureTransactions = 0;
    const dying: Database = {
      ...db,
      transaction: (context, work) => {
        if (context.tenantErasure && ++erasureTransactions > 2) return Promise.reject(new Error("simulated crash"));
        return db.transaction(context, work);
      },
    };
    await work({ db: dying, batchSize: 3 });
    const [failed] = (await jobsOf(crashed.id)).filter((j) => j.key === eraseJobKey(crashed.id));
    expect(failed).toMatchObject({ attempts: 1 });
    expect(failed.last_error).toContain("simulated crash");
    const mid = await rowsOf(crashed.id);
    expect(mid.items).toBe(before.items! - 3);
    const record = (await stack.request({ method: "GET", url: `/v1/erasures/${crashed.id}`, token: platform })).json().data[0];
    expect(record).toMatchObject({ state: "erasing", rowCounts: { items: 3 } });
    // Begun: too late to cancel.
    const cancel = await stack.request({ method: "POST", url: `/v1/tenants/${crashed.id}/erasure/cancel`, token: platform });
    expect(cancel.statusCode).toBe(409);
    expect(cancel.json().error.code).toBe("erasure_started");

    // graphile-worker retries it later; here, now.
    await stack.admin.query("UPDATE graphile_worker._private_jobs SET run_at = now() WHERE key = $1", [eraseJobKey(crashed.id)]);
    await work({ batchSize: 3 });
    expect(await rowsOf(crashed.id)).toEqual(NO_ROWS);
    const done = (await stack.request({ method: "GET", url: `/v1/erasures/${crashed.id}`, token: platform })).json().data[0];
    expect(done).toMatchObject({ state: "erased", rowCounts: { ...before, audit_log: before.audit_log! + 1, tenants: 1 } });
    expect(await jobsOf(crashed.id)).toEqual([]);
    // A job for an erased tenant, run again, changes nothing.
    await stack.admin.query("SELECT graphile_worker.add_job('tenant.erase', json_build_object('tenantId', $1::text))", [crashed.id]);
    await work();
    expect((await stack.request({ method: "GET", url: `/v1/erasures/${crashed.id}`, token: platform })).json().data[0]).toEqual(done);
  });

  it("lets no transaction but the erasure job's delete audit entries, metrics or a tenant row (migration 0010's policies)", async () => {
    const client = new pg.Client({ connectionString: stack.config.DATABASE_URL });
    await client.connect();
    try {
      const tries = async (settings: string[]) => {
        await client.query("BEGIN");
        for (const s of settings) await client.query(s);
        const deleted: Record<string, number> = {};
        for (const [table, column] of [["audit_log", "tenant_id"], ["tenant_metrics", "tenant_id"], ["tenants", "id"]] as const) {
          deleted[table] = (await client.query(`DELETE FROM platform.${table} WHERE ${column} = $1`, [bystander.id])).rowCount ?? 0;
        }
        await client.query("ROLLBACK");
        return deleted;
      };
      // The tenant's own context, as every request of it runs, and the platform administrator's: nothing.
      expect(await tries([`SET LOCAL app.tenant_id = '${bystander.id}'`, "SET LOCAL app.platform_admin = 'on'"])).toEqual({ audit_log: 0, tenant_metrics: 0, tenants: 0 });
      // The erasure setting for another tenant: nothing. For this one: its log and metrics, but not an active tenant.
      expect(await tries(["SET LOCAL app.tenant_id = '00000000-0000-4000-8000-000000000000'", "SET LOCAL app.tenant_erasure = 'on'"])).toEqual({ audit_log: 0, tenant_metrics: 0, tenants: 0 });
      const own = await tries([`SET LOCAL app.tenant_id = '${bystander.id}'`, "SET LOCAL app.tenant_erasure = 'on'"]);
      expect(own.audit_log).toBeGreaterThan(0);
      expect(own.tenants).toBe(0);
      // And the erasure records: a tenant's context sees none.
      await client.query("BEGIN");
      await client.query(`SET LOCAL app.tenant_id = '${bystander.id}'`);
      expect((await client.query("SELECT count(*)::int AS n FROM platform.tenant_erasures")).rows[0].n).toBe(0);
      await client.query("ROLLBACK");
    } finally {
      await client.end();
    }
  });
});
