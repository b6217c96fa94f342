/**
 * `pnpm bench:tenant-scale-db`: the database's own share of what `bench:tenant-scale` measures. The service's point
 * read as one transaction, run by pgbench with 8 clients against a PostgreSQL 15 of 20 tenants and one of 1,000,000,
 * tenants drawn uniformly, every database and script alternating round by round. No service, no HTTP: what is left
 * when the service is taken away.
 *
 * Each count runs two scripts:
 * - "entered": the statements the service sends (db/database.ts). At 20 tenants every tenant's row is in the
 *   service's cache, so it enters with platform.enter_tenant; at 1,000,000 drawn uniformly nearly none is, so it
 *   enters and reads the row in one statement, platform.enter_tenant_row (migration 0017).
 * - "SET LOCAL": the same work with the tenant set by set_config alone (and at 1,000,000 the row read by a statement
 *   of its own), as before migration 0012: no cutover lock, no fence read. The ratio between the two is what entering
 *   a tenant costs the database, the price of online tenant moves.
 *
 * On the 2-core build machine the database shares the cores with the service, so a database that does more per
 * request at 1M tenants (deeper indexes, rows spread over more pages) lowers the service's throughput too. This
 * separates that from the service's own cost.
 *
 *   BENCH_ROUNDS=3 BENCH_DURATION=8 pnpm bench:tenant-scale-db
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { positiveInteger } from "./env.js";
import { median, seedTenants, startBenchDatabase, warmCache, targets, type BenchDatabase } from "./fixture.js";

const ROUNDS = positiveInteger("BENCH_ROUNDS", 3);
const DURATION = positiveInteger("BENCH_DURATION", 8);
const PGBENCH = "/usr/lib/postgresql/15/bin/pgbench";
const COUNTS = [20, 1_000_000];
const DRAWS = 50_000;

const ROW = "SELECT id, code, name, status, plan, max_users, max_storage_gb, features, created_at, updated_at FROM platform.tenants WHERE id = :t::uuid;";
type Entry = "entered" | "SET LOCAL";
const ENTRIES: readonly Entry[] = ["entered", "SET LOCAL"];

/** pgbench's script: a random drawn (tenant, item), then the point read's transaction (see the header). */
function script(n: number, entry: Entry): string {
  const cached = n === COUNTS[0];
  const opening =
    entry === "entered"
      ? [cached ? "SELECT platform.enter_tenant(:t::uuid);" : "SELECT * FROM platform.enter_tenant_row(:t::uuid);"]
      : ["SELECT set_config('app.tenant_id', :t, true);", ...(cached ? [] : [ROW])];
  return [
    `\\set k random(1, ${DRAWS})`,
    "SELECT tenant AS t, item AS i FROM public.bench_targets WHERE k = :k \\gset",
    "BEGIN;",
    ...opening,
    "SELECT * FROM platform.items WHERE tenant_id = :t::uuid AND id = :i::uuid;",
    "COMMIT;",
    "",
  ].join("\n");
}

const dir = mkdtempSync(join(tmpdir(), "bench-scale-db-"));
const databases: { n: number; database: BenchDatabase; tps: Record<Entry, number[]> }[] = [];
try {
  for (const n of COUNTS) {
    const database = await startBenchDatabase();
    await seedTenants(database.admin, n);
    await warmCache(database.admin);
    const drawn = await targets(database.admin, Array.from({ length: DRAWS }, () => 1 + Math.floor(Math.random() * n)));
    await database.admin.query("CREATE TABLE public.bench_targets (k int PRIMARY KEY, tenant uuid, item uuid)");
    await database.admin.query("INSERT INTO public.bench_targets SELECT k, t, i FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS x(t, i, k)", [
      drawn.map((t) => t.tenant),
      drawn.map((t) => t.item),
    ]);
    await database.admin.query("GRANT SELECT ON public.bench_targets TO platform_app");
    databases.push({ n, database, tps: { entered: [], "SET LOCAL": [] } });
  }
  const file = (n: number, entry: Entry) => join(dir, `point-read-${n}-${entry === "entered" ? "entered" : "set-local"}.sql`);
  for (const { n } of databases) for (const entry of ENTRIES) writeFileSync(file(n, entry), script(n, entry));
  const pgbench = (url: string, scriptFile: string, seconds: number) => {
    const out = execFileSync(PGBENCH, ["-n", "-M", "extended", "-c", "8", "-j", "1", "-T", String(seconds), "-f", scriptFile, url], { encoding: "utf8" });
    const tps = /tps = ([\d.]+)/.exec(out)?.[1];
    if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
    return Number(tps);
  };
  const url = (d: BenchDatabase) => d.server.urlFor("platform_app", "app");
  for (const { n, database } of databases) for (const entry of ENTRIES) pgbench(url(database), file(n, entry), 2); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const d of databases) for (const entry of ENTRIES) d.tps[entry].push(pgbench(url(d.database), file(d.n, entry), DURATION));
  }
  console.log(`the database alone: the service's point read as one transaction, pgbench -c 8, ${ROUNDS} alternating rounds of ${DURATION} s, tenants drawn uniformly`);
  const base = median(databases[0]!.tps.entered);
  for (const { n, tps } of databases) {
    for (const entry of ENTRIES) {
      const m = median(tps[entry]);
      const versus = [
        ...(n === COUNTS[0] || entry !== "entered" ? [] : [`vs ${COUNTS[0]}: ${(m / base).toFixed(2)}x`]),
        ...(entry === "entered" ? [`vs SET LOCAL: ${(m / median(tps["SET LOCAL"])).toFixed(2)}x`] : []),
      ];
      console.log(`${n.toLocaleString("en").padStart(9)}  ${entry.padEnd(9)}  ${m.toFixed(0).padStart(6)} transactions/s (rounds: ${tps[entry].map((t) => t.toFixed(0)).join(", ")})  ${versus.join(", ")}`);
    }
  }
} finally {
  for (const { database } of databases) await database.close();
  rmSync(dir, { recursive: true, force: true });
}
