/**
 * shardctl: the careful operator around Citus's rebalancer.
 *
 *   pnpm shardctl status [--json]
 *   pnpm shardctl plan [--strategy by_disk_size|by_shard_count] [--threshold x] [--drain-only] [--json]
 *   pnpm shardctl rebalance [--yes] [--dry-run] [--attach] [--no-verify] [--checksum]
 *   pnpm shardctl verify [--checksum]
 *   pnpm shardctl add-node <host:port> [--rebalance] | drain <host:port> | remove-node <host:port>
 *   pnpm shardctl isolate-tenant <tenant id or code> [--to host:port] [--dry-run]
 *   pnpm shardctl move-shard <shardid> <from host:port> <to host:port> [--dry-run]
 *   pnpm shardctl simulate --add-workers N [--from status.json]
 *
 * The coordinator comes from --coordinator or CITUS_URL (a superuser connection). Exit codes: 0 done, 2 bad input,
 * 3 refused (preflight, lock, state), 4 the operation failed, 5 verification failed.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { Command, InvalidArgumentError } from "commander";
import pg from "pg";
import { main } from "@platform/config/cli-main";
import { formatBytes, type NodeInfo, type ShardPlacement } from "./analysis.js";
import { literal, readSnapshot } from "./catalog.js";
import {
  bytesPerNode,
  citusDecoderRefusal,
  drainSql,
  followJob,
  mutate,
  nodeExists,
  parseNode,
  plan,
  preflight,
  printPlan,
  runningJobId,
  shardGroups,
  shardsOnNode,
  simulateAddWorkers,
  status,
  type Output,
} from "./commands.js";
import { ShardctlError, compareVerification, verifySnapshot } from "./operations.js";

/** host:port from the command line; a malformed one is bad input (exit 2). */
function node(spec: string): { host: string; port: number } {
  try {
    return parseNode(spec);
  } catch (error) {
    throw new ShardctlError((error as Error).message, 2);
  }
}

