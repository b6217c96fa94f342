import { userInfo } from "node:os";
import type { ClientBase } from "pg";

/** The signals an operator's terminal or a process manager sends to end shardctl or tenantctl. */
export const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** shardctl's own advisory lock: one mutating shardctl at a time per cluster. */
export const SHARDCTL_LOCK_KEY = 7_302_615_003n;

export class ShardctlError extends Error {
  constructor(
    message: string,
    /** 2 bad input, 3 refused by a preflight or a lock, 4 the operation failed, 5 verification failed */
    readonly exitCode: 2 | 3 | 4 | 5 = 4,
  ) {
    super(message);
  }
}

const OPS_TABLE = "platform_ops.operations";

/**
 * Records what was done, by whom, and how it ended, in a table on the coordinator. Created on first use, with DDL
 * propagation off: it is coordinator-local bookkeeping, not distributed data.
 */
export async function ensureOperationsLog(client: ClientBase): Promise<void> {
  await client.query("SET citus.enable_ddl_propagation TO off");
  try {
    await client.query("CREATE SCHEMA IF NOT EXISTS platform_ops");
    await client.query(`CREATE TABLE IF NOT EXISTS ${OPS_TABLE} (
      id          bigserial PRIMARY KEY,
      command     text        NOT NULL,
      arguments   jsonb       NOT NULL,
      db_user     text        NOT NULL DEFAULT current_user,
      os_user     text        NOT NULL,
      started_at  timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz,
      status      text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'detached', 'dry-run')),
      details     jsonb       NOT NULL DEFAULT '{}'
    )`);
  } finally {
    await client.query("RESET citus.enable_ddl_propagation");
  }
}

/**
 * Records the start of an operation. With `heldSession` it also records the session `client` is (pid and start
 * time; a pid alone is reused), which the caller keeps open for as long as the operation runs: shardctl's one
 * connection, tenantctl's held one. A row still 'running' whose session is gone was left by a process that ended
 * without recording its end: killed, its terminal closed, its machine lost (abandonedOperations).
 */
