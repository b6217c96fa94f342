/**
 * The frame every mutating shardctl command runs in: one shardctl at a time, the operations log, verification before
 * and after, and a watch over the shard moves in flight so that a move that stops catching up is reported while the
 * command waits, never in silence.
 */
import type { ClientBase } from "pg";
import { SQL } from "./catalog.js";
import { connect, type Output } from "./context.js";
import { describeMoveHealth, readMoveHealth } from "./moves.js";
import {
  SIGNALS,
  ShardctlError,
  closeAbandonedOperations,
  compareVerification,
  describeAbandoned,
  finishOperation,
  startOperation,
  takeLock,
  verifySnapshot,
} from "./operations.js";

export interface MutateOptions {
  readonly client: ClientBase;
  /** The coordinator's connection string, for the watch's own connection. */
  readonly url: string;
  readonly out: Output;
  /** The command's name in the operations log. */
  readonly command: string;
  readonly args: Record<string, unknown>;
  /** What --dry-run prints; a line starting with -- is a comment. */
  readonly sql: string[];
  readonly dryRun?: boolean;
  readonly verify: boolean;
  readonly checksum?: boolean;
  /** Watch the moves in flight while `run` waits (commands that call Citus's synchronous move functions). */
  readonly watchMoves?: boolean;
  readonly run: () => Promise<Record<string, unknown> | void>;
}

export async function mutate(o: MutateOptions): Promise<void> {
  const { client, out, command } = o;
  if (o.dryRun) {
    out.line(`-- shardctl ${command} --dry-run: the SQL it would run on the coordinator`);
    for (const statement of o.sql) out.line(statement.startsWith("--") ? statement : `${statement};`);
    return;
  }
  await takeLock(client);
  // With the lock held no other shardctl runs: an operation still recorded as running was abandoned (killed, or
  // its terminal closed). Say so once, and close it, so the log tells the truth.
  for (const line of describeAbandoned(await closeAbandonedOperations(client, { shardctlLockHeld: true }), true)) out.line(line);
  const id = await startOperation(client, command, o.args, { heldSession: true });
  const tables = o.verify ? (await client.query<{ name: string }>(SQL.distributedTables)).rows.map((r) => r.name) : [];
  const before = o.verify ? await verifySnapshot(client, tables, o.checksum ?? false) : {};
  // Whether the application writes right now decides what "verified" can mean (see verifyAfter).
  const live = o.verify ? await applicationWrites(client) : false;
  const watch = o.watchMoves ? watchMoves(o.url, out) : undefined;
  const interrupt = o.watchMoves ? cancelOnSignal(o.url, (client as ClientBase & { processID: number }).processID, out) : undefined;
  try {
    const details =
      (await o.run().finally(() => {
        watch?.stop();
        interrupt?.dispose();
      })) ?? {};
    // A detached job is still moving shards: its subscriptions and slots are not leftovers yet, so the check waits for
    // its end (`shardctl verify` then, or `rebalance --attach`).
    if (o.verify && details.detached) out.line("not verified: the job is still running; run shardctl verify after it ends");
    else if (o.verify) await verifyAfter(client, out, { id, command, details, tables, before, live, checksum: o.checksum ?? false });
    await finishOperation(client, id, details.detached ? "detached" : "succeeded", details);
    out.line(`recorded as operation ${id} in platform_ops.operations`);
  } catch (caught) {
    const signal = interrupt?.signal;
    const error =
      signal && (caught as { code?: string }).code === QUERY_CANCELED
        ? new ShardctlError(
            `interrupted (${signal}): the ${command} in flight was cancelled, and Citus rolled the unfinished move back; moves that had completed stay done. ` +
              "See where the shards are with shardctl status; the same command again picks up from there",
            4,
          )
        : caught;
    if (!(error instanceof ShardctlError && error.exitCode === 5)) {
      await finishOperation(client, id, "failed", { error: (error as Error).message, ...(signal ? { interrupted: signal } : {}) }).catch(() => {});
    }
    throw error;
  }
}