const out: Output = { line: (t) => console.log(t), json: (v) => console.log(JSON.stringify(v, null, 2)) };
const number = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0 (got "${v}")`);
  return n;
};

async function connect(program: Command): Promise<pg.Client> {
  const url = program.opts<{ coordinator?: string }>().coordinator ?? process.env.CITUS_URL;
  if (!url) throw new ShardctlError("no coordinator: pass --coordinator postgresql://... or set CITUS_URL", 2);
  const client = new pg.Client({ connectionString: url, application_name: "shardctl" });
  try {
    await client.connect();
  } catch (error) {
    throw new ShardctlError(`cannot connect to the coordinator: ${(error as Error).message}`, 4);
  }
  const citus = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  if (citus.rows.length === 0) {
    await client.end();
    throw new ShardctlError("the database has no citus extension: point --coordinator at the Citus coordinator's database", 2);
  }
  return client;
}

async function withClient(program: Command, run: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = await connect(program);
  try {
    await run(client);
  } finally {
    await client.end().catch(() => {});
  }
}

const program = new Command().name("shardctl").description("Citus shard operations").option("--coordinator <url>", "coordinator connection string (default: $CITUS_URL)");
// Set before the subcommands exist, so they inherit it: bad options are bad input (exit 2), not a crash.
program.exitOverride();
const mutation = (cmd: Command) => cmd.option("--dry-run", "print the SQL, change nothing").option("--no-verify", "skip row counts before and after").option("--checksum", "also compare content checksums (slow)");

program
  .command("status")
  .option("--json")
  .action((o: { json?: boolean }) => withClient(program, (c) => status(c, out, o.json ?? false)));

program
  .command("plan")
  .option("--strategy <name>", "by_disk_size or by_shard_count", "by_disk_size")
  .option("--threshold <x>", "rebalance threshold", number("--threshold"))
  .option("--drain-only", "only move shards off nodes that should not have any")
  .option("--rate <MBps>", "transfer rate for the duration estimate", number("--rate"), 50)
  .option("--json")
  .action((o: { strategy: string; threshold?: number; drainOnly?: boolean; rate: number; json?: boolean }) =>
    withClient(program, async (c) => {
      const { summary } = await plan(c, { strategy: o.strategy, threshold: o.threshold, drainOnly: o.drainOnly, bytesPerSecond: o.rate * 1024 * 1024 });
      if (o.json) out.json(summary);
      else printPlan(summary, out);
    }),
  );

interface RebalanceOptions {
  strategy: string;
  yes?: boolean;
  dryRun?: boolean;
  verify: boolean;
  checksum?: boolean;
}

/** Preflight, the plan, confirmation, then Citus's rebalance job followed to its end (or stopped, or detached). */
async function rebalance(c: pg.Client, o: RebalanceOptions): Promise<void> {
  const { summary, snapshot } = await plan(c, { strategy: o.strategy, bytesPerSecond: 50 * 1024 * 1024 });
  const checks = await preflight(c, snapshot);
  for (const check of checks.checks) out.line(`${check.ok ? "ok  " : "FAIL"} ${check.name}: ${check.detail}`);
  if (!checks.ok) throw new ShardctlError("preflight failed: nothing was changed", 3);
  out.line("note: free disk on the targets cannot be read through SQL; check the Citus dashboard (Data disk free) against the bytes below");
  printPlan(summary, out);
  if (summary.moves.length === 0) return;
  const sql = [`SELECT citus_rebalance_start(rebalance_strategy := ${literal(o.strategy)})`];
  if (!o.dryRun && !o.yes) {
    if (!process.stdin.isTTY) throw new ShardctlError("confirmation needed: run in a terminal or pass --yes", 2);
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question("start this rebalance? [y/N] ");
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) throw new ShardctlError("not confirmed: nothing was changed", 3);
  }
  await mutate(c, out, "rebalance", { strategy: o.strategy }, sql, { dryRun: o.dryRun ?? false, verify: o.verify, checksum: o.checksum ?? false }, async () => {
    const { rows } = await c.query<{ job: string }>(`${sql[0]} AS job`);
    const jobId = Number(rows[0]!.job);
    const abort = new AbortController();
    const onInterrupt = () => abort.abort();
    process.once("SIGINT", onInterrupt);
    try {
      const job = await followJob(c, jobId, out, { interactive: process.stdout.isTTY, signal: abort.signal });
      if (abort.signal.aborted && !["finished", "failed", "cancelled"].includes(job.state)) {
        const stop = process.stdin.isTTY
          ? /^s/i.test(await createInterface({ input: process.stdin, output: process.stdout }).question("[s]top the job or [d]etach (it keeps running)? "))
          : false;
        if (stop) {
          await c.query("SELECT citus_rebalance_stop()");
          throw new ShardctlError(`rebalance job ${jobId} stopped; moves already done stay done`, 4);
        }
        out.line(`detached: job ${jobId} keeps running; follow it with \`shardctl rebalance --attach\``);
        return { jobId, detached: true };
      }
      if (job.state !== "finished") throw new ShardctlError(`rebalance job ${jobId} ended ${job.state}: see docs/runbooks/rebalance.md`, 4);
      return { jobId, moves: summary.moves.length, bytes: summary.bytesToMove };
    } finally {
      process.removeListener("SIGINT", onInterrupt);
    }
  });
}

const STRATEGY = ["--strategy <name>", "by_disk_size or by_shard_count", "by_disk_size"] as const;

mutation(
  program
    .command("rebalance")
    .option(...STRATEGY)
    .option("--yes", "do not ask for confirmation")
    .option("--attach", "follow a rebalance that is already running"),
).action((o: RebalanceOptions & { attach?: boolean }) =>
  withClient(program, async (c) => {
    if (o.attach) {
      const id = await runningJobId(c);
      if (id === null) throw new ShardctlError("no rebalance is running to attach to", 3);
      const job = await followJob(c, id, out, { interactive: process.stdout.isTTY });
      if (job.state !== "finished") throw new ShardctlError(`rebalance job ${id} ended ${job.state}: see docs/runbooks/rebalance.md`, 4);
      return;
    }
    await rebalance(c, o);
  }),
);

