/**
 * `pnpm bench:tenant-scale-db`: the database's own share of what `bench:tenant-scale` measures. The service's point
 * read as one transaction (the tenant context, the tenant's row read in the transaction, the item), run by pgbench
 * with 8 clients against a PostgreSQL 15 of 20 tenants and one of 1,000,000, tenants drawn uniformly, the two
 * alternating round by round. No service, no HTTP: what is left when the service is taken away.
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

/** pgbench's script: a random drawn (tenant, item), then the point read's transaction as the service sends it. */
const SCRIPT = `\\set k random(1, ${DRAWS})
SELECT tenant AS t, item AS i FROM public.bench_targets WHERE k = :k \\gset
BEGIN;
SELECT set_config('app.tenant_id', :t, true);
SELECT id, code, name, status, plan, max_users, max_storage_gb, features, created_at, updated_at FROM platform.tenants WHERE id = :t::uuid;
SELECT * FROM platform.items WHERE tenant_id = :t::uuid AND id = :i::uuid;
COMMIT;
`;

const dir = mkdtempSync(join(tmpdir(), "bench-scale-db-"));
const databases: { n: number; database: BenchDatabase; tps: number[] }[] = [];
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
    databases.push({ n, database, tps: [] });
  }
  writeFileSync(join(dir, "point-read.sql"), SCRIPT);
  const pgbench = (url: string, seconds: number) => {
    const out = execFileSync(PGBENCH, ["-n", "-M", "extended", "-c", "8", "-j", "1", "-T", String(seconds), "-f", join(dir, "point-read.sql"), url], { encoding: "utf8" });
    const tps = /tps = ([\d.]+)/.exec(out)?.[1];
    if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
    return Number(tps);
  };
  for (const { database } of databases) pgbench(database.server.urlFor("platform_app", "app"), 2); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const d of databases) d.tps.push(pgbench(d.database.server.urlFor("platform_app", "app"), DURATION));
  }
  console.log(`the database alone: the service's point read as one transaction, pgbench -c 8, ${ROUNDS} alternating rounds of ${DURATION} s, tenants drawn uniformly`);
  const base = median(databases[0]!.tps);
  for (const { n, tps } of databases) {
    const m = median(tps);
    console.log(`${n.toLocaleString("en").padStart(9)}  ${m.toFixed(0).padStart(6)} transactions/s (rounds: ${tps.map((t) => t.toFixed(0)).join(", ")})${n === COUNTS[0] ? "" : `  vs ${COUNTS[0]}: ${(m / base).toFixed(2)}x`}`);
  }
} finally {
  for (const { database } of databases) await database.close();
  rmSync(dir, { recursive: true, force: true });
}
