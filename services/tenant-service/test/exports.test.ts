/**
 * Tenant exports (POST/GET /v1/tenants/{t}/exports, the tenant.export job) against a real PostgreSQL 15 and Redis,
 * with the real worker process (`pnpm worker`'s command line) writing to the local store. What an export holds is
 * checked against the rows as the superuser reads them, whom no policy filters.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { freePort, waitFor } from "@platform/testing";
import type { JobHelpers } from "graphile-worker";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../src/db/database.js";
import { openDatabases } from "../src/db/open.js";
import { TenantMoving } from "../src/db/placed.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { localExportStore, type ExportStore } from "../src/export-store.js";
import { EXPORT_TABLES, exportJobKey, exportTask } from "../src/worker/export.js";
import { exportSweepTask } from "../src/worker/export-sweep.js";
import { installQueue } from "../src/worker/queue.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";
import { startScript, waitUntilServing, type RunningProcess } from "./processes.js";

if (unavailable) console.warn(`skipping export tests: ${unavailable}`);

/** Each table's rows of the tenant as the superuser reads them, as JSON objects (items without the derived search column). */
async function rowsOf(stack: Stack, tenantId: string): Promise<Record<string, Record<string, unknown>[]>> {
  const tables: Record<string, Record<string, unknown>[]> = {};
  for (const table of ["users", "items", "audit_log", "tenant_metrics"]) {
    const { rows } = await stack.admin.query<{ row: Record<string, unknown> }>(`SELECT to_jsonb(t) AS row FROM platform.${table} t WHERE tenant_id = $1`, [tenantId]);
    tables[table] = rows.map((r) => {
      const { search: _search, ...row } = r.row;
      return row;
    });
  }
  return tables;
}

const STALE_SECONDS = 3;

const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) => JSON.stringify([a.id ?? a.day]).localeCompare(JSON.stringify([b.id ?? b.day]));