program
  .command("verify")
  .option("--checksum")
  .option("--before <file>", "compare with a snapshot saved by an earlier `verify --json`")
  .option("--json")
  .action((o: { checksum?: boolean; before?: string; json?: boolean }) =>
    withClient(program, async (c) => {
      const tables = (await c.query<{ name: string }>("SELECT logicalrelid::regclass::text AS name FROM pg_dist_partition WHERE partmethod = 'h' AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = logicalrelid) ORDER BY 1")).rows.map((r) => r.name);
      const now = await verifySnapshot(c, tables, o.checksum ?? false);
      if (o.before) {
        const problems = compareVerification(JSON.parse(readFileSync(o.before, "utf8")), now);
        if (problems.length > 0) throw new ShardctlError(`differs from ${o.before}: ${problems.join("; ")}`, 5);
        out.line(`matches ${o.before}`);
      }
      if (o.json) out.json(now);
      else for (const [t, v] of Object.entries(now)) out.line(`${t.padEnd(40)} ${String(v.rows).padStart(12)}${v.checksum ? `  ${v.checksum}` : ""}`);
    }),
  );

mutation(
  program
    .command("add-node <node>")
    .option("--rebalance", "then rebalance onto it: preflight, plan, confirmation unless --yes")
    .option(...STRATEGY)
    .option("--yes"),
).action((spec: string, o: RebalanceOptions & { rebalance?: boolean }) =>
  withClient(program, async (c) => {
    const { host, port } = node(spec);
    if (await nodeExists(c, host, port)) throw new ShardctlError(`${spec} is already in the cluster`, 3);
    const sql = [`SELECT citus_add_node(${literal(host)}, ${port})`];
    await mutate(c, out, "add-node", { node: spec }, sql, { dryRun: o.dryRun ?? false, verify: false, checksum: false }, async () => {
      await c.query(sql[0]!);
      out.line(`added ${spec}; it holds no shards until a rebalance${o.rebalance ? "" : " (shardctl rebalance)"}`);
    });
    if (!o.rebalance) return;
    // A dry run cannot plan onto a node it did not add: it shows the statement the rebalance would start.
    if (o.dryRun) out.line(`SELECT citus_rebalance_start(rebalance_strategy := ${literal(o.strategy)});`);
    else await rebalance(c, o);
  }),
);

mutation(program.command("drain <node>")).action((spec: string, o: { dryRun?: boolean; verify: boolean; checksum?: boolean }) =>
  withClient(program, async (c) => {
    const { host, port } = node(spec);
    if (!(await nodeExists(c, host, port))) throw new ShardctlError(`${spec} is not a node of this cluster (see shardctl status)`, 2);
    const running = await runningJobId(c);
    if (running !== null) throw new ShardctlError(`rebalance job ${running} is running: wait for it or attach`, 3);
    const sql = drainSql(host, port);
    await mutate(c, out, "drain", { node: spec }, sql, { dryRun: o.dryRun ?? false, verify: o.verify, checksum: o.checksum ?? false }, async () => {
      for (const statement of sql) await c.query(statement);
      const left = await shardsOnNode(c, host, port);
      if (left > 0) throw new ShardctlError(`${spec} still holds ${left} shard placements after the drain`, 4);
      out.line(`${spec} holds no shards; remove it with shardctl remove-node ${spec}`);
      return { node: spec };
    });
  }),
);

