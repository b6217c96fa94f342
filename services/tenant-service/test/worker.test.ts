import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "graphile-worker";
import pg from "pg";
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
  const jobs = async () => (await stack.admin.query("SELECT task_identifier AS task, key, attempts, last_error FROM graphile_worker.jobs ORDER BY id")).rows;
  const work = (now?: Date) =>
    runOnce({ pgPool: appPool, taskList: createTaskList({ db, auditRetentionMonths: 13, rollupBatchSize: 2, now: now ? () => now : undefined }) });

  beforeAll(async () => {
    stack = await startStack();
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    appPool = new pg.Pool({ connectionString: stack.config.DATABASE_URL, max: 4 });
    db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 4 });
    const platform = await token({ scope: "platform:admin" });
    tenants = [];
    for (const code of ["one", "two", "three"]) tenants.push(await createTenant(stack, code, platform));
  }, 120_000);
  afterAll(async () => {
    await appPool?.end();
    await db?.close();
    await stack?.close();
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
});