const QUERY_CANCELED = "57014";

/**
 * Ctrl-C, a closed terminal (SIGHUP) or SIGTERM while a command waits on Citus's synchronous move functions. Left to
 * the default, shardctl would die and the coordinator's session would go on moving shards unseen, holding shardctl's
 * lock, with the operation recorded as running. So the first signal cancels the session's statement (Citus rolls
 * an unfinished move back and cleans up its copy) and the command ends with what happened; a second exits at once.
 * A cancel reaches only the statement running when it arrives, so it is repeated each second until the command's
 * statements end: the command's next statement must not start either.
 */
function cancelOnSignal(url: string, pid: number, out: Output): { readonly signal: string | undefined; dispose(): void } {
  let received: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const failures = new Set<string>();
  // A cancel that cannot be sent is said once, with what to run instead: a silent one would leave the operator
  // waiting on a move that goes on.
  const failed = (error: unknown) => {
    const message = (error as Error).message;
    if (failures.has(message)) return;
    failures.add(message);
    out.line(`cannot cancel coordinator session ${pid}: ${message}; SELECT pg_cancel_backend(${pid}) on the coordinator stops it`);
  };
  const cancel = async () => {
    const c = await connect(url, "shardctl-cancel").catch(failed);
    if (!c) return;
    // ::int: Citus adds pg_cancel_backend(bigint) for its global pids, and an untyped parameter matches both
    // ("function pg_cancel_backend(unknown) is not unique").
    await c.query("SELECT pg_cancel_backend($1::int)", [pid]).catch(failed);
    await c.end().catch(() => {});
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      out.line(`${signal} again: exiting now. Coordinator session ${pid} may still be running; SELECT pg_cancel_backend(${pid}) stops it`);
      process.exit(130);
    }
    received = signal;
    out.line(`${signal}: cancelling the move in flight (coordinator session ${pid}); moves already completed stay done. ${signal} again exits at once`);
    void cancel();
    timer = setInterval(() => void cancel(), 1000);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    get signal() {
      return received;
    },
    dispose() {
      clearInterval(timer);
      for (const s of SIGNALS) process.removeListener(s, onSignal);
    },
  };
}

/**
 * Inserts, updates and deletes on the distributed tables' shards, read on every node twice two seconds apart before
 * anything moves: a shard whose counter grew is the application writing. (After a move has started the counters also
 * count the move's own copy, so this is asked only before.) Compared shard by shard, not as one sum: Citus drops the
 * old copies of earlier moves in the background, and a dropped shard takes its counters with it, which a sum read as
 * writes (a quiet cluster's move was verified "under live writes" so).
 */
async function applicationWrites(client: ClientBase): Promise<boolean> {
  const sql = `SELECT coalesce(json_object_agg(relid::text, n_tup_ins + n_tup_upd + n_tup_del), '{}')::text FROM pg_stat_user_tables
                WHERE schemaname IN (SELECT DISTINCT relnamespace::regnamespace::text FROM pg_class WHERE oid IN (SELECT logicalrelid FROM pg_dist_partition))`;
  const counters = async () => {
    const { rows } = await client.query<{ nodeid: number; result: string; success: boolean }>("SELECT nodeid, success, result FROM run_command_on_all_nodes($1)", [sql]);
    return new Map(rows.filter((r) => r.success).map((r) => [r.nodeid, JSON.parse(r.result) as Record<string, number>]));
  };
  const first = await counters();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return wroteBetween(first, await counters());
}

type WriteCounters = ReadonlyMap<number, Readonly<Record<string, number>>>;

/** Whether a shard present in both readings (node, then relation id) counted a write between them. */
export function wroteBetween(before: WriteCounters, after: WriteCounters): boolean {
  for (const [node, now] of after) {
    const then = before.get(node) ?? {};
    if (Object.entries(now).some(([relid, n]) => relid in then && n > then[relid]!)) return true;
  }
  return false;
}

