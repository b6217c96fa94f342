/**
 * `pnpm bench:moves`: a rebalance under a steady write load, on the local Citus cluster (CITUS_URL: a superuser on a
 * throwaway coordinator with two or more workers; it drops and recreates the platform schema there).
 *
 * The tenant service listens on loopback; clients POST /v1/items at a steady rate, as tenants, while `shardctl
 * rebalance --yes` (the real CLI) moves shard groups back onto a worker drained for the purpose. Prints the writes
 * acknowledged (201), the writes lost (acknowledged but absent afterwards: must be 0), the other answers by status
 * code, the longest stall between two acknowledged writes, latency, and the rebalance's duration. Exits 1 on a lost
 * write or a failed rebalance.
 *
 *   CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform BENCH_RATE=200 BENCH_ITEMS_PER_TENANT=1000 pnpm bench:moves
 */
import pg from "pg";
import { missingWrites, prepareCitusDatabase, runShardctl } from "@platform/citus/testing";
import { buildApp } from "../src/app.js";
import { loadServiceConfig } from "../src/config.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { AUDIENCE, ISSUER, SECRET, token } from "../test/harness.js";
import { positiveInteger } from "./env.js";

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) {
  console.error("bench:moves needs a Citus cluster: set CITUS_URL to a throwaway coordinator (superuser) with two or more workers");
  process.exit(2);
}
const RATE = positiveInteger("BENCH_RATE", 200);
const CLIENTS = positiveInteger("BENCH_CLIENTS", 8);
const TENANTS = positiveInteger("BENCH_TENANTS", 40);
const ITEMS_PER_TENANT = positiveInteger("BENCH_ITEMS_PER_TENANT", 1000);
/** The bench stops by itself: a rebalance that has not ended by then is reported as such. */
const LIMIT_MS = positiveInteger("BENCH_LIMIT_SECONDS", 900) * 1000;

const shardctl = (...args: string[]) => runShardctl(CITUS_URL!, args, LIMIT_MS);

console.log(`preparing: ${TENANTS} tenants with ${ITEMS_PER_TENANT} items each on ${CITUS_URL.replace(/\/\/[^@]*@/, "//")}`);
const { appUrl, release } = await prepareCitusDatabase(CITUS_URL);
const admin = new pg.Client({ connectionString: CITUS_URL });
await admin.connect();
await admin.query("INSERT INTO platform.tenants (id, code, name, max_users) SELECT gen_random_uuid(), 'test-bench-' || i, 'Bench ' || i, 1000 FROM generate_series(1, $1) i", [TENANTS]);
await admin.query("INSERT INTO platform.users (tenant_id, email) SELECT id, 'owner@' || code || '.test' FROM platform.tenants");
await admin.query("INSERT INTO platform.items (tenant_id, owner_id, title, body) SELECT tenant_id, id, 'seed ' || g, repeat('x', 200) FROM platform.users, generate_series(1, $1) g", [ITEMS_PER_TENANT]);
const tenants = await Promise.all(
  (await admin.query<{ id: string; owner: string }>("SELECT tenant_id::text AS id, id::text AS owner FROM platform.users ORDER BY 1")).rows.map(async (t) => ({
    ...t,
    token: await token({ tenant: t.id, sub: `bench-${t.id.slice(0, 8)}`, expiresIn: "2h" }),
  })),
);

// Something to rebalance: one worker drained first, with nothing writing, then open to shards again.
const workers = (await admin.query<{ nodename: string; nodeport: number }>("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND isactive ORDER BY nodeport")).rows;
const emptied = workers.at(-1)!;
const drained = await shardctl("drain", `${emptied.nodename}:${emptied.nodeport}`, "--yes", "--no-verify");
if (drained.code !== 0) {
  console.error(`could not drain ${emptied.nodename}:${emptied.nodeport} to set up the rebalance:\n${drained.out}`);
  process.exit(1);
}
await admin.query("SELECT citus_set_node_property($1, $2, 'shouldhaveshards', true)", [emptied.nodename, emptied.nodeport]);

