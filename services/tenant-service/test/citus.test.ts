/**
 * The service against a real Citus 13 cluster (CITUS_URL: superuser on the coordinator, two or more workers):
 * the same isolation guarantees for router queries (one tenant, one shard) and multi-shard queries, through the
 * real request path. Skipped with a reason when CITUS_URL is unset. Drops the platform schema there: use a
 * throwaway cluster.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { prepareCitusDatabase } from "@platform/citus/testing";
import { buildApp } from "../src/app.js";
import { loadServiceConfig } from "../src/config.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { localExportStore } from "../src/export-store.js";
import { EXPORT_TABLES, exportTaskList } from "../src/worker/export.js";
import { runOnce } from "graphile-worker";
import { citusUrlAs } from "@platform/citus/testing";
import { freePort, waitFor } from "@platform/testing";
import { WORKER_SESSIONS, releaseDeadWorkers } from "../src/worker/dead-workers.js";
import { installQueue } from "../src/worker/queue.js";
import { createTaskList } from "../src/worker/tasks.js";
import { AUDIENCE, ISSUER, SECRET, token } from "./harness.js";
import { startScript, waitUntilServing } from "./processes.js";

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping tenant-service Citus tests: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

describe.skipIf(!CITUS_URL)("tenant service on a real Citus cluster", () => {
  let appUrl: string;
  let release: (() => Promise<void>) | undefined;
  let admin: pg.Client;
  const apps: { close(): Promise<void> }[] = [];

  const start = async (poolSize = 10, env: Record<string, string> = {}) => {
    const config = loadServiceConfig({ DATABASE_URL: appUrl, AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE, TENANT_CACHE_TTL_MS: "0", ...env });
    const db = createPostgresDatabase({ url: appUrl, poolSize });
    const app = await buildApp({ config, db });
    apps.push({ close: async () => { await app.close(); await db.close(); } });
    return (t: string, method: string, url: string, payload?: object | string, headers: Record<string, string> = {}) =>
      app.inject({ method: method as "GET", url, payload, headers: { authorization: `Bearer ${t}`, ...headers } });
  };

  const tenants: Record<string, { id: string; member: string; admin: string; userId: string; itemIds: string[] }> = {};

  beforeAll(async () => {
    ({ appUrl, release } = await prepareCitusDatabase(CITUS_URL!));
    await installQueue(citusUrlAs(CITUS_URL!, "platform_migrator", "migrator"));
    admin = new pg.Client({ connectionString: CITUS_URL });
    await admin.connect();
    const req = await start();
    const platform = await token({ scope: "platform:admin" });
    for (const code of ["test-a", "test-b", "test-c"]) {
      const t = await req(platform, "POST", "/v1/tenants", { code, name: code });
      expect(t.statusCode, t.body).toBe(201);
      const id = t.json().id as string;
      const adminToken = await token({ tenant: id, scope: "tenant:admin" });
      const member = await token({ tenant: id });
      const u = await req(adminToken, "POST", "/v1/users", { email: `owner@${code}.test` });
      expect(u.statusCode, u.body).toBe(201);
      const itemIds: string[] = [];
      for (let i = 0; i < 3; i++) {
        const it = await req(member, "POST", "/v1/items", { ownerId: u.json().id, title: `${code} item ${i}`, body: "shared words" });
        expect(it.statusCode, it.body).toBe(201);
        itemIds.push(it.json().id);
      }
      tenants[code] = { id, member, admin: adminToken, userId: u.json().id, itemIds };
    }
  }, 180_000);

  afterAll(async () => {
    for (const a of apps) await a.close();
    await admin?.end();
    await release?.();
  });

  it("stores each tenant's rows on one shard placement (colocated)", async () => {
    const { rows } = await admin.query(
      `SELECT get_shard_id_for_distribution_column('platform.users', $1::uuid) AS users, get_shard_id_for_distribution_column('platform.items', $1::uuid) AS items`,
      [tenants["test-a"]!.id],
    );
    const placements = await admin.query(
      "SELECT shardid, nodename, nodeport FROM pg_dist_shard_placement WHERE shardid IN ($1, $2)",
      [rows[0].users, rows[0].items],
    );
    expect(new Set(placements.rows.map((p) => `${p.nodename}:${p.nodeport}`)).size).toBe(1);
  });

  it("router reads and writes: a tenant reaches its own rows and nothing of another's", async () => {
    const req = await start();
    const a = tenants["test-a"]!;
    const b = tenants["test-b"]!;
    expect((await req(a.member, "GET", `/v1/items/${a.itemIds[0]}`)).statusCode).toBe(200);
    expect((await req(a.member, "GET", `/v1/items/${b.itemIds[0]}`)).statusCode).toBe(404);
    expect((await req(a.member, "PATCH", `/v1/items/${b.itemIds[0]}`, { title: "pwned" })).statusCode).toBe(404);
    expect((await req(a.member, "DELETE", `/v1/items/${b.itemIds[0]}`)).statusCode).toBe(404);
    expect((await req(a.member, "GET", `/v1/tenants/${b.id}/items/${b.itemIds[0]}`)).statusCode).toBe(403);
    expect((await req(a.member, "GET", "/v1/items", undefined, { "x-tenant-id": "test-b" })).statusCode).toBe(403);
    const title = await admin.query("SELECT title FROM platform.items WHERE tenant_id = $1 AND id = $2", [b.id, b.itemIds[0]]);
    expect(title.rows[0].title).toBe("test-b item 0");
  });

  it("lists, full-text search, usage and audit log return only the tenant's rows", async () => {
    const req = await start();
    const c = tenants["test-c"]!;
    const list = (await req(c.member, "GET", "/v1/items?limit=100")).json();
    expect(list.data.map((i: { id: string }) => i.id).sort()).toEqual([...c.itemIds].sort());
    const search = (await req(c.member, "GET", "/v1/items?q=shared")).json();
    expect(search.data.length).toBe(3);
    const usage = (await req(c.member, "GET", "/v1/usage")).json();
    expect(usage.items.count).toBe(3);
    const audit = (await req(c.admin, "GET", "/v1/audit-log?limit=100")).json();
    expect(audit.data.length).toBe(5); // tenant.create, user.create, 3 x item.create
  });

  it("a multi-shard query under one tenant's context sees that tenant only (RLS evaluated on the workers)", async () => {
    const client = new pg.Client({ connectionString: appUrl });
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query(`SET LOCAL app.tenant_id = '${tenants["test-b"]!.id}'`);
      const { rows } = await client.query("SELECT DISTINCT tenant_id FROM platform.items");
      await client.query("COMMIT");
      expect(rows.map((r) => r.tenant_id)).toEqual([tenants["test-b"]!.id]);
    } finally {
      await client.end();
    }
  });

  it("the pipelined transaction (BEGIN, SET LOCAL and the statement in one write) reaches the workers: router and multi-shard", async () => {
    const db = createPostgresDatabase({ url: appUrl, poolSize: 1 });
    const a = tenants["test-a"]!;
    const b = tenants["test-b"]!;
    const count = (tenant: string, owner: string) =>
      db.transaction({ tenantId: tenant }, async (tx) => (await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1", [owner])).rows[0]!.n);
    try {
      // Router: the worker holding the shard must see the tenant's SET LOCAL, or its policy shows no rows.
      expect(await count(a.id, a.id)).toBe(a.itemIds.length);
      expect(await count(a.id, b.id)).toBe(0);
      expect(await count(b.id, b.id)).toBe(b.itemIds.length);
      // Multi-shard, on the same pooled connection right after: only the current tenant's rows.
      const seen = await db.transaction({ tenantId: b.id }, async (tx) => (await tx.query<{ tenant_id: string }>("SELECT DISTINCT tenant_id FROM platform.items")).rows);
      expect(seen.map((r) => r.tenant_id)).toEqual([b.id]);
    } finally {
      await db.close();
    }
  });

  it("one pooled connection serving A, then errors, then B leaks nothing", async () => {
    const req = await start(1);
    const a = tenants["test-a"]!;
    const b = tenants["test-b"]!;
    expect((await req(a.member, "GET", "/v1/items")).statusCode).toBe(200);
    expect((await req(a.member, "POST", "/v1/items", { ownerId: b.userId, title: "x" })).statusCode).toBe(400);
    expect((await req(a.admin, "POST", "/v1/users", { email: "owner@test-a.test" })).statusCode).toBe(409);
    expect((await req(a.member, "GET", `/v1/tenants/${b.id}/items`)).statusCode).toBe(403);
    const listB = (await req(b.member, "GET", "/v1/items?limit=100")).json();
    expect(listB.data.map((i: { id: string }) => i.id).sort()).toEqual([...b.itemIds].sort());
  });

  it("enforces max_users under concurrency on a reference-table row lock", async () => {
    const req = await start(20);
    const platform = await token({ scope: "platform:admin" });
    // Room for all eight in flight at once (the free plan allows 4): the quota, not the concurrency cap, is tested.
    const t = await req(platform, "POST", "/v1/tenants", { code: "test-quota", name: "quota", maxUsers: 3, concurrentRequests: 10 });
    const adminToken = await token({ tenant: t.json().id, scope: "tenant:admin" });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => req(adminToken, "POST", "/v1/users", { email: `u${i}@quota.test` })));
    expect(results.filter((r) => r.statusCode === 201).length).toBe(3);
    expect(results.filter((r) => r.statusCode === 409).length).toBe(5);
  });

  it("lists tenants (platform.list_tenants over the reference table) by filter, prefix and page", async () => {
    const req = await start();
    const platform = await token({ scope: "platform:admin" });
    const codes = async (query: string) => {
      const res = await req(platform, "GET", `/v1/tenants${query}`);
      expect(res.statusCode, res.body).toBe(200);
      return (res.json().data as { code: string }[]).map((t) => t.code);
    };
    expect(await codes("?q=test-")).toEqual(expect.arrayContaining(["test-c", "test-b", "test-a"]));
    expect(await codes("?q=TEST-B")).toEqual(["test-b"]);
    expect(await codes("?status=suspended&q=test-")).toEqual([]);
    expect((await codes("?plan=free&status=active&q=test-")).slice(0, 3)).toEqual(expect.arrayContaining(["test-c"]));
    const first = (await req(platform, "GET", "/v1/tenants?q=test-&limit=1")).json();
    const second = (await req(platform, "GET", `/v1/tenants?q=test-&limit=1&cursor=${first.nextCursor}`)).json();
    expect(first.data.length + second.data.length).toBe(2);
    expect(second.data[0].id).not.toBe(first.data[0].id);
    const member = await req(tenants["test-a"]!.member, "GET", "/v1/tenants");
    expect(member.statusCode).toBe(403);
  });

  it("applies a tenant's own limits over its plan's: usage shows them, the service enforces its requests a minute", async () => {
    const req = await start();
    const platform = await token({ scope: "platform:admin" });
    const b = tenants["test-b"]!;
    const patched = await req(platform, "PATCH", `/v1/tenants/${b.id}`, { requestsPerMinute: 2, concurrentRequests: 1 });
    expect(patched.statusCode, patched.body).toBe(200);
    const usage = await req(b.member, "GET", "/v1/usage");
    expect(usage.statusCode).toBe(200);
    expect(usage.json().limits).toMatchObject({ requestsPerMinute: 2, concurrentRequests: 1, maxUsers: 10 });
    expect(usage.headers["ratelimit-limit"]).toBe("2");
    expect((await req(b.member, "GET", "/v1/items")).statusCode).toBe(200);
    const refused = await req(b.member, "GET", "/v1/items");
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe("rate_limited");
    expect((await req(platform, "PATCH", `/v1/tenants/${b.id}`, { requestsPerMinute: null, concurrentRequests: null })).statusCode).toBe(200);
  });

  it("enqueues provisioning with the tenant (reference table, distributed audit, coordinator-local queue) and the worker runs it", async () => {
    const queued = await admin.query("SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'tenant.provision'");
    expect(queued.rows[0].n).toBeGreaterThanOrEqual(3);
    const pgPool = new pg.Pool({ connectionString: appUrl, max: 3 });
    const db = createPostgresDatabase({ url: appUrl, poolSize: 3 });
    try {
      await runOnce({ pgPool, taskList: createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 100 }) });
      const left = await admin.query("SELECT count(*)::int AS n, max(last_error) AS e FROM graphile_worker.jobs");
      expect(left.rows[0]).toEqual({ n: 0, e: null });
      const done = await admin.query("SELECT count(DISTINCT tenant_id)::int AS n FROM platform.audit_log WHERE action = 'tenant.provisioned'");
      expect(done.rows[0].n).toBe(queued.rows[0].n);
    } finally {
      await pgPool.end();
      await db.close();
    }
  });

  it("exports a tenant through the worker's task: each table's NDJSON equals the tenant's rows on every placement of every node; an import lands on its shard", async () => {
    const exportDir = mkdtempSync(join(tmpdir(), "citus-exports-"));
    const req = await start(10, { EXPORT_DIR: exportDir });
    const pgPool = new pg.Pool({ connectionString: appUrl, max: 3 });
    const db = createPostgresDatabase({ url: appUrl, poolSize: 3 });
    apps.push({ close: async () => { await pgPool.end(); await db.close(); rmSync(exportDir, { recursive: true, force: true }); } });
    const store = localExportStore(exportDir);
    const taskList = { ...createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 100, exportStore: store }), ...exportTaskList({ db, store, chunkRows: 2, retentionDays: 7 }) };
    const work = () => runOnce({ pgPool, taskList });
    const t = tenants["test-b"]!;
    // An import first (users and items through INSERT ... SELECT of jsonb_to_recordset, routed by the constant tenant),
    // so the export has rows written by both paths.
    const lines = [{ type: "user", key: "cu", email: "imported@test-b.test" }, ...[0, 1, 2].map((i) => ({ type: "item", key: `ci${i}`, ownerKey: "cu", title: `imported ${i}` }))];
    const importInto = () => req(t.admin, "POST", `/v1/tenants/${t.id}/imports`, lines.map((l) => JSON.stringify(l)).join("\n"), { "content-type": "application/x-ndjson" });
    const imported = await importInto();
    expect(imported.statusCode, imported.body).toBe(200);
    expect(imported.json()).toMatchObject({ created: { users: 1, items: 3 }, failed: 0 });
    expect((await importInto()).json()).toMatchObject({ created: { users: 0, items: 0 }, skipped: 4 });

    const queued = await req(t.admin, "POST", `/v1/tenants/${t.id}/exports`);
    expect(queued.statusCode, queued.body).toBe(202);
    await work();
    const done = await req(t.admin, "GET", `/v1/tenants/${t.id}/exports/${queued.json().id}`);
    expect(done.json().status, done.body).toBe("done");
    for (const table of EXPORT_TABLES) {
      const file = (done.json().files as { table: string; rows: number; url: string }[]).find((f) => f.table === table.table)!;
      const download = await req(t.admin, "GET", file.url);
      expect(download.statusCode, download.body).toBe(200);
      const exported = download.body.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
      // The tenant's rows as each placement holds them, read on its node (not through the coordinator's planner).
      const omit = table.omit.map((c) => ` - '${c}'`).join("");
      const { rows } = await admin.query(
        `SELECT nodename, nodeport, result FROM run_command_on_placements('platform.${table.table}', $$SELECT coalesce(json_agg(to_jsonb(t)${omit}), '[]') FROM %s t WHERE tenant_id = '${t.id}'$$)`,
      );
      const onNodes = rows.flatMap((r) => JSON.parse(r.result) as Record<string, unknown>[]);
      const holders = new Set(rows.filter((r) => (JSON.parse(r.result) as unknown[]).length > 0).map((r) => `${r.nodename}:${r.nodeport}`));
      expect(holders.size, table.table).toBeLessThanOrEqual(1);
      const key = (r: Record<string, unknown>) => JSON.stringify([r.id ?? null, r.day ?? null, r.occurred_at ?? null]);
      const sorted = (list: Record<string, unknown>[]) => [...list].sort((x, y) => key(x).localeCompare(key(y)));
      // export.completed is written in the export's transaction after its rows were read.
      const want = table.table === "audit_log" ? onNodes.filter((r) => r.action !== "export.completed") : onNodes;
      expect(exported.length, table.table).toBe(file.rows);
      expect(sorted(exported), table.table).toEqual(sorted(want));
    }
    expect((done.json().files as { table: string; rows: number }[]).find((f) => f.table === "items")!.rows).toBe(3 + 3);
  });

  it("gives up a stuck export when the tenant asks for another or polls it (the heartbeat on the shard, the queue on the coordinator, one transaction); a live one answers 409", async () => {
    const req = await start(10, { EXPORT_STALE_SECONDS: "60" });
    const t = tenants["test-c"]!;
    const insert = async (sql: string) => (await admin.query(`INSERT INTO platform.exports (tenant_id, requested_by, store, expires_at, status, started_at, heartbeat_at) VALUES ($1, 'someone', 'local', now() + interval '1 day', ${sql}) RETURNING id`, [t.id])).rows[0].id as string;
    // Its worker died an hour ago.
    const dead = await insert("'running', now() - interval '1 hour', now() - interval '1 hour'");
    const accepted = await req(t.admin, "POST", `/v1/tenants/${t.id}/exports`);
    expect(accepted.statusCode, accepted.body).toBe(202);
    const given = (await admin.query("SELECT status, error FROM platform.exports WHERE id = $1", [dead])).rows[0];
    expect(given.status).toBe("failed");
    expect(given.error).toMatch(/^given up: no progress since .*, more than 60 s \(its worker stopped\)/);
    // The new one is queued, its job in the coordinator's queue: a request meanwhile is refused, and nothing is given up.
    const job = await admin.query("SELECT attempts, max_attempts FROM graphile_worker.jobs WHERE key = $1", [`tenant.export:${t.id}:${accepted.json().id}`]);
    expect(job.rows).toHaveLength(1);
    const refused = await req(t.admin, "POST", `/v1/tenants/${t.id}/exports`);
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().error.message).toContain(`export ${accepted.json().id} of this tenant is queued`);
    // A running one with a fresh heartbeat is not given up either.
    await admin.query("SELECT graphile_worker.remove_job($1)", [`tenant.export:${t.id}:${accepted.json().id}`]);
    await admin.query("UPDATE platform.exports SET status = 'running', started_at = now(), heartbeat_at = now() WHERE id = $1", [accepted.json().id]);
    expect((await req(t.admin, "POST", `/v1/tenants/${t.id}/exports`)).statusCode).toBe(409);
    // Its worker dies: a poll of it, not only a new request, gives it up once the heartbeat is stale.
    await admin.query("UPDATE platform.exports SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [accepted.json().id]);
    const polled = await req(t.admin, "GET", `/v1/tenants/${t.id}/exports/${accepted.json().id}`);
    expect(polled.statusCode, polled.body).toBe(200);
    expect(polled.json()).toMatchObject({ status: "failed", error: expect.stringMatching(/^given up: no progress since .*, more than 60 s/) });
    expect((await admin.query("SELECT status FROM platform.exports WHERE id = $1", [accepted.json().id])).rows).toEqual([{ status: "failed" }]);
  });

  it("erases a tenant: zero rows of it on every node, every placement of every table; the others' rows untouched", async () => {
    const req = await start(10, { TENANT_ERASURE_GRACE_SECONDS: "0" });
    const platform = await token({ scope: "platform:admin" });
    const t = await req(platform, "POST", "/v1/tenants", { code: "test-erased", name: "erased" });
    expect(t.statusCode, t.body).toBe(201);
    const id = t.json().id as string;
    const adminToken = await token({ tenant: id, scope: "tenant:admin" });
    const u = await req(adminToken, "POST", "/v1/users", { email: "owner@test-erased.test" });
    for (let i = 0; i < 12; i++) expect((await req(adminToken, "POST", "/v1/items", { ownerId: u.json().id, title: `erased ${i}` })).statusCode).toBe(201);
    // An export record and import keys of it, which the erasure removes with the rest.
    const imported = await req(adminToken, "POST", "/v1/imports", JSON.stringify({ type: "item", key: "erased-import", ownerId: u.json().id, title: "imported" }), { "content-type": "application/x-ndjson" });
    expect(imported.statusCode, imported.body).toBe(200);
    expect((await req(adminToken, "POST", "/v1/exports")).statusCode).toBe(202);
    // Every placement of every table (on Citus each node holds its shards; the reference tables a copy each).
    const placements = async (tenant: string) => {
      const counts: Record<string, number> = {};
      for (const [table, column] of [["users", "tenant_id"], ["items", "tenant_id"], ["audit_log", "tenant_id"], ["tenant_metrics", "tenant_id"], ["exports", "tenant_id"], ["import_rows", "tenant_id"], ["tenants", "id"]]) {
        const { rows } = await admin.query(
          `SELECT nodename, nodeport, result FROM run_command_on_placements('platform.${table}', $$SELECT count(*) FROM %s WHERE ${column} = '${tenant}'$$)`,
        );
        for (const r of rows) {
          const key = `${table}@${r.nodename}:${r.nodeport}`;
          counts[key] = (counts[key] ?? 0) + Number(r.result);
        }
      }
      return counts;
    };
    const pgPool = new pg.Pool({ connectionString: appUrl, max: 3 });
    const db = createPostgresDatabase({ url: appUrl, poolSize: 3 });
    const work = () => runOnce({ pgPool, taskList: createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 100, erasureBatchSize: 5 }) });
    apps.push({ close: async () => { await pgPool.end(); await db.close(); } });
    await work(); // every tenant's provisioning first, so that the erasure's run is the only change
    const nodes = (await admin.query("SELECT count(*)::int AS n FROM pg_dist_node WHERE isactive AND noderole = 'primary'")).rows[0].n;
    const before = await placements(id);
    expect(Object.values(before).reduce((x, y) => x + y, 0)).toBeGreaterThan(12 + 1 + 1);
    const others = await placements(tenants["test-a"]!.id);

    expect((await req(platform, "DELETE", `/v1/tenants/${id}`)).statusCode).toBe(202);
    expect((await req(adminToken, "GET", "/v1/items")).statusCode).toBe(403);
    await work();
    const after = await placements(id);
    // The tenants copy sits on every node (the coordinator included): the check reached each of them.
    expect(new Set(Object.keys(after).filter((k) => k.startsWith("tenants@"))).size).toBe(nodes);
    expect(Object.entries(after).filter(([, n]) => n > 0)).toEqual([]);
    expect(await placements(tenants["test-a"]!.id)).toEqual(others);
    expect((await req(platform, "GET", `/v1/tenants/${id}`)).statusCode).toBe(404);
    const record = await req(platform, "GET", `/v1/erasures/${id}`);
    expect(record.json().data[0]).toMatchObject({ state: "erased", rowCounts: { items: 13, users: 1, tenants: 1, exports: 1, import_rows: 1 } });
    const left = await admin.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE payload ->> 'tenantId' = $1", [id]);
    expect(left.rows[0].n).toBe(0);
  });

  it("a dead worker's jobs are released on Citus too (the queue, its sessions table and the advisory locks are the coordinator's)", async () => {
    const exportDir = mkdtempSync(join(tmpdir(), "citus-dead-worker-"));
    const healthPort = await freePort();
    const worker = startScript("worker", {
      DATABASE_URL: appUrl, HEALTH_PORT: String(healthPort), EXPORT_DIR: exportDir, LOG_LEVEL: "info", WORKER_CONCURRENCY: "1", WEBHOOK_CONCURRENCY: "1", EXPORT_CONCURRENCY: "1",
    });
    const sweeper = new pg.Client({ connectionString: appUrl });
    await sweeper.connect();
    const sweep = async () => {
      await sweeper.query("BEGIN");
      try {
        return await releaseDeadWorkers(sweeper, 1);
      } finally {
        await sweeper.query("COMMIT");
      }
    };
    try {
      await waitUntilServing(worker, `http://127.0.0.1:${healthPort}/livez`);
      const ids = await waitFor("the worker's three ids to be recorded", async () => {
        const { rows } = await admin.query<{ worker_id: string }>(`SELECT worker_id FROM ${WORKER_SESSIONS} ORDER BY 1`);
        return rows.length === 3 && rows.map((r) => r.worker_id);
      });
      // A job held by one of them (queued for later, so that the worker does not run it, then locked in its name).
      const job = (await admin.query("SELECT id FROM graphile_worker.add_job('test.held', '{}'::json, run_at := now() + interval '1 day')")).rows[0].id as string;
      await admin.query("UPDATE graphile_worker._private_jobs SET locked_by = $1, locked_at = now() WHERE id = $2", [ids[0], job]);
      expect(await sweep()).toEqual({ marked: 0, processes: 0, workers: [], jobs: 0 });
      worker.child.kill("SIGKILL");
      await worker.exited;
      expect((await sweep()).marked).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(await sweep()).toEqual({ marked: 0, processes: 1, workers: ids, jobs: 1 });
      expect((await admin.query("SELECT locked_by FROM graphile_worker._private_jobs WHERE id = $1", [job])).rows[0]).toEqual({ locked_by: null });
      await admin.query("DELETE FROM graphile_worker._private_jobs WHERE id = $1", [job]);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
      await sweeper.end();
      rmSync(exportDir, { recursive: true, force: true });
    }
  }, 120_000);
});
