/**
 * What a shard move in flight is doing, read from every node: Citus's own progress (get_rebalance_progress), the
 * subscription on the target that replicates the writes made during the move, the replication slot on the source that
 * holds WAL for it, and the background task that runs it. A move that does not catch up is named with its cause, so
 * shardctl never waits silently.
 */
import type { ClientBase } from "pg";
import { formatBytes, nodeKey } from "./analysis.js";

/** How long a subscription may receive nothing from its source before shardctl calls the move stalled. */
export const STALL_AFTER_SECONDS = 60;

export interface MoveInFlight {
  readonly shardId: number;
  readonly table: string;
  readonly operation: string;
  readonly source: string;
  readonly target: string;
  /** Citus's progress status for the move (e.g. "Copying Data", "Catching Up"). */
  readonly status: string;
  /** WAL the target has yet to apply: source LSN less target LSN, when Citus reports both. */
  readonly lagBytes: number | null;
}

export interface SubscriptionHealth {
  readonly node: string;
  readonly name: string;
  readonly owner: string;
  /** Citus creates the subscription disabled and enables it after the copy: until then no apply worker is expected. */
  readonly enabled: boolean;
  /** The apply worker is running (it restarts every wal_retrieve_retry_interval after each error). */
  readonly applying: boolean;
  /** pg_stat_subscription_stats.apply_error_count: every error the apply worker hit since the subscription exists. */
  readonly applyErrors: number;
  /** Seconds since the apply worker last heard from the source, or null when it is not running. */
  readonly silentSeconds: number | null;
}

export interface SlotHealth {
  readonly node: string;
  readonly name: string;
  readonly active: boolean;
  /** WAL the slot keeps on its node: current LSN less restart_lsn. */
  readonly retainedBytes: number;
  /** reserved, extended, unreserved or lost (max_slot_wal_keep_size). */
  readonly walStatus: string;
}

export interface TaskHealth {
  readonly jobId: number;
  readonly taskId: number;
  readonly status: string;
  readonly retries: number;
  readonly message: string;
  /** Seconds the task's backend has run its current command, when it is running. */
  readonly runningSeconds: number | null;
}

/**
 * A move's replication slot being created on its source, waiting for older transactions there to end: a logical slot
 * can only start from a point no transaction then open precedes, so PostgreSQL waits for each of them. Until they
 * end, the move does not start copying. One long transaction on the source (a report, a forgotten BEGIN, a
 * distributed transaction through the coordinator) holds every move from that node.
 */
export interface SlotWait {
  readonly node: string;
  readonly slot: string;
  readonly waitedSeconds: number;
  readonly blockers: { pid: number; application: string; state: string; openSeconds: number | null; query: string }[];
}

export interface MoveHealth {
  readonly moves: MoveInFlight[];
  readonly slotWaits: SlotWait[];
  readonly subscriptions: SubscriptionHealth[];
  readonly slots: SlotHealth[];
  readonly tasks: TaskHealth[];
  /** Distributed tables whose FORCE ROW LEVEL SECURITY stops a move's subscription (docs/ARCHITECTURE.md). */
  readonly forcedTables: string[];
  /** The newest error line about logical replication in a target's log, when the node's log can be read through SQL. */
  readonly errors: { node: string; line: string }[];
  /** Why the moves are not catching up, one line each; empty when they are. */
  readonly problems: string[];
}

const SUBSCRIPTIONS = `SELECT coalesce(json_agg(json_build_object(
    'name', s.subname, 'owner', s.subowner::regrole::text, 'enabled', s.subenabled, 'pid', st.pid,
    'silent', extract(epoch FROM now() - st.last_msg_receipt_time), 'errors', coalesce(ss.apply_error_count, 0))), '[]')
  FROM pg_subscription s
  LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
  LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid
 WHERE s.subname LIKE 'citus\\_shard\\_%'`;

const SLOTS = `SELECT coalesce(json_agg(json_build_object(
    'name', slot_name, 'active', active, 'retained', pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 'status', wal_status)), '[]')
  FROM pg_replication_slots WHERE slot_name LIKE 'citus\\_shard\\_%'`;

const SLOT_WAITS = `SELECT coalesce(json_agg(json_build_object(
    'slot', substring(w.query FROM 'CREATE_REPLICATION_SLOT (\\S+)'), 'waited', extract(epoch FROM now() - w.state_change),
    'blockers', (SELECT coalesce(json_agg(json_build_object('pid', b.pid, 'application', b.application_name, 'state', b.state,
                   'open', extract(epoch FROM now() - b.xact_start), 'query', left(b.query, 120))), '[]')
                   FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(w.pid))))), '[]')
  FROM pg_stat_activity w
 WHERE w.backend_type = 'walsender' AND w.wait_event_type = 'Lock' AND w.wait_event = 'transactionid'
   AND w.query LIKE 'CREATE\\_REPLICATION\\_SLOT citus\\_shard\\_%'`;

// The last 64 KB of the server's log, when it writes one PostgreSQL can name (logging_collector); otherwise ''.
const LOG_TAIL = `SELECT coalesce((SELECT pg_read_file(f, greatest(0, (pg_stat_file(f)).size - 65536), 65536)
                                     FROM pg_current_logfile() f WHERE f IS NOT NULL), '')`;

