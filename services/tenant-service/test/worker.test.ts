import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "graphile-worker";
import pg from "pg";
import { waitFor } from "@platform/testing";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { createWorkerMetrics } from "../src/metrics.js";
import { instrumentTasks } from "../src/worker/instrument.js";
import { installQueue } from "../src/worker/queue.js";
import { createTaskList } from "../src/worker/tasks.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

if (unavailable) console.warn(`skipping worker tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("queue worker on PostgreSQL 15", () => {
  let stack: Stack;
  let appPool: pg.Pool;
  let db: ReturnType<typeof createPostgresDatabase>;
  let tenants: TenantFixture[];
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  const jobs = async () => (await stack.admin.query("SELECT task_identifier AS task, key, attempts, last_error FROM graphile_worker.jobs ORDER BY id")).rows;
  const work = (now?: Date) =>
    runOnce({ pgPool: appPool, taskList: createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 2, now: now ? () => now : undefined }) });

  beforeAll(async () => {
    process.on("warning", onWarning);
    stack = await startStack();
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    appPool = new pg.Pool({ connectionString: stack.config.DATABASE_URL, max: 4 });
    db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 4 });
    const platform = await token({ scope: "platform:admin" });
    tenants = [];
    for (const code of ["one", "two", "three"]) tenants.push(await createTenant(stack, code, platform));
  }, 120_000);
  afterAll(async () => {
    process.off("warning", onWarning);
    await appPool?.end();
    await db?.close();
    await stack?.close();
  });

  it("installs the queue again as a no-op, and says what to do when the queue role is missing", async () => {
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    await expect(installQueue(stack.pg.urlFor("platform_migrator", "migrator"), "no_such_queue_role")).rejects.toThrow(
      /cannot act as no_such_queue_role: create it \(CREATE ROLE no_such_queue_role NOLOGIN\)/,
    );
    await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
    // The role's SETs are awaited before the pool hands the client out, not queued under its first query (which pg
    // deprecates, and warns of once a process: hence the listener from before the first install in beforeAll).
    expect(warnings.filter((w) => /already executing a query/.test(w))).toEqual([]);
  });

  it("enqueues provisioning in the tenant's own transaction, once per tenant", async () => {
    const queued = await jobs();
    expect(queued.map((j) => j.task)).toEqual(["tenant.provision", "tenant.provision", "tenant.provision"]);
    expect(queued.map((j) => j.key).sort()).toEqual(tenants.map((t) => `tenant.provision:${t.id}`).sort());
  });

  it("provisions idempotently, as the service role under row-level security", async () => {
    await work();
    expect(await jobs()).toEqual([]);
    const provisioned = await stack.admin.query("SELECT tenant_id, count(*)::int AS n FROM platform.audit_log WHERE action = 'tenant.provisioned' GROUP BY 1");
    expect(provisioned.rows.length).toBe(3);
    // Running the same job again changes nothing.
    await stack.admin.query("SELECT graphile_worker.add_job('tenant.provision', json_build_object('tenantId', $1::text))", [tenants[0]!.id]);
    await work();
    const again = await stack.admin.query("SELECT count(*)::int AS n FROM platform.audit_log WHERE action = 'tenant.provisioned' AND tenant_id = $1", [tenants[0]!.id]);
    expect(again.rows[0].n).toBe(1);
  });

  it("rolls metrics up per tenant in batch jobs, and a rerun converges to the same rows", async () => {
    const today = new Date().toISOString().slice(0, 10);
    await stack.admin.query("SELECT graphile_worker.add_job('metrics.rollup', json_build_object('day', $1::text))", [today]);
    await work();
    const rows = async () => (await stack.admin.query("SELECT tenant_id, users, items, storage_bytes::int AS storage, writes FROM platform.tenant_metrics WHERE day = $1 ORDER BY tenant_id", [today])).rows;
    const first = await rows();
    expect(first.length).toBe(3);
    for (const r of first) expect(r).toMatchObject({ users: 1, items: 1, writes: 4 }); // tenant, user, item create + provisioned
    await stack.admin.query("SELECT graphile_worker.add_job('metrics.rollup', json_build_object('day', $1::text))", [today]);
    await work();
    expect(await rows()).toEqual(first);
  });

  it("two workers draining the queue at once run each job exactly once", async () => {
    for (const t of tenants) await stack.admin.query("SELECT graphile_worker.add_job('metrics.rollup-batch', json_build_object('day', '2026-01-01', 'tenantIds', json_build_array($1::text)))", [t.id]);
    const counts = await Promise.all([work(), work()]);
    expect(counts.length).toBe(2);
    expect(await jobs()).toEqual([]);
    const rows = await stack.admin.query("SELECT count(*)::int AS n FROM platform.tenant_metrics WHERE day = '2026-01-01'");
    expect(rows.rows[0].n).toBe(3);
  });

  it("counts every job by task and outcome in the service's metric conventions", async () => {
    const metrics = createWorkerMetrics();
    const taskList = instrumentTasks(createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 2 }), metrics);
    await stack.admin.query("SELECT graphile_worker.add_job('metrics.rollup-batch', json_build_object('day', '2026-01-02', 'tenantIds', json_build_array($1::text)))", [tenants[0]!.id]);
    // Not a date: the task's statement fails, the job is kept for a retry.
    await stack.admin.query("SELECT graphile_worker.add_job('metrics.rollup-batch', json_build_object('day', 'not-a-day', 'tenantIds', json_build_array($1::text)))", [tenants[0]!.id]);
    await runOnce({ pgPool: appPool, taskList });
    const exposition = await metrics.registry.metrics();
    expect(exposition).toMatch(/^worker_jobs_total\{task="metrics.rollup-batch",outcome="success"\} 1$/m);
    expect(exposition).toMatch(/^worker_jobs_total\{task="metrics.rollup-batch",outcome="failed"\} 1$/m);
    expect(exposition).toMatch(/^worker_job_duration_seconds_count\{task="metrics.rollup-batch",outcome="failed"\} 1$/m);
    expect(exposition).toMatch(/^process_resident_memory_bytes \d+/m);
    expect((await jobs()).map((j) => [j.task, j.attempts, Boolean(j.last_error)])).toEqual([["metrics.rollup-batch", 1, true]]);
    await stack.admin.query("DELETE FROM graphile_worker._private_jobs");
  });

  it("retention keeps partitions ahead and drops those past the retention window", async () => {
    const names = async () =>
      (await stack.admin.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'platform.audit_log'::regclass ORDER BY 1")).rows.map((r) => r.relname as string);
    const now = new Date();
    const month = (offset: number) => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
      return { name: `audit_log_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, "0")}`, from: d.toISOString().slice(0, 10), to: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 10) };
    };
    // Two partitions from long ago (past 13 months of retention), one just inside it.
    for (const offset of [-24, -20, -12]) {
      const m = month(offset);
      await stack.admin.query(`CREATE TABLE platform.${m.name} PARTITION OF platform.audit_log FOR VALUES FROM ('${m.from}') TO ('${m.to}')`);
    }
    await stack.admin.query("SELECT graphile_worker.add_job('audit.retention', '{}'::json)");
    await work();
    expect(await jobs()).toEqual([]);
    const after = await names();
    expect(after).not.toContain(month(-24).name);
    expect(after).not.toContain(month(-20).name);
    expect(after).toContain(month(-12).name);
    expect(after).toContain(month(0).name);
    expect(after).toContain(month(6).name);
  });

  it("a rollup batch retried after a crash skips the tenants already final, and redoes the ones that were not", async () => {
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const [done, open, fresh] = tenants as [TenantFixture, TenantFixture, TenantFixture];
    // "done" was finished before the crash (computed after the day ended); "open" was computed during the day.
    await stack.admin.query(
      `INSERT INTO platform.tenant_metrics (tenant_id, day, users, items, storage_bytes, writes, computed_at)
       VALUES ($1, $3, 999, 999, 999, 999, now()), ($2, $3, 999, 999, 999, 999, $3::date + interval '12 hours')
       ON CONFLICT (tenant_id, day) DO UPDATE SET users = 999, computed_at = EXCLUDED.computed_at`,
      [done.id, open.id, yesterday],
    );
    const before = (await stack.admin.query("SELECT computed_at FROM platform.tenant_metrics WHERE tenant_id = $1 AND day = $2", [done.id, yesterday])).rows[0].computed_at;
    await stack.admin.query("SELECT graphile_worker.add_job('metrics.rollup-batch', json_build_object('day', $1::text, 'tenantIds', json_build_array($2::text, $3::text, $4::text)))", [
      yesterday, done.id, open.id, fresh.id,
    ]);
    await work();
    expect(await jobs()).toEqual([]);
    const rows = new Map(
      (await stack.admin.query("SELECT tenant_id, users, computed_at FROM platform.tenant_metrics WHERE day = $1", [yesterday])).rows.map((r) => [r.tenant_id as string, r]),
    );
    expect(rows.get(done.id)).toMatchObject({ users: 999, computed_at: before });
    expect(rows.get(open.id)?.users, "a row computed before the day ended is recomputed").toBe(1);
    expect(rows.get(fresh.id)?.users).toBe(1);
  });

  it("retention gives its lock up while a long transaction writes the audit log, so the service's writes do not queue behind it", async () => {
    const now = new Date();
    const old = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 30, 1));
    const name = `audit_log_${old.getUTCFullYear()}_${String(old.getUTCMonth() + 1).padStart(2, "0")}`;
    const to = new Date(Date.UTC(old.getUTCFullYear(), old.getUTCMonth() + 1, 1));
    await stack.admin.query(`CREATE TABLE platform.${name} PARTITION OF platform.audit_log FOR VALUES FROM ('${old.toISOString().slice(0, 10)}') TO ('${to.toISOString().slice(0, 10)}')`);
    const record = (client: pg.Pool | pg.PoolClient) =>
      client.query("INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id) VALUES ($1, 'test', 'test.write', 'test', $1)", [tenants[0]!.id]);
    // A long transaction (an export, a slow request) that has written to the audit log and not yet committed.
    const long = await stack.admin.connect();
    // The service's writes, which would wait for as long as retention waits if it queued them (bounded here).
    const writer = new pg.Pool({ connectionString: stack.pg.url, max: 1, statement_timeout: 3_000 });
    const writes: number[] = [];
    let retention: Promise<void> | undefined;
    try {
      await long.query("BEGIN");
      await record(long);
      await stack.admin.query("SELECT graphile_worker.add_job('audit.retention', '{}'::json)");
      retention = runOnce({ pgPool: appPool, taskList: createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 2, retentionLockTimeoutMs: 200 }) });
      // Retention waiting for its lock on the audit log, seen in pg_locks rather than assumed after a pause: on a loaded
      // machine it might not have started yet, and the writes would then prove nothing.
      const waiting = async () =>
        (await stack.admin.query("SELECT 1 FROM pg_locks WHERE NOT granted AND relation IN ('platform.audit_log'::regclass, $1::regclass)", [`platform.${name}`])).rowCount! > 0;
      await waitFor("retention to wait for its lock behind the long transaction", waiting, { timeoutMs: 15_000, intervalMs: 20 });
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        await record(writer);
        writes.push(Date.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await long.query("COMMIT").catch(() => {});
      long.release();
      await writer.end();
    }
    await retention;
    await work(); // a retry, had the first run given up
    expect(await jobs()).toEqual([]);
    // Each write waits at most one of retention's 200 ms lock waits; one queued behind retention for as long as the
    // long transaction lasts would hit the writer's 3 s statement timeout instead.
    expect(Math.max(...writes), `writes took ${writes.join(", ")} ms`).toBeLessThan(2_000);
    const { rows } = await stack.admin.query("SELECT to_regclass($1) AS still", [`platform.${name}`]);
    expect(rows[0].still, "the old partition was dropped once the long transaction ended").toBeNull();
  });
});