export async function startOperation(client: ClientBase, command: string, args: Record<string, unknown>, options: { heldSession?: boolean } = {}): Promise<number> {
  await ensureOperationsLog(client);
  const session = options.heldSession ? "jsonb_build_object('session', jsonb_build_object('pid', pid, 'backend_start', backend_start))" : "'{}'::jsonb";
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO ${OPS_TABLE} (command, arguments, os_user, details)
     SELECT $1, $2, $3, ${session} FROM pg_stat_activity WHERE pid = pg_backend_pid() RETURNING id`,
    [command, JSON.stringify(args), userInfo().username],
  );
  return Number(rows[0]!.id);
}

export interface AbandonedOperation {
  readonly id: number;
  readonly command: string;
  readonly arguments: Record<string, unknown>;
  readonly osUser: string;
  readonly startedAt: string;
}

const ABANDONED_REASON =
  "abandoned: the process that ran it ended without recording an end (killed, its terminal closed, its machine lost); what it changed before that stays changed";

/**
 * Operations recorded as running whose session is gone. Session-less rows (shardctl's, before sessions were recorded)
 * only when `shardctlLockHeld`: no shardctl can be running them then. Session-less tenantctl rows (before tenantctl
 * held a session) are never judged: nothing tells whether their run still goes on.
 */
function abandonedWhere(shardctlLockHeld: boolean): string {
  // A role sees another role's sessions with backend_start NULL (only its members' and pg_read_all_stats see it):
  // tenantctl as the migration role judging a superuser's shardctl. Such a session, its pid alive, counts as alive; a
  // pid reused meanwhile only delays the verdict.
  const gone = `o.details ? 'session' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                  WHERE a.pid = (o.details #>> '{session,pid}')::int
                    AND (a.backend_start IS NULL OR a.backend_start = (o.details #>> '{session,backend_start}')::timestamptz))`;
  const legacy = shardctlLockHeld ? ` OR (NOT o.details ? 'session' AND o.command NOT LIKE 'tenantctl %')` : "";
  return `o.status = 'running' AND (${gone}${legacy})`;
}

const abandonedRow = (r: { id: string; command: string; arguments: Record<string, unknown>; os_user: string; started_at: Date }): AbandonedOperation => ({
  id: Number(r.id),
  command: r.command,
  arguments: r.arguments,
  osUser: r.os_user,
  startedAt: r.started_at.toISOString(),
});

/** What `shardctl status` lists: operations left running by a shardctl that is gone. Changes nothing. */
export async function abandonedOperations(client: ClientBase): Promise<AbandonedOperation[]> {
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [OPS_TABLE]);
  if (exists.rows[0]?.t === null) return [];
  const { rows } = await client.query(`SELECT id, command, arguments, os_user, started_at FROM ${OPS_TABLE} o WHERE ${abandonedWhere(false)} ORDER BY id`);
  return rows.map(abandonedRow);
}

/**
 * Closes, as failed, the operations abandoned (see abandonedOperations), and returns them. `shardctlLockHeld` (shardctl
 * under its lock) also closes shardctl's session-less rows; tenantctl, which takes no cluster-wide lock, closes only
 * rows whose recorded session is gone.
 */
export async function closeAbandonedOperations(client: ClientBase, options: { shardctlLockHeld: boolean }): Promise<AbandonedOperation[]> {
  await ensureOperationsLog(client);
  const { rows } = await client.query(
    `UPDATE ${OPS_TABLE} o SET status = 'failed', finished_at = now(), details = o.details || jsonb_build_object('error', $1::text)
      WHERE ${abandonedWhere(options.shardctlLockHeld)} RETURNING id, command, arguments, os_user, started_at`,
    [ABANDONED_REASON],
  );
  return rows.map(abandonedRow).sort((a, b) => a.id - b.id);
}

export function describeAbandoned(ops: readonly AbandonedOperation[], closed: boolean): string[] {
  return ops.map((o) => {
    // Where to look before running it again: the shards' placements, or tenantctl's per-tenant moves (each resumes
    // from its recorded phase).
    const look = o.command.startsWith("tenantctl ") ? "tenantctl status shows its tenants' moves" : `shardctl status shows where the shards are${closed ? "" : " (above)"}`;
    return (
      `${closed ? "closed" : "ABANDONED"}: operation ${o.id} (${o.command} ${JSON.stringify(o.arguments)}, started ${o.startedAt} by ${o.osUser}) ` +
      `was left running by a process that ended before it finished${closed ? "; recorded as failed" : ""}. ` +
      `What it changed stays changed: ${look}; run the command again to finish it`
    );
  });
}

export async function finishOperation(client: ClientBase, id: number, status: "succeeded" | "failed" | "detached" | "dry-run", details: Record<string, unknown> = {}): Promise<void> {
  await client.query(`UPDATE ${OPS_TABLE} SET finished_at = now(), status = $2, details = $3 WHERE id = $1`, [id, status, JSON.stringify(details)]);
}

/** Refuses a second concurrent shardctl, naming the one that holds the lock. */
export async function takeLock(client: ClientBase): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS locked", [SHARDCTL_LOCK_KEY.toString()]);
  if (rows[0]?.locked) return;
  const holder = await client.query<{ pid: number; usename: string; application_name: string; state: string; seconds: number; query: string }>(
    `SELECT a.pid, a.usename, a.application_name, a.state, extract(epoch FROM now() - a.state_change)::int AS seconds, left(a.query, 160) AS query
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint`,
    [SHARDCTL_LOCK_KEY.toString()],
  );
  const h = holder.rows[0];
  if (!h) throw new ShardctlError("another shardctl is running: wait for it, or see platform_ops.operations", 3);
  // A shardctl killed during a synchronous move leaves its session running the statement to its end, holding this
  // lock: say what that session does, so the operator can wait for it or stop it knowingly.
  const doing = h.state === "active" ? `running for ${h.seconds} s: ${h.query.replace(/\s+/g, " ")}` : `${h.state} for ${h.seconds} s`;
  throw new ShardctlError(
    `another shardctl is running (coordinator session ${h.pid}, ${h.usename}, ${h.application_name}; ${doing}): wait for it. ` +
      `If its shardctl is gone, the session still finishes that statement; SELECT pg_cancel_backend(${h.pid}) stops it (a move is rolled back)`,
    3,
  );
}

/** Row counts (and optionally content checksums) of every distributed table, to compare before and after. */
export async function verifySnapshot(client: ClientBase, tables: readonly string[], checksum: boolean): Promise<Record<string, { rows: number; checksum?: string }>> {
  const result: Record<string, { rows: number; checksum?: string }> = {};
  for (const table of tables) {
    const quoted = table.split(".").map((p) => `"${p.replace(/"/g, '""')}"`).join(".");
    const { rows } = await client.query<{ n: string; c: string | null }>(
      checksum ? `SELECT count(*) AS n, md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) AS c FROM ${quoted} t` : `SELECT count(*) AS n, NULL AS c FROM ${quoted}`,
    );
    result[table] = { rows: Number(rows[0]!.n), ...(checksum ? { checksum: rows[0]!.c ?? "" } : {}) };
  }
  return result;
}

export function compareVerification(before: Record<string, { rows: number; checksum?: string }>, after: Record<string, { rows: number; checksum?: string }>): string[] {
  const problems: string[] = [];
  for (const [table, b] of Object.entries(before)) {
    const a = after[table];
    if (!a) problems.push(`${table}: missing after the operation`);
    else if (a.rows !== b.rows) problems.push(`${table}: ${b.rows} rows before, ${a.rows} after`);
    else if (b.checksum !== undefined && a.checksum !== b.checksum) problems.push(`${table}: content checksum changed`);
  }
  return problems;
}