/** One query on every node (coordinator included), through Citus's own connections: no credentials of our own. */
async function onEveryNode(client: ClientBase, sql: string): Promise<{ node: string; ok: boolean; result: string }[]> {
  const { rows } = await client.query<{ nodename: string; nodeport: number; success: boolean; result: string }>(
    `SELECT n.nodename, n.nodeport, r.success, r.result FROM run_command_on_all_nodes($1) r JOIN pg_dist_node n USING (nodeid)`,
    [sql],
  );
  return rows.map((r) => ({ node: nodeKey(r.nodename, r.nodeport), ok: r.success, result: r.result }));
}

function parsed<T>(answers: { node: string; ok: boolean; result: string }[]): (T & { node: string })[] {
  return answers.filter((a) => a.ok).flatMap((a) => (JSON.parse(a.result) as T[]).map((row) => ({ ...row, node: a.node })));
}

/** Distributed tables with FORCE ROW LEVEL SECURITY: a shard move of theirs cannot finish while anything writes. */
export async function forcedRowSecurityTables(client: ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.oid::regclass::text AS name FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
      WHERE p.partmethod = 'h' AND c.relforcerowsecurity ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

export async function readMoveHealth(client: ClientBase): Promise<MoveHealth> {
  const progress = await client.query<{
    shardid: string;
    table_name: string;
    operation_type: string;
    sourcename: string;
    sourceport: number;
    targetname: string;
    targetport: number;
    status: string | null;
    lag: string | null;
  }>(
    `SELECT shardid, table_name::text, operation_type, sourcename, sourceport, targetname, targetport, status,
            pg_wal_lsn_diff(source_lsn, target_lsn) AS lag
       FROM get_rebalance_progress() WHERE progress < 2 ORDER BY shardid`,
  );
  // One line per move: Citus reports every colocated shard of the group; the first stands for the group.
  const seen = new Set<string>();
  const moves: MoveInFlight[] = [];
  for (const r of progress.rows) {
    const key = `${r.sourcename}:${r.sourceport}>${r.targetname}:${r.targetport}`;
    if (seen.has(key)) continue;
    seen.add(key);
    moves.push({
      shardId: Number(r.shardid),
      table: r.table_name,
      operation: r.operation_type,
      source: nodeKey(r.sourcename, r.sourceport),
      target: nodeKey(r.targetname, r.targetport),
      status: r.status ?? "",
      lagBytes: r.lag === null ? null : Math.max(0, Number(r.lag)),
    });
  }
  const slotWaits = moves.length === 0 ? [] : parsed<{ slot: string; waited: number; blockers: { pid: number; application: string; state: string; open: number | null; query: string }[] }>(
    await onEveryNode(client, SLOT_WAITS),
  ).map((w) => ({
    node: w.node,
    slot: w.slot,
    waitedSeconds: Number(w.waited),
    blockers: w.blockers.map((b) => ({ pid: b.pid, application: b.application, state: b.state, openSeconds: b.open === null ? null : Number(b.open), query: b.query })),
  }));
  const subscriptions = parsed<{ name: string; owner: string; enabled: boolean; pid: number | null; silent: number | null; errors: number }>(
    await onEveryNode(client, SUBSCRIPTIONS),
  ).map((s) => ({
    node: s.node,
    name: s.name,
    owner: s.owner,
    enabled: s.enabled,
    applying: s.pid !== null,
    applyErrors: Number(s.errors),
    silentSeconds: s.silent === null ? null : Number(s.silent),
  }));
  const slots = parsed<{ name: string; active: boolean; retained: number | null; status: string | null }>(await onEveryNode(client, SLOTS)).map((s) => ({
    node: s.node,
    name: s.name,
    active: s.active,
    retainedBytes: Number(s.retained ?? 0),
    walStatus: s.status ?? "unknown",
  }));
  const tasks = (
    await client.query<{ job_id: string; task_id: string; status: string; retry_count: number | null; message: string; running: number | null }>(
      `SELECT t.job_id, t.task_id, t.status::text, t.retry_count, t.message, extract(epoch FROM now() - a.query_start) AS running
         FROM pg_dist_background_task t LEFT JOIN pg_stat_activity a ON a.pid = t.pid
        WHERE t.status IN ('running', 'runnable', 'blocked', 'error') ORDER BY t.task_id`,
    )
  ).rows.map((t) => ({
    jobId: Number(t.job_id),
    taskId: Number(t.task_id),
    status: t.status,
    retries: t.retry_count ?? 0,
    message: t.message,
    runningSeconds: t.running === null ? null : Number(t.running),
  }));
  const forcedTables = moves.length > 0 || subscriptions.length > 0 ? await forcedRowSecurityTables(client) : [];
  const failing = subscriptions.filter((s) => s.applyErrors > 0 || (s.enabled && !s.applying));
  const errors = failing.length === 0 ? [] : await lastReplicationErrors(client, new Set(failing.map((s) => s.node)));
  const health = { moves, slotWaits, subscriptions, slots, tasks, forcedTables, errors };
  return { ...health, problems: problemsOf(health) };
}

async function lastReplicationErrors(client: ClientBase, nodes: Set<string>): Promise<{ node: string; line: string }[]> {
  const found: { node: string; line: string }[] = [];
  for (const answer of await onEveryNode(client, LOG_TAIL)) {
    if (!nodes.has(answer.node) || !answer.ok || !answer.result) continue;
    const line = answer.result
      .split("\n")
      .filter((l) => /ERROR/.test(l) && /(logical replication|citus_shard_|subscription|replicate)/i.test(l))
      .at(-1);
    if (line) found.push({ node: answer.node, line: line.trim() });
  }
  return found;
}

/** Who a slot waits for, as the operator can find them: a Citus connection names the coordinator session it serves. */
function describeSlotWait(w: SlotWait): string {
  const who = w.blockers.map((b) => {
    // "citus_internal gpid=10000013151": a distributed transaction; the global pid is node id * 10^10 + the pid there.
    const gpid = /gpid=(\d+)/.exec(b.application)?.[1];
    const origin = gpid ? `, a distributed transaction of global pid ${gpid}` : b.application ? ` (${b.application})` : "";
    return `pid ${b.pid}${origin}, ${b.state}${b.openSeconds === null ? "" : ` with a transaction open ${Math.round(b.openSeconds)} s`}`;
  });
  return (
    `the move's replication slot ${w.slot} on ${w.node} has waited ${Math.round(w.waitedSeconds)} s for older transactions there to end (${who.join("; ") || "pids not readable"}): ` +
    "a logical slot starts only after every transaction open when it was asked for has ended, and the move copies nothing until then"
  );
}

function problemsOf(h: Omit<MoveHealth, "problems">): string[] {
  const problems: string[] = [];
  for (const w of h.slotWaits) if (w.waitedSeconds > STALL_AFTER_SECONDS) problems.push(describeSlotWait(w));
  for (const s of h.subscriptions) {
    const error = h.errors.find((e) => e.node === s.node);
    if (!s.enabled) continue; // still copying: Citus enables the subscription when the copy is done
    if (s.applyErrors > 0 || !s.applying) {
      problems.push(
        `subscription ${s.name} on ${s.node} is not applying the writes made during the move ` +
          `(${s.applyErrors} apply error(s), apply worker ${s.applying ? "restarting" : "not running"})` +
          (error ? `: ${error.line}` : `: the error is in ${s.node}'s PostgreSQL log (journalctl -u postgresql@15-main)`),
      );
    } else if (s.silentSeconds !== null && s.silentSeconds > STALL_AFTER_SECONDS) {
      problems.push(`subscription ${s.name} on ${s.node} has heard nothing from its source for ${Math.round(s.silentSeconds)} s`);
    }
  }
  if (h.forcedTables.length > 0 && problems.length > 0) {
    problems.push(
      `${h.forcedTables.join(", ")} ${h.forcedTables.length === 1 ? "has" : "have"} FORCE ROW LEVEL SECURITY, which stops a move's subscription: ` +
        `the move cannot finish while anything writes. Stop it (SELECT citus_rebalance_stop() or pg_cancel_backend of the move), apply migration ` +
        `0004 (pnpm migrate), and run it again: docs/runbooks/shard-move-stalled.md`,
    );
  }
  for (const slot of h.slots) {
    if (slot.walStatus === "lost") problems.push(`replication slot ${slot.name} on ${slot.node} lost its WAL (max_slot_wal_keep_size): the move will fail and must be run again`);
    else if (!slot.active) problems.push(`replication slot ${slot.name} on ${slot.node} has no reader and keeps ${formatBytes(slot.retainedBytes)} of WAL`);
  }
  for (const t of h.tasks) {
    if (t.status === "error" || t.retries > 0) problems.push(`background task ${t.taskId} of job ${t.jobId} is ${t.status} after ${t.retries} retr${t.retries === 1 ? "y" : "ies"}${t.message ? `: ${t.message.trim()}` : ""}`);
  }
  return problems;
}

/** The move lines `status` and the progress display print. */
export function describeMoveHealth(h: MoveHealth): string[] {
  const lines: string[] = [];
  for (const m of h.moves) {
    lines.push(`moving shard ${m.shardId} (${m.table} and colocated) ${m.source} -> ${m.target}: ${m.status || m.operation}${m.lagBytes === null ? "" : `, ${formatBytes(m.lagBytes)} behind`}`);
  }
  // A short wait is the slot's normal start; past STALL_AFTER_SECONDS it is among the problems below instead.
  for (const w of h.slotWaits) if (w.waitedSeconds <= STALL_AFTER_SECONDS) lines.push(`waiting: ${describeSlotWait(w)}`);
  for (const s of h.slots) lines.push(`slot ${s.name} on ${s.node}: keeps ${formatBytes(s.retainedBytes)} of WAL (${s.walStatus}${s.active ? "" : ", no reader"})`);
  for (const p of h.problems) lines.push(`STALLED: ${p}`);
  return lines;
}
