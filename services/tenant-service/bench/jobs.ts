/**
 * `pnpm bench:worker-jobs`: the worker's daily jobs at a million tenants (issue 22), with the service writing.
 *
 * A real PostgreSQL 15 seeded with BENCH_TENANTS tenants (an owner, two items and an audit entry of yesterday each)
 * and two audit-log partitions past retention (BENCH_OLD_AUDIT_ROWS rows each). The service and the worker run in
 * processes of their own; BENCH_WRITERS clients insert items for random tenants through the service the whole time.
 *
 * 1. Baseline: the writers alone, BENCH_BASELINE seconds.
 * 2. audit.retention: its duration, and the writes' p50/p99 while it runs.
 * 3. metrics.rollup for yesterday over every tenant: its duration and the writes' p50/p99 while it runs. When a
 *    third of the tenants are done the worker is killed (SIGKILL), a new one started, and the dead worker's jobs
 *    released as the runbook says; the run checks that no tenant finished before the kill was computed again and
 *    that every tenant ends with one final row.
 *
 *   BENCH_TENANTS=1000000 pnpm bench:worker-jobs
 */
import { makeWorkerUtils } from "graphile-worker";
import { waitFor } from "@platform/testing";
import { token } from "../test/harness.js";
import { positiveInteger } from "./env.js";
import { quantile, seedTenants, startBenchDatabase, startServiceProcess, startWorkerProcess, targets, type Process } from "./fixture.js";

const TENANTS = positiveInteger("BENCH_TENANTS", 1_000_000);
const WRITERS = positiveInteger("BENCH_WRITERS", 8);
const BASELINE = positiveInteger("BENCH_BASELINE", 15);
const OLD_AUDIT_ROWS = positiveInteger("BENCH_OLD_AUDIT_ROWS", 500_000);
/** The whole run stops by itself: no job may take longer than this. */
const JOB_LIMIT_S = positiveInteger("BENCH_JOB_LIMIT", 3_600);