describe.skipIf(unavailable !== undefined)("tenant exports on PostgreSQL 15 with the real worker", () => {
  let stack: Stack;
  let worker: RunningProcess;
  let exportDir: string;
  let platform: string;
  let a: TenantFixture;
  let b: TenantFixture;

  /** The real worker process, with `env` over the suite's settings. */
  const startWorker = async (env: Record<string, string> = {}) => {
    const healthPort = await freePort();
    const started = startScript("worker", {
      DATABASE_URL: stack.config.DATABASE_URL!, HEALTH_PORT: String(healthPort), EXPORT_DIR: exportDir, EXPORT_FETCH_ROWS: "40", EXPORT_STALE_SECONDS: String(STALE_SECONDS), LOG_LEVEL: "info", ...env,
    });
    await waitUntilServing(started, `http://127.0.0.1:${healthPort}/livez`);
    return started;
  };
  const exportOf = async (t: TenantFixture, as = t.admin) => {
    const res = await stack.request({ method: "POST", url: `/v1/tenants/${t.id}/exports`, token: as });
    expect(res.statusCode, res.body).toBe(202);
    return res;
  };
  /** Polls the export until it leaves queued and running (the worker's job). */
  const finished = async (t: TenantFixture, id: string) => {
    let status = "unknown";
    return waitFor(
      `export ${id} to finish`,
      async () => {
        const res = await stack.request({ method: "GET", url: `/v1/tenants/${t.id}/exports/${id}`, token: t.admin });
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json();
        status = body.status;
        return !["queued", "running"].includes(body.status) && body;
      },
      { timeoutMs: 60_000, intervalMs: 200, detail: () => `still ${status}:\n${worker.stdout.slice(-20).join("\n")}\n${worker.stderr.join("\n")}` },
    );
  };
  const download = async (t: TenantFixture, url: string) => {
    const res = await stack.request({ method: "GET", url, token: t.admin });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    expect(res.headers["content-type"]).toBe("application/x-ndjson");
    return res.body.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  beforeAll(async () => {
    exportDir = mkdtempSync(join(tmpdir(), "exports-test-"));
    // An export without progress for 3 s is given up (the worker beats every 300 ms): the stuck export's test waits that.
    stack = await startStack({ env: { EXPORT_DIR: exportDir, TENANT_ERASURE_GRACE_SECONDS: "0", EXPORT_STALE_SECONDS: String(STALE_SECONDS) } });
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    platform = await token({ scope: "platform:admin" });
    a = await createTenant(stack, "alpha", platform);
    b = await createTenant(stack, "bravo", platform);
    // More rows than several FETCHes of the worker (EXPORT_FETCH_ROWS below), with text that JSON must escape.
    for (const t of [a, b]) {
      await stack.admin.query(`INSERT INTO platform.users (tenant_id, email, display_name) SELECT $1, 'u' || g || '@${t.code}.test', 'Ünïcode "quoted" \\ ' || g FROM generate_series(1, 120) g`, [t.id]);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title, body, tags) SELECT $1, $2, 'item ' || g, E'line one\\nline two\\t' || g, ARRAY['t' || (g % 3)] FROM generate_series(1, 250) g`, [t.id, t.userId]);
    }
    worker = await startWorker();
  }, 120_000);
  afterAll(async () => {
    await worker?.stop();
    await stack?.close();
    if (exportDir) rmSync(exportDir, { recursive: true, force: true });
  });

  it("queues an export (202, the record and its audit entry in one transaction) that the worker writes, one NDJSON file per table equal to the tenant's rows", async () => {
    const res = await exportOf(a);
    const queued = res.json();
    expect(queued).toMatchObject({ status: "queued", requestedBy: "alpha-admin", files: [] });
    expect(res.headers.location).toBe(`/v1/tenants/${a.id}/exports/${queued.id}`);
    const requested = await stack.admin.query("SELECT actor FROM platform.audit_log WHERE tenant_id = $1 AND action = 'export.requested' AND entity_id = $2", [a.id, queued.id]);
    expect(requested.rows).toEqual([{ actor: "alpha-admin" }]);

    const done = await finished(a, queued.id);
    expect(done.status, JSON.stringify(done)).toBe("done");
    expect(done.files.map((f: { table: string }) => f.table)).toEqual(["users", "items", "audit_log", "tenant_metrics"]);
    const expected = await rowsOf(stack, a.id);
    for (const file of done.files as { table: string; rows: number; bytes: number; url: string; urlExpiresAt: string | null }[]) {
      expect(file.url).toBe(`/v1/tenants/${a.id}/exports/${queued.id}/tables/${file.table}`);
      expect(file.urlExpiresAt).toBeNull();
      const lines = await download(a, file.url);
      expect(lines.length, file.table).toBe(file.rows);
      // The audit log gained export.completed in the export's own transaction, after its rows were read.
      const want = file.table === "audit_log" ? expected.audit_log!.filter((r) => r.action !== "export.completed") : expected[file.table]!;
      expect([...lines].sort(byKey), file.table).toEqual([...want].sort(byKey));
      for (const line of lines) expect(line.tenant_id).toBe(a.id);
    }
    expect(done.files.find((f: { table: string }) => f.table === "items").rows).toBe(251);
    expect(done.files.find((f: { table: string }) => f.table === "users").rows).toBe(121);
    const completed = await stack.admin.query("SELECT actor, details FROM platform.audit_log WHERE tenant_id = $1 AND action = 'export.completed' AND entity_id = $2", [a.id, queued.id]);
    expect(completed.rows[0]).toMatchObject({ actor: "worker", details: { rows: { users: 121, items: 251 }, store: "local" } });
    expect(worker.stdout.some((l) => l.includes(`export ${queued.id}`) && /peak RSS \d+ MiB/.test(l))).toBe(true);
  });

  it("holds no row of another tenant, and a platform administrator may export any tenant", async () => {
    const done = await finished(b, (await exportOf(b, platform)).json().id);
    expect(done.requestedBy).toBe("user-1");
    const text = JSON.stringify(await Promise.all(done.files.map((f: { url: string }) => download(b, f.url))));
    for (const id of [a.id, a.userId, a.itemId]) expect(text).not.toContain(id);
    expect(text).toContain(b.itemId);
  });

  it("refuses members (tenant administrators only), unknown ids and unknown tables", async () => {
    expect((await stack.request({ method: "POST", url: `/v1/tenants/${a.id}/exports`, token: a.member })).statusCode).toBe(403);
    const id = (await exportOf(a)).json().id;
    expect((await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports/${id}`, token: a.member })).statusCode).toBe(403);
    expect((await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports/00000000-0000-4000-8000-000000000000`, token: a.admin })).statusCode).toBe(404);
    await finished(a, id);
    const table = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports/${id}/tables/tenants`, token: a.admin });
    expect(table.statusCode).toBe(400);
    expect(table.json().error.message).toContain("must be one of the exported tables");
  });

  it("queues one export of a tenant at a time: another POST meanwhile answers 409 naming it, and creates nothing", async () => {
    const { rows } = await stack.admin.query("INSERT INTO platform.exports (tenant_id, requested_by, store, expires_at) VALUES ($1, 'someone', 'local', now() + interval '1 day') RETURNING id", [b.id]);
    const pending = rows[0].id as string;
    // Its job waits in the queue (for an hour: no worker takes it meanwhile), so it is queued and not lost.
    await stack.admin.query("SELECT graphile_worker.add_job('tenant.export', json_build_object('tenantId', $1::text, 'exportId', $2::text), job_key := $3, run_at := now() + interval '1 hour')", [b.id, pending, exportJobKey(b.id, pending)]);
    const count = async () => (await stack.admin.query("SELECT count(*)::int AS n FROM platform.exports WHERE tenant_id = $1", [b.id])).rows[0].n as number;
    const before = await count();
    const res = await stack.request({ method: "POST", url: `/v1/tenants/${b.id}/exports`, token: b.admin });
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json().error).toMatchObject({ code: "export_in_progress", message: expect.stringContaining(`export ${pending} of this tenant is queued`) });
    expect(await count()).toBe(before);
    // Another tenant is not held up by it.
    await finished(a, (await exportOf(a)).json().id);
    await stack.admin.query("UPDATE platform.exports SET status = 'failed', finished_at = now() WHERE id = $1", [pending]);
    await stack.admin.query("SELECT graphile_worker.remove_job($1)", [exportJobKey(b.id, pending)]);
    await finished(b, (await exportOf(b)).json().id);
  });

  it("an expired export lists no files and its files answer 410", async () => {
    const id = (await exportOf(a)).json().id;
    await finished(a, id);
    await stack.admin.query("UPDATE platform.exports SET expires_at = now() - interval '1 second' WHERE id = $1", [id]);
    const res = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports/${id}`, token: a.admin });
    expect(res.json()).toMatchObject({ status: "expired", files: [] });
    const file = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports/${id}/tables/items`, token: a.admin });
    expect(file.statusCode).toBe(410);
  });

  it("a job whose record is deleted while it writes (the tenant erased meanwhile) removes what it wrote, and its retry finds nothing to do", async () => {
    const { rows } = await stack.admin.query("INSERT INTO platform.exports (tenant_id, requested_by, store, expires_at) VALUES ($1, 'someone', 'local', now() + interval '1 day') RETURNING id", [b.id]);
    const id = rows[0].id as string;
    const local = localExportStore(exportDir);
    // The erasure's delete lands while the first object is being written (the superuser is above the erasure-only policy).
    let deleted = false;
    const store: ExportStore = {
      ...local,
      async write(key, body, contentType) {
        if (!deleted) {
          deleted = true;
          await stack.admin.query("DELETE FROM platform.exports WHERE id = $1", [id]);
        }
        await local.write(key, body, contentType);
      },
    };
    const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
    const lines: string[] = [];
    const helpers = { logger: { info: (m: string) => lines.push(m) }, job: { id: "test", attempts: 1, max_attempts: 5 } } as unknown as JobHelpers;
    try {
      const run = exportTask({ db, store, chunkRows: 50, retentionDays: 7 });
      await run({ tenantId: b.id, exportId: id }, helpers);
      expect(deleted).toBe(true);
      expect(readdirSync(join(exportDir, "tenants", b.id, "exports"))).not.toContain(id);
      expect(lines.join("\n")).toContain("its record was deleted (the tenant was erased) or given up as stale while it ran");
      const completed = await stack.admin.query("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'export.completed' AND entity_id = $2", [b.id, id]);
      expect(completed.rows).toEqual([]);
      // A retry of the job: no record, nothing written, and any object left is removed.
      await local.write(`tenants/${b.id}/exports/${id}/users.ndjson`, Readable.from(["{}\n"]), "application/x-ndjson");
      await run({ tenantId: b.id, exportId: id }, helpers);
      expect(readdirSync(join(exportDir, "tenants", b.id, "exports"))).not.toContain(id);
    } finally {
      await db.close();
    }
  });

  it("lists a tenant's exports newest first, page by page: every one once, in order, across exports that share a microsecond; none of another tenant", async () => {
    const d = await createTenant(stack, "delta", platform);
    // 23 finished exports, four to an instant (the keyset must tell them apart by id), and one running.
    await stack.admin.query(
      `INSERT INTO platform.exports (tenant_id, requested_by, store, status, requested_at, finished_at, expires_at)
       SELECT $1, 'someone', 'local', 'done', timestamptz '2026-11-01 00:00:00.123456+00' - (g / 4) * interval '1 ms', now(), now() + interval '1 day'
         FROM generate_series(1, 23) g`,
      [d.id],
    );
    await stack.admin.query("INSERT INTO platform.exports (tenant_id, requested_by, store, status, started_at, expires_at) VALUES ($1, 'someone', 'local', 'running', now(), now() + interval '1 day')", [d.id]);
    const want = (await stack.admin.query("SELECT id FROM platform.exports WHERE tenant_id = $1 ORDER BY requested_at DESC, id DESC", [d.id])).rows.map((r) => r.id as string);
    expect(want).toHaveLength(24);

    const seen: string[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const res = await stack.request({ method: "GET", url: `/v1/tenants/${d.id}/exports?limit=5${cursor ? `&cursor=${cursor}` : ""}`, token: d.admin });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json() as { data: { id: string; status: string; files?: unknown }[]; nextCursor: string | null };
      expect(page.data.length).toBeLessThanOrEqual(5);
      // The list signs no URLs: the files are the one export's GET.
      for (const e of page.data) expect(e).not.toHaveProperty("files");
      seen.push(...page.data.map((e) => e.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(5);
    expect(seen).toEqual(want);
    expect(new Set(seen).size).toBe(24);

    // The first page, newest first: the running export (requested now) and then the finished ones.
    const first = (await stack.request({ method: "GET", url: `/v1/tenants/${d.id}/exports?limit=2`, token: d.admin })).json();
    expect(first.data[0]).toMatchObject({ id: want[0], status: "running" });
    // Another tenant's list holds none of delta's, and delta's none of another's; a platform administrator lists any.
    const others = (await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports?limit=100`, token: a.admin })).json();
    expect(others.data.length).toBeGreaterThan(0);
    expect(others.data.some((e: { id: string }) => want.includes(e.id))).toBe(false);
    const own = new Set((await stack.admin.query("SELECT id FROM platform.exports WHERE tenant_id = $1", [a.id])).rows.map((r) => r.id as string));
    expect(others.data.every((e: { id: string }) => own.has(e.id))).toBe(true);
    const byPlatform = await stack.request({ method: "GET", url: `/v1/tenants/${d.code}/exports?limit=100`, token: platform });
    expect(byPlatform.json().data.map((e: { id: string }) => e.id)).toEqual(want);
  });

  it("refuses the list to members (403), to another tenant's administrator (403), names no such tenant to a platform administrator (404), and says what is wrong with a bad cursor (400)", async () => {
    const member = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports`, token: a.member });
    expect(member.statusCode).toBe(403);
    expect(member.json().error.message).toContain("tenant:admin");
    const other = await stack.request({ method: "GET", url: `/v1/tenants/${b.id}/exports`, token: a.admin });
    expect(other.statusCode).toBe(403);
    expect(other.body).not.toContain('"data"');
    const missing = await stack.request({ method: "GET", url: "/v1/tenants/00000000-0000-4000-8000-000000000000/exports", token: platform });
    expect(missing.statusCode).toBe(404);
    for (const cursor of ["not-a-cursor", Buffer.from(JSON.stringify(["2026-13-01T00:00:00Z", a.id])).toString("base64url")]) {
      const bad = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/exports?cursor=${cursor}`, token: a.admin });
      expect(bad.statusCode, bad.body).toBe(400);
      expect(bad.json().error).toEqual({ code: "invalid_cursor", message: "cursor is not one this API returned: pass the nextCursor of the previous page" });
    }
  });

  describe("in short transactions, a chunk at a time", () => {
    const helpers = (lines: string[] = []) => ({ logger: { info: (m: string) => lines.push(m) }, job: { id: "test", attempts: 1, max_attempts: 5 } }) as unknown as JobHelpers;
    /** The worker's own database (db/open.ts: the router over the process's databases), in this process. */
    const workerDb = () => openDatabases({ DATABASE_URL: stack.config.DATABASE_URL! }, { poolSize: 2, placementTtlMs: 5_000, placementMax: 100 });
    const queuedExport = async (t: TenantFixture) =>
      (await stack.admin.query("INSERT INTO platform.exports (tenant_id, requested_by, store, expires_at) VALUES ($1, 'someone', 'local', now() + interval '1 day') RETURNING id", [t.id])).rows[0].id as string;
    /** The local store, each chunk handed over after `delayMs`, calling `onChunk` with the object's key first. */
    const slowStore = (delayMs: number, onChunk: (key: string) => void | Promise<void>): ExportStore => {
      const local = localExportStore(exportDir);
      return {
        ...local,
        write: (key, body, contentType) =>
          local.write(key, Readable.from((async function* () {
            for await (const chunk of body) {
              await onChunk(key);
              await new Promise((r) => setTimeout(r, delayMs));
              yield chunk as Buffer;
            }
          })(), { objectMode: false }), contentType),
      };
    };
    const exportedLines = async (t: TenantFixture, id: string) => {
      const record = (await stack.admin.query("SELECT status, tables FROM platform.exports WHERE id = $1", [id])).rows[0];
      expect(record.status).toBe("done");
      const local = localExportStore(exportDir);
      const files: Record<string, Record<string, unknown>[]> = {};
      for (const { table } of EXPORT_TABLES) {
        let text = "";
        for await (const c of (await local.read(record.tables[table].key))!) text += (c as Buffer).toString("utf8");
        files[table] = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(files[table]!.length, table).toBe(record.tables[table].rows);
      }
      return files;
    };

    it("yields exactly the tenant's rows in chunks of 7, across boundaries that split audit entries sharing one microsecond", async () => {
      const e = await createTenant(stack, "echo", platform);
      await stack.admin.query(`INSERT INTO platform.users (tenant_id, email) SELECT $1, 'u' || g || '@echo.test' FROM generate_series(1, 30) g`, [e.id]);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 45) g`, [e.id, e.userId]);
      // 40 entries at one instant (an id decides their order), 20 more at instants a microsecond apart.
      await stack.admin.query(`INSERT INTO platform.audit_log (tenant_id, occurred_at, actor, action, entity_type) SELECT $1, timestamptz '2026-12-01 10:00:00.000001+00', 'a', 'same.instant', 'x' FROM generate_series(1, 40)`, [e.id]);
      await stack.admin.query(`INSERT INTO platform.audit_log (tenant_id, occurred_at, actor, action, entity_type) SELECT $1, timestamptz '2026-12-01 10:00:00+00' + g * interval '1 microsecond', 'a', 'apart', 'x' FROM generate_series(1, 20) g`, [e.id]);
      await stack.admin.query(`INSERT INTO platform.tenant_metrics (tenant_id, day, users, items, storage_bytes, writes) SELECT $1, date '2026-01-01' + g, g, g, g, g FROM generate_series(1, 23) g`, [e.id]);
      const id = await queuedExport(e);
      const db = workerDb();
      try {
        await exportTask({ db, store: localExportStore(exportDir), chunkRows: 7, retentionDays: 7 })({ tenantId: e.id, exportId: id }, helpers());
      } finally {
        await db.close();
      }
      const files = await exportedLines(e, id);
      const expected = await rowsOf(stack, e.id);
      for (const { table } of EXPORT_TABLES) {
        const want = table === "audit_log" ? expected.audit_log!.filter((r) => r.action !== "export.completed") : expected[table]!;
        expect(files[table]!.length, table).toBe(want.length);
        expect([...files[table]!].sort(byKey), table).toEqual([...want].sort(byKey));
      }
      expect(files.audit_log!.filter((r) => r.action === "same.instant")).toHaveLength(40);
      // The 23 days and the one the provisioning job wrote: four chunks of 7, the last one short.
      expect(files.tenant_metrics).toHaveLength(24);
    });

    it("lets a tenantctl cutover's await_tenant_quiet through at once while the export runs: no transaction lasts the export", async () => {
      const f = await createTenant(stack, "foxtrot", platform);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 2000) g`, [f.id, f.userId]);
      const id = await queuedExport(f);
      // 20 rows a chunk, each handed to the store after 15 ms: the items alone take 100 chunks, 1.5 s and more.
      let itemChunks = 0;
      let ready!: () => void;
      const midway = new Promise<void>((r) => (ready = r));
      const store = slowStore(15, (key) => {
        if (key.endsWith("/items.ndjson") && ++itemChunks === 20) ready();
      });
      const db = workerDb();
      let exportDone = false;
      const started = Date.now();
      const running = Promise.resolve(exportTask({ db, store, chunkRows: 20, retentionDays: 7 })({ tenantId: f.id, exportId: id }, helpers())).finally(() => (exportDone = true));
      try {
        await midway;
        // As tenantctl's cutover asks it (citus/src/tenantctl/engine.ts), as the migration role.
        const quiet = new pg.Client({ connectionString: stack.pg.urlFor("platform_migrator", "migrator") });
        await quiet.connect();
        const asked = Date.now();
        try {
          await quiet.query("BEGIN");
          await quiet.query("SET LOCAL lock_timeout = 30000");
          await quiet.query("SELECT platform.await_tenant_quiet($1)", [f.id]);
          await quiet.query("COMMIT");
        } finally {
          await quiet.end();
        }
        const waited = Date.now() - asked;
        const stillRunning = !exportDone;
        await running;
        console.log(`await_tenant_quiet during an export: ${waited} ms; the export ran ${Date.now() - started} ms (${itemChunks} item chunks)`);
        expect(stillRunning, "the export had finished before await_tenant_quiet returned: it waited for the whole export").toBe(true);
        expect(waited).toBeLessThan(1_000);
      } finally {
        await running.catch(() => {});
        await db.close();
      }
      const files = await exportedLines(f, id);
      expect(files.items).toHaveLength(2001);
    });

    it("carries on across a fence (a cutover of the tenant): the refused chunk is tried again and the export holds every row once", async () => {
      const g = await createTenant(stack, "golf", platform);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 300) g`, [g.id, g.userId]);
      const id = await queuedExport(g);
      const opened = workerDb();
      let refused = 0;
      const db: Database = {
        ...opened,
        transaction: (context, work) => opened.transaction(context, work).catch((error: unknown) => {
          if (error instanceof TenantMoving) refused++;
          throw error;
        }),
      };
      let fenced = false;
      const store = slowStore(0, async (key) => {
        if (fenced || !key.endsWith("/items.ndjson")) return;
        fenced = true;
        // As tenantctl fences a tenant's source database; lifted 600 ms later, as a cutover ends.
        await stack.admin.query("INSERT INTO platform.tenant_fences (tenant_id, reason) VALUES ($1, 'test: cutover')", [g.id]);
        setTimeout(() => void stack.admin.query("DELETE FROM platform.tenant_fences WHERE tenant_id = $1", [g.id]), 600);
      });
      try {
        await exportTask({ db, store, chunkRows: 25, retentionDays: 7 })({ tenantId: g.id, exportId: id }, helpers());
      } finally {
        await opened.close();
      }
      expect(refused).toBeGreaterThan(0);
      const files = await exportedLines(g, id);
      const want = (await rowsOf(stack, g.id)).items!;
      expect(files.items).toHaveLength(301);
      expect([...files.items!].sort(byKey)).toEqual([...want].sort(byKey));
    });
  });

  describe("a stuck export", () => {
    const record = async (id: string) => (await stack.admin.query("SELECT status, error, heartbeat_at, tables FROM platform.exports WHERE id = $1", [id])).rows[0];

    it(`a worker killed mid-export blocks the tenant's next export (409) only until its heartbeat is ${STALE_SECONDS} s old; then a POST gives it up and queues the new one, which completes; the dead job never runs it again`, async () => {
      const h = await createTenant(stack, "hotel", platform);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 20000) g`, [h.id, h.userId]);
      // The suite's worker takes no job meanwhile; the victim reads 5 rows a chunk, so the export runs for seconds.
      await worker.stop();
      const victim = await startWorker({ EXPORT_FETCH_ROWS: "5" });
      const stuck = (await exportOf(h)).json().id as string;
      await waitFor("the export to start running", async () => (await record(stuck)).status === "running", { intervalMs: 10 });
      await new Promise((r) => setTimeout(r, 500));
      victim.child.kill("SIGKILL");
      await victim.exited;
      const killedAt = Date.now();
      const dead = await record(stuck);
      expect(dead.status, "the export ended before the worker was killed").toBe("running");
      expect(dead.heartbeat_at).not.toBeNull();

      // Its heartbeat is fresh: the export in progress blocks the next one, and the answer says for how long.
      const refused = await stack.request({ method: "POST", url: `/v1/tenants/${h.id}/exports`, token: h.admin });
      expect(refused.statusCode, refused.body).toBe(409);
      expect(refused.json().error.message).toContain(`export ${stuck} of this tenant is running`);
      expect(refused.json().error.message).toContain(`no progress for ${STALE_SECONDS} s is given up`);
      let refusals = 1;
      let lastRefusedAt = -Infinity;
      const accepted = await waitFor<{ id: string }>(
        "the stuck export to be given up (a new export accepted)",
        async () => {
          const askedAt = Date.now();
          const res = await stack.request({ method: "POST", url: `/v1/tenants/${h.id}/exports`, token: h.admin });
          if (res.statusCode === 202) return res.json();
          expect(res.statusCode, res.body).toBe(409);
          lastRefusedAt = askedAt;
          refusals++;
          return undefined;
        },
        { timeoutMs: Math.max(0, 30_000 - (Date.now() - killedAt)), intervalMs: 200 },
      );
      const waited = Date.now() - killedAt;
      const beat = new Date(dead.heartbeat_at as Date).getTime();
      console.log(`stuck export: killed ${killedAt - beat} ms after its last heartbeat; a new export accepted ${waited} ms after the kill (${refusals} x 409 before)`);
      // Given up no earlier than the bound after the last heartbeat, and no request sent after the bound was refused:
      // judged by when each request was sent, not by when a loaded machine answered it (the database judges staleness
      // at its own now(), later still).
      expect(Date.now() - beat).toBeGreaterThanOrEqual(STALE_SECONDS * 1000);
      expect(lastRefusedAt - beat, "a request sent after the heartbeat went stale was refused").toBeLessThanOrEqual(STALE_SECONDS * 1000);
      const given = await record(stuck);
      expect(given.status).toBe("failed");
      expect(given.error).toMatch(new RegExp(`^given up: no progress since \\S+, more than ${STALE_SECONDS} s \\(its worker stopped\\); request a new export$`));
      const audit = await stack.admin.query("SELECT actor, details FROM platform.audit_log WHERE tenant_id = $1 AND action = 'export.given_up' AND entity_id = $2", [h.id, stuck]);
      expect(audit.rows).toEqual([{ actor: "hotel-admin", details: expect.objectContaining({ status: "running" }) }]);
      const listed = (await stack.request({ method: "GET", url: `/v1/tenants/${h.id}/exports?limit=2`, token: h.admin })).json();
      expect(listed.data.map((e: { id: string; status: string }) => [e.id, e.status])).toEqual([[accepted.id, "queued"], [stuck, "failed"]]);

      // A worker again: the new export completes.
      worker = await startWorker();
      const done = await finished(h, accepted.id);
      expect(done.status).toBe("done");
      expect(done.files.find((f: { table: string }) => f.table === "items").rows).toBe(20001);

      // The dead worker's job: graphile-worker releases it after 4 hours (here at once, as docs/runbooks/worker-jobs.md
      // does); giving the export up spent its attempts, so no worker takes it again.
      const held = await stack.admin.query("SELECT id, locked_by, attempts, max_attempts, key FROM graphile_worker.jobs WHERE task_identifier = 'tenant.export' AND locked_by IS NOT NULL");
      expect(held.rows).toHaveLength(1);
      expect(held.rows[0]).toMatchObject({ key: null, attempts: held.rows[0].max_attempts });
      await stack.admin.query("SELECT graphile_worker.force_unlock_workers(ARRAY[$1])", [held.rows[0].locked_by]);
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await stack.admin.query("SELECT locked_by FROM graphile_worker.jobs WHERE id = $1", [held.rows[0].id])).rows).toEqual([{ locked_by: null }]);
      expect((await record(stuck)).status).toBe("failed");
      // And were it run (an older queue, a job added by hand), the job does nothing to a given-up export but remove its objects.
      const lines: string[] = [];
      const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 1 });
      try {
        await exportTask({ db, store: localExportStore(exportDir), chunkRows: 50, retentionDays: 7 })({ tenantId: h.id, exportId: stuck }, { logger: { info: (m: string) => lines.push(m) }, job: { id: "rerun", attempts: 1, max_attempts: 5 } } as unknown as JobHelpers);
      } finally {
        await db.close();
      }
      expect(lines.join("\n")).toContain(`export ${stuck} of tenant ${h.id} was given up`);
      expect(await record(stuck)).toMatchObject({ status: "failed", tables: {} });
      expect(readdirSync(join(exportDir, "tenants", h.id, "exports"))).not.toContain(stuck);
    }, 120_000);

    it(`the worker's sweep leaves a live export alone however long its job is locked, and gives up a dead worker's export nobody asks about once its heartbeat is ${STALE_SECONDS} s old`, async () => {
      const l = await createTenant(stack, "lima", platform);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 20000) g`, [l.id, l.userId]);
      // One row a chunk: the export runs for many seconds, its heartbeat every STALE_SECONDS / 10.
      await worker.stop();
      const victim = await startWorker({ EXPORT_FETCH_ROWS: "1" });
      const id = (await exportOf(l)).json().id as string;
      const lockedFor = async () =>
        ((await stack.admin.query("SELECT extract(epoch FROM now() - locked_at)::float8 AS s FROM graphile_worker.jobs WHERE key = $1", [exportJobKey(l.id, id)])).rows[0]?.s as number | null) ?? 0;
      const given: string[] = [];
      const lines: string[] = [];
      const sweepDb = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
      const sweep = () =>
        exportSweepTask({ db: sweepDb, staleSeconds: STALE_SECONDS, onGivenUp: (reason) => given.push(reason) })({}, {
          logger: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) },
          job: { id: "sweep" },
        } as unknown as JobHelpers);
      const jobId = (await stack.admin.query("SELECT id FROM graphile_worker.jobs WHERE key = $1", [exportJobKey(l.id, id)])).rows[0]?.id as string;
      expect(jobId).toBeDefined();
      try {
        // Live, its job locked for longer than the bound: judged by its heartbeat, and left running.
        await waitFor("the export's job to be locked for longer than the bound", async () => (await lockedFor()) > STALE_SECONDS + 0.5, { intervalMs: 100 });
        expect((await record(id)).status, "the export ended before its job had been locked for the bound: slow it further").toBe("running");
        await sweep();
        expect(given).toEqual([]);
        expect((await record(id)).status).toBe("running");
        expect(lines.at(-1)).toBe(`export sweep: 1 tenant(s) with an export job locked over ${STALE_SECONDS} s; 0 export(s) given up, 0 tenant(s) to retry`);

        // Its worker dies. Nobody polls: the sweep gives it up once the heartbeat is stale, with the reason the tenant reads.
        victim.child.kill("SIGKILL");
        await victim.exited;
        const beat = new Date((await record(id)).heartbeat_at as Date).getTime();
        await new Promise((r) => setTimeout(r, Math.max(0, beat + STALE_SECONDS * 1000 + 300 - Date.now())));
        await sweep();
        expect(given).toEqual(["stale"]);
        const failed = await record(id);
        expect(failed.status).toBe("failed");
        expect(failed.error).toMatch(new RegExp(`^given up: no progress since \\S+, more than ${STALE_SECONDS} s \\(its worker stopped\\); request a new export$`));
        const audit = await stack.admin.query("SELECT actor, request_id FROM platform.audit_log WHERE tenant_id = $1 AND action = 'export.given_up' AND entity_id = $2", [l.id, id]);
        expect(audit.rows).toEqual([{ actor: "worker", request_id: "sweep" }]);
        // The dead job lost its key and its remaining attempts: the next sweep does not judge it again, nor does any
        // worker run it once graphile-worker releases it.
        const job = await stack.admin.query("SELECT key, attempts, max_attempts FROM graphile_worker.jobs WHERE id = $1", [jobId]);
        expect(job.rows).toHaveLength(1);
        expect(job.rows[0]).toMatchObject({ key: null, attempts: job.rows[0].max_attempts });
        await sweep();
        expect(given).toEqual(["stale"]);
        expect(lines.at(-1)).toContain("export sweep: 0 tenant(s)");
      } finally {
        await sweepDb.close();
        worker = await startWorker();
      }
      // And the tenant exports again at once.
      const again = await exportOf(l);
      expect((await finished(l, again.json().id)).status).toBe("done");
    }, 120_000);

    it("an export queued whose job is gone from the queue is given up by the next request, which is accepted", async () => {
      const i = await createTenant(stack, "india", platform);
      const lost = (await stack.admin.query("INSERT INTO platform.exports (tenant_id, requested_by, store, expires_at) VALUES ($1, 'someone', 'local', now() + interval '1 day') RETURNING id", [i.id])).rows[0].id as string;
      const res = await stack.request({ method: "POST", url: `/v1/tenants/${i.id}/exports`, token: i.admin });
      expect(res.statusCode, res.body).toBe(202);
      expect(await record(lost)).toMatchObject({ status: "failed", error: "given up: its job was no longer in the queue; request a new export" });
      expect((await finished(i, res.json().id)).status).toBe("done");
    });

    it("a poll sees a dead worker's export failed once its heartbeat is stale, with no new request; a live one, and a finished one, are left as they are", async () => {
      const k = await createTenant(stack, "kilo", platform);
      const insert = async (status: string, silentSeconds: number) =>
        (await stack.admin.query(
          `INSERT INTO platform.exports (tenant_id, requested_by, store, status, started_at, heartbeat_at, expires_at)
           VALUES ($1, 'someone', 'local', $2, now() - make_interval(secs => $3), now() - make_interval(secs => $3), now() + interval '1 day') RETURNING id`,
          [k.id, status, silentSeconds],
        )).rows[0].id as string;
      const poll = async (id: string) => (await stack.request({ method: "GET", url: `/v1/tenants/${k.id}/exports/${id}`, token: k.admin })).json();

      // Its worker beat a second ago: running, by a poll and by the list.
      const live = await insert("running", 1);
      expect(await poll(live)).toMatchObject({ id: live, status: "running", error: null });
      // Silent past the bound: a poll reports it failed, says why, and the tenant may ask again at once.
      await stack.admin.query("UPDATE platform.exports SET heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1", [live, STALE_SECONDS + 1]);
      const polled = await poll(live);
      expect(polled).toMatchObject({ id: live, status: "failed" });
      expect(polled.error).toMatch(new RegExp(`^given up: no progress since \\S+, more than ${STALE_SECONDS} s \\(its worker stopped\\); request a new export$`));
      const audit = await stack.admin.query("SELECT actor FROM platform.audit_log WHERE tenant_id = $1 AND action = 'export.given_up' AND entity_id = $2", [k.id, live]);
      expect(audit.rows).toEqual([{ actor: "kilo-admin" }]);
      // Counted for the ExportsGivenUp alert, once; polling the failed export again counts nothing more.
      const givenUp = async () => Number(/^exports_given_up_total\{reason="stale"\} (\d+)$/m.exec((await stack.request({ method: "GET", url: "/metrics" })).body)?.[1] ?? 0);
      const counted = await givenUp();
      expect(counted).toBeGreaterThanOrEqual(1);
      expect(await poll(live)).toMatchObject({ status: "failed" });
      expect(await givenUp()).toBe(counted);
      // The list gives up what it finds stale too, and a finished export is never touched.
      const old = await insert("running", STALE_SECONDS + 1);
      const listed = (await stack.request({ method: "GET", url: `/v1/tenants/${k.id}/exports`, token: k.admin })).json();
      expect(listed.data.find((e: { id: string }) => e.id === old)).toMatchObject({ status: "failed" });
      expect(await givenUp()).toBe(counted + 1);
      await stack.admin.query("UPDATE platform.exports SET status = 'done', finished_at = now() WHERE id = $1", [old]);
      await stack.admin.query("UPDATE platform.exports SET heartbeat_at = now() - interval '1 day' WHERE id = $1", [old]);
      expect(await poll(old)).toMatchObject({ status: "done" });
      const res = await stack.request({ method: "POST", url: `/v1/tenants/${k.id}/exports`, token: k.admin });
      expect(res.statusCode, res.body).toBe(202);
      expect((await finished(k, res.json().id)).status).toBe("done");
    });

    it(`never gives up a live export, however long it runs: one slowed past ${STALE_SECONDS} s keeps the next request refused (409) until it is done`, async () => {
      const j = await createTenant(stack, "juliett", platform);
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 1500) g`, [j.id, j.userId]);
      const id = (await stack.admin.query("INSERT INTO platform.exports (tenant_id, requested_by, store, expires_at) VALUES ($1, 'someone', 'local', now() + interval '1 day') RETURNING id", [j.id])).rows[0].id as string;
      const local = localExportStore(exportDir);
      const slow: ExportStore = {
        ...local,
        write: (key, body, contentType) =>
          local.write(key, Readable.from((async function* () {
            for await (const chunk of body) {
              await new Promise((r) => setTimeout(r, 30));
              yield chunk as Buffer;
            }
          })(), { objectMode: false }), contentType),
      };
      const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
      const started = Date.now();
      let ended = false;
      const running = Promise.resolve(
        exportTask({ db, store: slow, chunkRows: 10, retentionDays: 7, heartbeatMs: STALE_SECONDS * 100 })({ tenantId: j.id, exportId: id }, { logger: { info: () => {} }, job: { id: "live", attempts: 1, max_attempts: 5 } } as unknown as JobHelpers),
      ).finally(() => (ended = true));
      const answers: number[] = [];
      try {
        while ((await record(id)).status !== "running") await new Promise((r) => setTimeout(r, 10));
        while (!ended) {
          const res = await stack.request({ method: "POST", url: `/v1/tenants/${j.id}/exports`, token: j.admin });
          // Accepted only because the export had just finished: not a live one given up.
          if (res.statusCode === 202 && (await record(id)).status === "done") break;
          answers.push(res.statusCode);
          await new Promise((r) => setTimeout(r, 250));
        }
        await running;
      } finally {
        await running.catch(() => {});
        await db.close();
      }
      console.log(`a live export of ${Date.now() - started} ms: ${answers.length} requests meanwhile, answered ${[...new Set(answers)].join(", ")}`);
      expect(Date.now() - started).toBeGreaterThan(STALE_SECONDS * 1000 + 1_000);
      expect(answers.length).toBeGreaterThan(10);
      expect(new Set(answers)).toEqual(new Set([409]));
      expect((await record(id)).status).toBe("done");
    });
  });

  it("describes the list in /openapi.json, which Schemathesis runs from: both paths, limit and cursor, the page's schema", async () => {
    const doc = (await stack.request({ method: "GET", url: "/openapi.json" })).json();
    for (const path of ["/v1/tenants/{tenant}/exports", "/v1/exports"]) {
      const get = doc.paths[path]?.get;
      expect(get, path).toBeDefined();
      expect(get.parameters.filter((p: { in: string }) => p.in === "query").map((p: { name: string }) => p.name).sort()).toEqual(["cursor", "limit"]);
      expect(JSON.stringify(get.responses["200"])).toContain("ExportPage");
      expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(["400", "401", "403", "404"]));
    }
    expect(Object.keys(doc.components.schemas.ExportSummary.properties)).not.toContain("files");
  });

  it("erasing the tenant removes its export records and its files", async () => {
    const c = await createTenant(stack, "charlie", platform);
    const id = (await exportOf(c)).json().id;
    await finished(c, id);
    expect(readdirSync(join(exportDir, "tenants"))).toContain(c.id);
    expect((await stack.request({ method: "DELETE", url: `/v1/tenants/${c.id}`, token: platform })).statusCode).toBe(202);
    await waitFor(
      "the tenant's erasure",
      async () => (await stack.admin.query("SELECT 1 FROM platform.tenant_erasures WHERE tenant_id = $1 AND erased_at IS NOT NULL", [c.id])).rows.length > 0,
      { timeoutMs: 60_000, intervalMs: 200, detail: () => `\n${worker.stdout.slice(-20).join("\n")}` },
    );
    // The objects go after the rows, in the same job run.
    await waitFor("the erased tenant's export files to go", () => !readdirSync(join(exportDir, "tenants")).includes(c.id), { timeoutMs: 30_000, intervalMs: 100 });
    expect((await stack.admin.query("SELECT count(*)::int AS n FROM platform.exports WHERE tenant_id = $1", [c.id])).rows[0].n).toBe(0);
    expect(readdirSync(join(exportDir, "tenants"))).toContain(a.id);
  });
});