interface VerifyContext {
  readonly id: number;
  readonly command: string;
  readonly details: Record<string, unknown>;
  readonly tables: string[];
  readonly before: Record<string, { rows: number; checksum?: string }>;
  readonly live: boolean;
  readonly checksum: boolean;
}

/**
 * In a quiet window row counts (and checksums) must be equal before and after. While the application writes they
 * move with its writes, so the check is what still holds: every shard has exactly one placement, on an active node,
 * and no move left a subscription or replication slot behind. That writes acknowledged during a move survive it is
 * Citus's catch-up; citus/test/shard-moves.test.ts proves it with a writer running.
 */
async function verifyAfter(client: ClientBase, out: Output, v: VerifyContext): Promise<void> {
  const after = await verifySnapshot(client, v.tables, v.checksum);
  const problems = v.live ? [] : compareVerification(v.before, after);
  if (v.live) {
    const placements = await client.query<{ shardid: string; n: number }>(
      `SELECT p.shardid, count(*) FILTER (WHERE n.isactive)::int AS n FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
         JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_partition d USING (logicalrelid)
        WHERE d.partmethod = 'h' GROUP BY 1 HAVING count(*) FILTER (WHERE n.isactive) <> 1 LIMIT 5`,
    );
    for (const r of placements.rows) problems.push(`shard ${r.shardid} has ${r.n} active placements (expected 1)`);
    const left = await readMoveHealth(client);
    for (const s of left.subscriptions) problems.push(`subscription ${s.name} left on ${s.node}`);
    for (const s of left.slots) problems.push(`replication slot ${s.name} left on ${s.node}`);
  }
  if (problems.length > 0) {
    await finishOperation(client, v.id, "failed", { ...v.details, verification: problems });
    throw new ShardctlError(
      `verification failed after ${v.command}: ${problems.join("; ")}${v.live ? "" : ". No writes were seen when it started: if the application started writing since, counts move with it (docs/runbooks/rebalance.md)"}`,
      5,
    );
  }
  if (v.live) {
    const moved = v.tables.map((t) => `${t} ${signed(after[t]!.rows - v.before[t]!.rows)}`).join(", ");
    out.line(`verified under live writes: every shard has one active placement, no subscription or slot left behind; row counts moved with the writes (${moved})`);
  } else {
    out.line(`verified: ${v.tables.length} distributed table(s), row counts unchanged${v.checksum ? " and checksums equal" : ""}`);
  }
}

const signed = (n: number) => (n >= 0 ? `+${n}` : String(n));

/**
 * Polls the moves in flight on a connection of its own while a synchronous Citus call holds the command's. Prints the
 * moves when one starts or changes phase, and again every 5 s on a terminal or 30 s in a log; every new problem at once.
 */
export function watchMoves(url: string, out: Output, pollMs = 5000): { stop(): void } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const reported = new Set<string>();
  let lastPrinted = 0;
  let lastPhase = "";
  const quietMs = process.stdout.isTTY ? pollMs : 30_000;
  const done = (async () => {
    const client = await connect(url, "shardctl-watch").catch(() => undefined);
    if (!client) return;
    try {
      while (!stopped) {
        const health = await readMoveHealth(client).catch(() => undefined);
        if (health && !stopped) {
          // Which moves, in which phase: a new line when that changes, else every quietMs (the lag in it moves always).
          const phase = health.moves.map((m) => `${m.shardId}:${m.status}`).join(",");
          if (phase && (phase !== lastPhase || Date.now() - lastPrinted >= quietMs)) {
            for (const l of describeMoveHealth({ ...health, problems: [] })) out.line(l);
            lastPhase = phase;
            lastPrinted = Date.now();
          }
          for (const p of health.problems) {
            if (reported.has(p)) continue;
            reported.add(p);
            out.line(`STALLED: ${p}`);
          }
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return {
    stop() {
      stopped = true;
      wake?.();
      void done;
    },
  };
}
