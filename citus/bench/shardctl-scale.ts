/**
 * `pnpm bench:shardctl-scale`: `shardctl status` and `shardctl plan` against a live Citus cluster (CITUS_URL) whose
 * platform schema holds 1,000,000 tenants (one user and one item each: the catalogs and statistics shardctl reads
 * grow with the tenant count, the rows per tenant matter little). Each command runs as SREs run it, a process of its
 * own, three times; the median is printed. Target (issue 22): under 2 s each.
 *
 *   CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform BENCH_TENANTS=1000000 pnpm bench:shardctl-scale
 *
 * It takes the test suites' lock and replaces the platform schema, as they do (src/testing.ts), and refuses a
 * database with tenants that are not test tenants. Seeding 1M tenants takes minutes on two cores.
 */
import pg from "pg";
import { prepareCitusDatabase, runShardctl } from "../src/testing.js";

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) {
  console.error("CITUS_URL is not set: point it at a Citus coordinator with two or more workers (citus/README.md)");
  process.exit(2);
}
const TENANTS = Number(process.env.BENCH_TENANTS ?? 1_000_000);
if (!Number.isInteger(TENANTS) || TENANTS < 1) {
  console.error(`BENCH_TENANTS must be a positive integer (got "${process.env.BENCH_TENANTS}")`);
  process.exit(2);
}
const RUNS = 3;

const database = await prepareCitusDatabase(CITUS_URL);
const admin = new pg.Client({ connectionString: CITUS_URL });
await admin.connect();
try {
  const started = Date.now();
  const batch = 200_000;
  for (let lo = 1; lo <= TENANTS; lo += batch) {
    const hi = Math.min(TENANTS, lo + batch - 1);
    // Test tenants (code test-...), so the suites may drop them; ids made here so users and items can follow.
    await admin.query(
      "INSERT INTO platform.tenants (id, code, name) SELECT md5('scale-' || i)::uuid, 'test-scale-' || i, 'Scale ' || i FROM generate_series($1::int, $2::int) i",
      [lo, hi],
    );
    await admin.query(
      "INSERT INTO platform.users (tenant_id, id, email) SELECT md5('scale-' || i)::uuid, md5('user-' || i)::uuid, 'owner@scale-' || i || '.test' FROM generate_series($1::int, $2::int) i",
      [lo, hi],
    );
    await admin.query(
      "INSERT INTO platform.items (tenant_id, owner_id, title, body) SELECT md5('scale-' || i)::uuid, md5('user-' || i)::uuid, 'item', 'a small item body' FROM generate_series($1::int, $2::int) i",
      [lo, hi],
    );
  }
  await admin.query("ANALYZE platform.tenants");
  await admin.query("ANALYZE platform.users");
  await admin.query("ANALYZE platform.items");
  console.log(`seeded ${TENANTS.toLocaleString("en")} tenants (a user and an item each) in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  // The floor: the same process started and ended without a query (node, tsx, the CLI's modules).
  const floor: number[] = [];
  for (let i = 0; i < RUNS; i++) floor.push((await runShardctl(CITUS_URL, ["--help"], 60_000)).ms);
  console.log(`shardctl --help (process start, no query): median ${median(floor).toFixed(0)} ms`);
  let ok = true;
  for (const args of [["status"], ["plan"]]) {
    const times: number[] = [];
    let last = "";
    for (let i = 0; i < RUNS; i++) {
      const run = await runShardctl(CITUS_URL, args, 120_000);
      if (run.code !== 0) throw new Error(`shardctl ${args.join(" ")} exited ${run.code}:\n${run.out}`);
      times.push(run.ms);
      last = run.out;
    }
    const m = median(times);
    if (m >= 2000) ok = false;
    console.log(`shardctl ${args.join(" ").padEnd(6)} at ${TENANTS.toLocaleString("en")} tenants: median ${m.toFixed(0)} ms of ${RUNS} (${times.map((t) => t.toFixed(0)).join(", ")} ms), process start included  (target < 2000 ms)`);
    if (process.env.BENCH_VERBOSE) console.log(last);
  }
  console.log(ok ? "within target" : "ABOVE TARGET");
  process.exitCode = ok ? 0 : 1;
} finally {
  await admin.end();
  await database.release();
}