mutation(program.command("remove-node <node>")).action((spec: string, o: { dryRun?: boolean }) =>
  withClient(program, async (c) => {
    const { host, port } = node(spec);
    if (!(await nodeExists(c, host, port))) throw new ShardctlError(`${spec} is not a node of this cluster`, 2);
    const held = await shardsOnNode(c, host, port);
    if (held > 0) throw new ShardctlError(`${spec} still holds ${held} shard placements: drain it first (shardctl drain ${spec})`, 3);
    const sql = [`SELECT citus_remove_node(${literal(host)}, ${port})`];
    await mutate(c, out, "remove-node", { node: spec }, sql, { dryRun: o.dryRun ?? false, verify: false, checksum: false }, async () => {
      await c.query(sql[0]!);
      out.line(`removed ${spec}`);
    });
  }),
);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

mutation(
  program
    .command("isolate-tenant <tenant>")
    .description("give one tenant (a whale) shards of its own, then place them on --to or the least loaded worker")
    .option("--to <node>", "host:port to place the tenant's new shard group on")
    .option("--table <name>", "a distributed table of the colocation group (its colocated tables follow)", "platform.users"),
).action((tenant: string, o: { to?: string; table: string; dryRun?: boolean; verify: boolean; checksum?: boolean }) =>
  withClient(program, async (c) => {
    if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(o.table)) throw new ShardctlError(`--table must be schema.table (got "${o.table}")`, 2);
    // A tenant code is resolved through the platform's tenants table; an id is used as it is.
    let tenantId = tenant.toLowerCase();
    if (!UUID.test(tenantId)) {
      const found = await c.query<{ id: string }>("SELECT id::text FROM platform.tenants WHERE code = $1", [tenant]).catch(() => ({ rows: [] as { id: string }[] }));
      if (found.rows.length === 0) throw new ShardctlError(`no tenant with id or code "${tenant}"`, 2);
      tenantId = found.rows[0]!.id;
    }
    const rows = await c.query(`SELECT 1 FROM ${o.table} WHERE tenant_id = $1 LIMIT 1`, [tenantId]);
    if (rows.rows.length === 0) throw new ShardctlError(`tenant ${tenantId} has no rows in ${o.table}: nothing to isolate`, 2);
    const target = o.to ? node(o.to) : undefined;
    if (target && !(await nodeExists(c, target.host, target.port))) throw new ShardctlError(`${o.to} is not a node of this cluster`, 2);
    const running = await runningJobId(c);
    if (running !== null) throw new ShardctlError(`rebalance job ${running} is running: isolate after it`, 3);
    const refusal = await citusDecoderRefusal(c, o.table, tenantId);
    if (refusal) throw new ShardctlError(`${refusal}. Nothing was changed.`, 3);
    const isolate = `SELECT isolate_tenant_to_new_shard(${literal(o.table)}, ${literal(tenantId)}::uuid, 'CASCADE', shard_transfer_mode := 'force_logical')`;
    const moveNote = `-- then citus_move_shard_placement(<new shard>, <its node>, ${target ? `${literal(target.host)}, ${target.port}` : "<least loaded worker>"}, shard_transfer_mode := 'force_logical') unless it is already there`;
    await mutate(c, out, "isolate-tenant", { tenant: tenantId, table: o.table, to: o.to ?? null }, [isolate, moveNote], { dryRun: o.dryRun ?? false, verify: o.verify, checksum: o.checksum ?? false }, async () => {
      // A tenant isolated before has a shard whose hash range is that one value: only place it.
      const current = (
        await c.query<{ shardid: string; isolated: boolean }>(
          "SELECT shardid, shardminvalue = shardmaxvalue AS isolated FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)",
          [o.table, tenantId],
        )
      ).rows[0]!;
      const shardId = current.isolated ? Number(current.shardid) : Number((await c.query<{ shard: string }>(`${isolate} AS shard`)).rows[0]!.shard);
      if (current.isolated) out.line(`tenant ${tenantId} already has shard ${shardId} to itself; placing it`);
      const placement = (await c.query<{ nodename: string; nodeport: number }>("SELECT nodename, nodeport FROM citus_shards WHERE shardid = $1", [shardId])).rows[0]!;
      let destination = target;
      if (!destination) {
        const snapshot = await readSnapshot(c);
        const load = [...bytesPerNode(snapshot.nodes, snapshot.shards)].sort((a, b) => a[1] - b[1]);
        const [host, port] = load[0]![0].split(":");
        destination = { host: host!, port: Number(port) };
      }
      if (destination.host !== placement.nodename || destination.port !== placement.nodeport) {
        await c.query("SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode := 'force_logical')", [shardId, placement.nodename, placement.nodeport, destination.host, destination.port]);
      }
      out.line(`tenant ${tenantId} now has shard ${shardId} (and its colocated shards) on ${destination.host}:${destination.port}`);
      return { tenant: tenantId, shardId, node: `${destination.host}:${destination.port}` };
    });
  }),
);

