/**
 * `pnpm bench:failover`: a Patroni group of plain PostgreSQL 15 (a primary and its synchronous standby, the
 * platform's production settings from src/citus/patroni.ts) on loopback under a steady stream of acknowledged writes,
 * through an unplanned failover (kill -9 of the primary's postmaster) and a planned switchover. Prints, for each: the
 * time to the first accepted write, the longest time writes paused, the errors clients saw by kind, and the
 * acknowledged writes lost. Targets: failover within 30 s, switchover under 5 s of errors, 0 lost in both.
 *
 * When Citus is installed in this PostgreSQL (built from source), the same two events for a Citus worker group of a
 * Patroni-managed formation (a coordinator and two synchronous worker groups), under writers doing what the tenant
 * service does: the time until pg_dist_node names the new primary, the errors, the acknowledged writes lost.
 */
import pg from "pg";
import { missingWrites, prepareCitusDatabase, startTenantWriters } from "@platform/citus/testing";
import { citusUnavailable, patroniUnavailable } from "@platform/testing";
import { createTable, missingOn, startCluster, startPair, startWriter } from "../test/patroni-pair.js";

const unavailable = patroniUnavailable();
if (unavailable) {
  console.error(`bench:failover needs Patroni, etcd and PostgreSQL 15: ${unavailable}`);
  process.exit(2);
}

const pair = await startPair({ synchronous: true });
const rows: string[][] = [];
let ok = true;
try {
  const first = await pair.leader();
  await pair.replicaReady(pair.members.find((m) => m !== first)!);
  await createTable(pair);

  for (const event of ["failover (kill -9 of the primary's postmaster)", "switchover (planned)"] as const) {
    const from = await pair.leader();
    const to = pair.members.find((m) => m !== from)!;
    await pair.replicaReady(to);
    const writer = startWriter(pair);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const at = Date.now();
    if (event.startsWith("failover")) from.killPostmaster();
    else await pair.switchover(to);
    for (let i = 0; i < 900 && writer.firstAckAfter(at) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const resumed = writer.firstAckAfter(at);
    const paused = writer.longestGapAfter(at);
    const report = await writer.stop();
    const lost = await missingOn(await pair.leader(), report.acknowledged);
    const target = event.startsWith("failover") ? 30_000 : 5_000;
    ok &&= resumed !== undefined && lost.length === 0 && paused <= target;
    rows.push([
      event,
      resumed === undefined ? "never" : `${resumed - at} ms`,
      `${paused} ms (target ${target / 1000} s)`,
      Object.entries(report.errors).map(([k, n]) => `${k}: ${n}`).join(", ") || "none",
      `${report.acknowledged.length}`,
      `${lost.length}`,
    ]);
    // The old primary back as a replica before the next event.
    await pair.replicaReady(from, 180_000);
  }
} finally {
  await pair.stop();
}
console.log("Plain PostgreSQL 15 pair, synchronous:");
console.log("| event | first accepted write | longest pause | errors seen by clients | acknowledged | lost |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);

const noCitus = citusUnavailable();
if (noCitus) {
  console.log(`\nCitus worker group: not measured: ${noCitus}`);
} else {
  const citusRows: string[][] = [];
  const cluster = await startCluster({ synchronous: true, citus: { database: "platform" }, groups: [1, 2, 2] });
  try {
    const group = cluster.groups[1]!;
    for (const g of cluster.groups.slice(1)) {
      const leader = await g.leader(180_000);
      await g.replicaReady(g.members.find((m) => m !== leader)!, 180_000);
    }
    const citusUrl = (await cluster.groups[0]!.leader()).url.replace(/\/postgres$/, "/platform");
    const admin = new pg.Client({ connectionString: citusUrl });
    await admin.connect();
    const groupPort = async () => (await admin.query<{ nodeport: number }>("SELECT nodeport FROM pg_dist_node WHERE groupid = 1 AND noderole = 'primary'")).rows[0]?.nodeport;
    for (let i = 0; i < 240 && (await admin.query("SELECT 1 FROM pg_dist_node WHERE groupid > 0")).rows.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 500));
    const { appUrl, release } = await prepareCitusDatabase(citusUrl);
    await admin.query("INSERT INTO platform.tenants (id, code, name) SELECT gen_random_uuid(), 'test-' || i, 'T' || i FROM generate_series(1, 20) i");
    await admin.query("INSERT INTO platform.users (tenant_id, email) SELECT id, 'owner@' || code || '.test' FROM platform.tenants");
    const tenants = (await admin.query<{ id: string; ownerId: string }>('SELECT tenant_id::text AS id, id::text AS "ownerId" FROM platform.users')).rows;
    for (const event of ["failover (kill -9 of a worker primary's postmaster)", "switchover (planned)"] as const) {
      const from = await group.leader();
      const to = group.members.find((m) => m !== from)!;
      await group.replicaReady(to, 180_000);
      const writers = startTenantWriters(appUrl, tenants, { clients: 4, ratePerClient: 20 });
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const at = Date.now();
      if (event.startsWith("failover")) from.killPostmaster();
      else await group.switchover(to);
      let followed: number | undefined;
      for (let i = 0; i < 1200 && followed === undefined; i++) {
        if ((await groupPort()) === to.pgPort) followed = Date.now();
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const report = await writers.stop();
      const lost = await missingWrites(admin, report.acknowledged);
      const target = event.startsWith("failover") ? 30_000 : 5_000;
      ok &&= followed !== undefined && followed - at <= target && lost.length === 0;
      citusRows.push([
        event,
        followed === undefined ? "never" : `${followed - at} ms (target ${target / 1000} s)`,
        Object.entries(report.errors).map(([k, n]) => `${k}: ${n}`).join(", ") || "none",
        `${report.acknowledged.length}`,
        `${lost.length}`,
      ]);
      await group.replicaReady(from, 180_000);
    }
    await release();
    await admin.end();
  } finally {
    await cluster.stop();
  }
  console.log("\nCitus worker group (coordinator + two synchronous worker groups), writers as the tenant service:");
  console.log("| event | pg_dist_node names the new primary | errors seen by clients (SQLSTATE) | acknowledged | lost |");
  console.log("|---|---|---|---|---|");
  for (const r of citusRows) console.log(`| ${r.join(" | ")} |`);
}
process.exit(ok ? 0 : 1);
