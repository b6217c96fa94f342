/**
 * `pnpm bench:failover`: a Patroni group of plain PostgreSQL 15 (a primary and its synchronous standby, the
 * platform's production settings from src/citus/patroni.ts) on loopback under a steady stream of acknowledged writes,
 * through an unplanned failover (kill -9 of the primary's postmaster) and a planned switchover. Prints, for each: the
 * time to the first accepted write, the longest time writes paused, the errors clients saw by kind, and the
 * acknowledged writes lost. Targets: failover within 30 s, switchover under 5 s of errors, 0 lost in both.
 *
 * A Citus worker group is not measured yet: Citus mode needs the Citus VMs' boot to run Patroni (issue 21).
 */
import { patroniUnavailable } from "@platform/testing";
import { createTable, missingOn, startPair, startWriter } from "../test/patroni-pair.js";

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
console.log("| event | first accepted write | longest pause | errors seen by clients | acknowledged | lost |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
process.exit(ok ? 0 : 1);