mutation(program.command("move-shard <shardid> <from> <to>").description("move one shard and its colocated shards between workers")).action(
  (shard: string, from: string, to: string, o: { dryRun?: boolean; verify: boolean; checksum?: boolean }) =>
    withClient(program, async (c) => {
      const shardId = Number(shard);
      if (!Number.isInteger(shardId) || shardId <= 0) throw new ShardctlError(`shard id must be a positive whole number (got "${shard}")`, 2);
      const source = node(from);
      const target = node(to);
      const placed = await c.query("SELECT 1 FROM citus_shards WHERE shardid = $1 AND nodename = $2 AND nodeport = $3", [shardId, source.host, source.port]);
      if (placed.rows.length === 0) throw new ShardctlError(`shard ${shardId} has no placement on ${from} (see shardctl status / citus_shards)`, 2);
      if (!(await nodeExists(c, target.host, target.port))) throw new ShardctlError(`${to} is not a node of this cluster`, 2);
      const running = await runningJobId(c);
      if (running !== null) throw new ShardctlError(`rebalance job ${running} is running: move after it`, 3);
      const sql = [
        `SELECT citus_move_shard_placement(${shardId}, ${literal(source.host)}, ${source.port}, ${literal(target.host)}, ${target.port}, shard_transfer_mode := 'force_logical')`,
      ];
      await mutate(c, out, "move-shard", { shard: shardId, from, to }, sql, { dryRun: o.dryRun ?? false, verify: o.verify, checksum: o.checksum ?? false }, async () => {
        await c.query(sql[0]!);
        out.line(`shard ${shardId} and its colocated shards moved ${from} -> ${to}`);
        return { shard: shardId, from, to };
      });
    }),
);

program
  .command("simulate")
  .requiredOption("--add-workers <n>", "workers to add", number("--add-workers"))
  .option("--from <file>", "a saved snapshot ({nodes, shards} as in the catalog) instead of the live cluster")
  .option("--json")
  .action(async (o: { addWorkers: number; from?: string; json?: boolean }) => {
    let nodes: NodeInfo[];
    let shards: ShardPlacement[];
    if (o.from) {
      ({ nodes, shards } = JSON.parse(readFileSync(o.from, "utf8")) as { nodes: NodeInfo[]; shards: ShardPlacement[] });
    } else {
      const c = await connect(program);
      try {
        ({ nodes, shards } = await readSnapshot(c));
      } finally {
        await c.end();
      }
    }
    const result = simulateAddWorkers(bytesPerNode(nodes, shards), shardGroups(shards), o.addWorkers);
    if (o.json) return out.json({ ...result, load: Object.fromEntries(result.load) });
    for (const [node, bytes] of result.load) out.line(`${node.padEnd(28)} ${formatBytes(bytes).padStart(12)}`);
    out.line(`${result.moves} group moves, ${formatBytes(result.bytesMoved)}; skew ${result.skew.toFixed(2)} (lower bound ${result.lowerBound.toFixed(2)})`);
  });

// ShardctlError carries its exit code; anything else is 4, the operation failed.
await main("shardctl", program);