const { server, admin, close } = await startBenchDatabase({ queue: true });
const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
await seedTenants(admin, TENANTS);
{
  const started = Date.now();
  await admin.query(
    "INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id, occurred_at) SELECT id, 'seed', 'item.create', 'item', id, $1::date + interval '12 hours' FROM platform.tenants",
    [day],
  );
  for (const monthsAgo of [30, 29]) {
    const from = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - monthsAgo, 1));
    const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
    const name = `audit_log_${from.getUTCFullYear()}_${String(from.getUTCMonth() + 1).padStart(2, "0")}`;
    await admin.query(`CREATE TABLE platform.${name} PARTITION OF platform.audit_log FOR VALUES FROM ('${from.toISOString().slice(0, 10)}') TO ('${to.toISOString().slice(0, 10)}')`);
    await admin.query(
      `INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id, occurred_at)
       SELECT t.id, 'seed', 'item.update', 'item', t.id, $1::date + interval '1 day'
         FROM (SELECT id FROM platform.tenants LIMIT $2) t, generate_series(1, greatest(1, $2 / (SELECT count(*) FROM platform.tenants)::int))`,
      [from.toISOString().slice(0, 10), OLD_AUDIT_ROWS],
    );
  }
  await admin.query("VACUUM ANALYZE platform.audit_log");
  console.log(`audit log seeded (one entry of ${day} per tenant, two old partitions) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const service = await startServiceProcess(server);
const workerEnv = { WORKER_CONCURRENCY: "4" };
let worker: Process = await startWorkerProcess(server, workerEnv);
const utils = await makeWorkerUtils({ connectionString: server.url });

// The writers: inserts through the service for random tenants, each latency stamped with when it ended.
const authorization = `Bearer ${await token({ scope: "platform:admin", sub: "bench-jobs" })}`;
const pool = await targets(admin, Array.from({ length: 20_000 }, () => 1 + Math.floor(Math.random() * TENANTS)));
const latencies: { at: number; ms: number }[] = [];
/** Failed writes by status (or "no answer"), so a failure says what it was. */
const failures = new Map<string, number>();
let writing = true;
const writers = Array.from({ length: WRITERS }, async () => {
  while (writing) {
    const t = pool[Math.floor(Math.random() * pool.length)]!;
    const started = performance.now();
    const response = await fetch(`${service.url}/v1/tenants/${t.tenant}/items`, {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body: JSON.stringify({ ownerId: t.owner, title: "bench" }),
    }).catch(() => undefined);
    if (response) await response.arrayBuffer();
    if (response?.status !== 201) {
      const status = response ? String(response.status) : "no answer";
      failures.set(status, (failures.get(status) ?? 0) + 1);
    }
    latencies.push({ at: Date.now(), ms: performance.now() - started });
  }
});

const writesBetween = (from: number, to: number) => {
  const ms = latencies.filter((l) => l.at >= from && l.at <= to).map((l) => l.ms);
  return ms.length === 0 ? "no writes" : `${ms.length.toLocaleString("en")} writes, p50 ${quantile(ms, 0.5).toFixed(1)} ms, p99 ${quantile(ms, 0.99).toFixed(1)} ms, max ${quantile(ms, 1).toFixed(0)} ms`;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const until = (what: string, done: () => Promise<boolean>) =>
  waitFor(`${what} to finish (BENCH_JOB_LIMIT=${JOB_LIMIT_S} s)`, done, { timeoutMs: JOB_LIMIT_S * 1000, intervalMs: 500 });
const queued = async (task: string) =>
  Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier LIKE $1", [`${task}%`])).rows[0]!.n);
const finalRows = async () =>
  Number(
    (await admin.query<{ n: string }>("SELECT count(*) AS n FROM platform.tenant_metrics WHERE day = $1 AND computed_at >= ($1::date + 1)::timestamp AT TIME ZONE 'UTC'", [day]))
      .rows[0]!.n,
  );

let ok = true;
try {
  console.log(`worker jobs at ${TENANTS.toLocaleString("en")} tenants, PostgreSQL 15 on loopback, service and worker (concurrency ${workerEnv.WORKER_CONCURRENCY}) in their own processes, ${WRITERS} writers`);
  const baselineFrom = Date.now();
  await sleep(BASELINE * 1000);
  console.log(`baseline (writers alone, ${BASELINE} s): ${writesBetween(baselineFrom, Date.now())}`);

  const retentionFrom = Date.now();
  await utils.addJob("audit.retention", {});
  await until("audit.retention", async () => (await queued("audit.retention")) === 0);
  const retentionTo = Date.now();
  const old = Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'platform.audit_log'::regclass AND inhrelid::regclass::text ~ '_20[0-9]{2}_[0-9]{2}$' AND inhrelid::regclass::text < 'platform.audit_log_' || to_char(now() - interval '13 months', 'YYYY_MM')")).rows[0]!.n);
  console.log(`audit.retention: ${((retentionTo - retentionFrom) / 1000).toFixed(1)} s, ${old} partition(s) past retention left; writes meanwhile: ${writesBetween(retentionFrom, retentionTo)}`);
  if (old !== 0) ok = false;

  const rollupFrom = Date.now();
  await utils.addJob("metrics.rollup", { day });
  await until("a third of the rollup", async () => (await finalRows()) >= TENANTS / 3);
  worker.child.kill("SIGKILL");
  await new Promise((resolve) => worker.child.once("exit", resolve));
  const killedAt = Date.now();
  const dead = (await admin.query<{ id: string }>("SELECT DISTINCT locked_by AS id FROM graphile_worker.jobs WHERE locked_by IS NOT NULL")).rows.map((r) => r.id);
  await admin.query("CREATE TABLE bench_done AS SELECT tenant_id, computed_at FROM platform.tenant_metrics WHERE day = $1 AND computed_at >= ($1::date + 1)::timestamp AT TIME ZONE 'UTC'", [day]);
  const doneAtKill = await finalRows();
  console.log(`worker killed after ${((killedAt - rollupFrom) / 1000).toFixed(1)} s with ${doneAtKill.toLocaleString("en")} tenants final; its ${dead.length} worker id(s) held jobs`);
  worker = await startWorkerProcess(server, workerEnv);
  // What the runbook has an operator do after a crash (graphile-worker would release them itself after 4 hours).
  await utils.forceUnlockWorkers(dead);
  await until("the rollup", async () => (await finalRows()) >= TENANTS && (await queued("metrics.rollup")) === 0);
  const rollupTo = Date.now();
  const redone = Number(
    (await admin.query<{ n: string }>("SELECT count(*) AS n FROM bench_done d JOIN platform.tenant_metrics m ON m.tenant_id = d.tenant_id AND m.day = $1 WHERE m.computed_at <> d.computed_at", [day])).rows[0]!.n,
  );
  const rows = Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM platform.tenant_metrics WHERE day = $1", [day])).rows[0]!.n);
  const seconds = (rollupTo - rollupFrom) / 1000;
  console.log(`metrics.rollup: ${seconds.toFixed(0)} s for ${TENANTS.toLocaleString("en")} tenants (${(TENANTS / seconds).toFixed(0)} tenants/s, kill and restart included); writes meanwhile: ${writesBetween(rollupFrom, rollupTo)}`);
  console.log(`after the crash: ${redone} of ${doneAtKill.toLocaleString("en")} finished tenants computed again (must be 0); ${rows.toLocaleString("en")} rows for ${day} (must be ${TENANTS.toLocaleString("en")})`);
  if (redone !== 0 || rows !== TENANTS) ok = false;
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  console.log(`failed writes over the whole run: ${failed} (must be 0)${failed ? `: ${[...failures].map(([status, n]) => `${n} answered ${status}`).join(", ")}` : ""}`);
  if (failed !== 0) ok = false;
} finally {
  writing = false;
  await Promise.all(writers);
  await worker.stop();
  await service.stop();
  await utils.release();
  await close();
}
console.log(ok ? "every check passed" : "A CHECK FAILED: see above");
process.exitCode = ok ? 0 : 1;
