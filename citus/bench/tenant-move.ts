/**
 * `pnpm bench:tenant-move`: BENCH_TENANTS tenants (default 100, BENCH_ITEMS items each) moved from a home PostgreSQL
 * 15 into a target in waves of BENCH_CONCURRENCY, with writers routing every tenant's transactions as the service does
 * (enter_tenant first, PT001 -> read the placement again) throughout. Prints the copy rate, the catch-up (changes
 * applied after the copy, and the slot's lag when the stream closed), the cutover windows (p50/p99/max, from the fence
 * on the old side to the new side unfenced) and the lost writes (acknowledged but missing where the tenant now lives:
 * must be 0). The target is a second PostgreSQL 15 started here, or with CITUS_URL (and TENANTCTL_CITUS=1) the Citus
 * cluster there (its platform schema is reset, as the test suites do).
 *
 *   pnpm bench:tenant-move
 *   BENCH_TENANTS=200 BENCH_ITEMS=2000 BENCH_CONCURRENCY=8 pnpm bench:tenant-move
 *   TENANTCTL_CITUS=1 CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform pnpm bench:tenant-move
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../src/tenantctl/run.js";
import { TARGET, lostWrites, seedTenants, startPair, startRouterWriters, tenantctl } from "../test/tenantctl-harness.js";

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${name} must be a whole number >= 1 (got "${process.env[name]}")`);
    process.exit(2);
  }
  return v;
};
const TENANTS = num("BENCH_TENANTS", 100);
const ITEMS = num("BENCH_ITEMS", 200);
const CONCURRENCY = num("BENCH_CONCURRENCY", 8);
const citusUrl = process.env.TENANTCTL_CITUS === "1" ? process.env.CITUS_URL : undefined;

const pair = await startPair(citusUrl ? { citusUrl } : {});
try {
  console.log(`home: PostgreSQL 15; target: ${citusUrl ? "Citus (CITUS_URL)" : "a second PostgreSQL 15"}; ${TENANTS} tenants x ${ITEMS} items (+ as many audit rows), waves of ${CONCURRENCY}`);
  const seeded = performance.now();
  const tenants = await seedTenants(pair.home, TENANTS, ITEMS, "test-bench");
  console.log(`seeded in ${Math.round(performance.now() - seeded)} ms`);
  const batch = join(tmpdir(), `bench-tenant-move-${process.pid}.txt`);
  writeFileSync(batch, tenants.map((t) => t.code).join("\n"));
  const writers = startRouterWriters(pair, tenants, { loops: 8, pauseMs: 5 });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const started = performance.now();
  const run = await tenantctl(pair.env, ["move", "--batch", batch, "--to", TARGET, "--concurrency", String(CONCURRENCY)], { timeoutMs: 3_600_000 }).done;
  const wallMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  // The way back for one tenant, with the writers still on: the reverse stream from PostgreSQL, a re-copy from Citus.
  const back = run.code === 0 ? await tenantctl(pair.env, ["reverse", tenants[0]!.code]).done : undefined;
  const model = await writers.stop();
  if (run.code !== 0) {
    console.error(run.out);
    throw new Error(`tenantctl move exited ${run.code}`);
  }
  const copies = [...run.out.matchAll(/copied (\d+) rows in (\d+) ms/g)].map((m) => ({ rows: Number(m[1]), ms: Number(m[2]) }));
  const catchUp = [...run.out.matchAll(/caught up \((\d+) changes applied, (\d+) bytes behind\)/g)].map((m) => ({ changes: Number(m[1]), lag: Number(m[2]) }));
  const windows = [...run.out.matchAll(/cutover window (\d+) ms/g)].map((m) => Number(m[1]));
  const lost = await lostWrites(pair, model);
  const rows = copies.reduce((n, c) => n + c.rows, 0);
  console.log(`moved ${windows.length}/${TENANTS} tenants in ${(wallMs / 1000).toFixed(1)} s (${((TENANTS * 1000) / wallMs).toFixed(2)} tenants/s)`);
  console.log(`copy: ${rows} rows; per tenant copy ${Math.round(percentile(copies.map((c) => (c.rows * 1000) / Math.max(c.ms, 1)), 50))} rows/s (p50), all copies together ${Math.round((rows * 1000) / wallMs)} rows/s of wall time`);
  console.log(`catch-up after the copy: p50 ${percentile(catchUp.map((c) => c.changes), 50)} changes, max ${Math.max(...catchUp.map((c) => c.changes))}; slot lag when the stream closed p50 ${percentile(catchUp.map((c) => c.lag), 50)} B, max ${Math.max(...catchUp.map((c) => c.lag))} B`);
  console.log(`cutover windows: p50 ${percentile(windows, 50)} ms, p99 ${percentile(windows, 99)} ms, max ${Math.max(...windows)} ms (target < 2000 ms)`);
  console.log(`reverse of one tenant (${ITEMS * 2 + 2} rows, ${citusUrl ? "a re-copy under a fence" : "the reverse stream"}): ${back?.code === 0 ? `window ${back.out.match(/cutover window (\d+) ms/)?.[1]} ms` : `FAILED (exit ${back?.code}): ${back?.out.trim().split("\n").at(-1)}`}`);
  console.log(`writes: ${model.acknowledged} acknowledged, ${model.fencedRetries} retried after PT001, longest wait on a fence ${model.longestFencedWaitMs} ms, failed ${JSON.stringify(model.failed)}`);
  console.log(`lost writes: ${lost.length}`);
  for (const problem of lost.slice(0, 20)) console.log(`  ${problem}`);
  if (lost.length > 0) process.exitCode = 1;
} finally {
  await pair.stop();
}