const config = loadServiceConfig({
  DATABASE_URL: appUrl,
  AUTH_JWT_SECRET: SECRET,
  AUTH_ISSUER: ISSUER,
  AUTH_AUDIENCE: AUDIENCE,
  RATE_LIMIT_MAX: "100000000",
  LOG_LEVEL: "warn",
  DATABASE_POOL_SIZE: String(CLIENTS * 2),
});
const db = createPostgresDatabase({ url: appUrl, poolSize: config.DATABASE_POOL_SIZE });
const app = await buildApp({ config, db, logger: { level: "warn" } });
const base = await app.listen({ host: "127.0.0.1", port: 0 });

// The load: CLIENTS loops, each at RATE / CLIENTS requests a second, round-robin over the tenants.
const acknowledged: { tenantId: string; id: string }[] = [];
const statuses = new Map<string, number>();
const latencies: number[] = [];
let lastAck = Date.now();
let longestStall = 0;
let stopping = false;
let turn = 0;
const pauseMs = (1000 * CLIENTS) / RATE;
const loops = Array.from({ length: CLIENTS }, async () => {
  while (!stopping) {
    const tenant = tenants[turn++ % tenants.length]!;
    const started = Date.now();
    let status: string;
    try {
      const response = await fetch(`${base}/v1/items`, {
        method: "POST",
        headers: { authorization: `Bearer ${tenant.token}`, "content-type": "application/json" },
        body: JSON.stringify({ ownerId: tenant.owner, title: "written during the rebalance", body: "bench" }),
        signal: AbortSignal.timeout(30_000),
      });
      status = String(response.status);
      const body = (await response.json()) as { id?: string };
      if (response.status === 201 && body.id) {
        const now = Date.now();
        longestStall = Math.max(longestStall, now - lastAck);
        lastAck = now;
        acknowledged.push({ tenantId: tenant.id, id: body.id });
      }
    } catch (error) {
      status = (error as Error).name === "TimeoutError" ? "timeout" : "connection error";
    }
    latencies.push(Date.now() - started);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, pauseMs - (Date.now() - started))));
  }
});

await new Promise((resolve) => setTimeout(resolve, 3000));
const ackedBefore = acknowledged.length;
console.log(`load running: ${RATE} writes/s from ${CLIENTS} clients through ${base}; rebalancing onto ${emptied.nodename}:${emptied.nodeport}`);
const rebalance = await shardctl("rebalance", "--yes");
await new Promise((resolve) => setTimeout(resolve, 2000));
stopping = true;
await Promise.all(loops);
await app.close();
await db.close();

const lost = await missingWrites(admin, acknowledged);
const moved = /(\d+) shard group\(s\), (\S+ \S+) to move/.exec(rebalance.out);
await admin.end();
await release();

latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
const errors = [...statuses].filter(([s]) => s !== "201");
console.log("");
console.log(`rebalance            ${rebalance.code === 0 ? "finished" : rebalance.code === -1 ? `did not end within ${LIMIT_MS / 1000} s` : `failed (exit ${rebalance.code})`} in ${(rebalance.ms / 1000).toFixed(1)} s${moved ? `, ${moved[1]} shard groups, ${moved[2]}` : ""}`);
console.log(`writes acknowledged  ${acknowledged.length} (${acknowledged.length - ackedBefore} from the rebalance's start)`);
console.log(`writes lost          ${lost.length}`);
console.log(`errors by status     ${errors.length === 0 ? "none" : errors.map(([s, n]) => `${s}: ${n}`).join(", ")}`);
console.log(`longest write stall  ${longestStall} ms`);
console.log(`write latency        p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1) ?? 0} ms`);
if (rebalance.code !== 0) console.log(`\nshardctl said:\n${rebalance.out}`);
process.exit(lost.length === 0 && rebalance.code === 0 ? 0 : 1);
