import { userInfo } from "node:os";
import type { ClientBase } from "pg";

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

export async function startOperation(client: ClientBase, command: string, args: Record<string, unknown>): Promise<number> {
  await ensureOperationsLog(client);
  const { rows } = await client.query<{ id: string }>(`INSERT INTO ${OPS_TABLE} (command, arguments, os_user) VALUES ($1, $2, $3) RETURNING id`, [
    command,
    JSON.stringify(args),
    userInfo().username,
  ]);
  return Number(rows[0]!.id);
}

export async function finishOperation(client: ClientBase, id: number, status: "succeeded" | "failed" | "detached" | "dry-run", details: Record<string, unknown> = {}): Promise<void> {
  await client.query(`UPDATE ${OPS_TABLE} SET finished_at = now(), status = $2, details = $3 WHERE id = $1`, [id, status, JSON.stringify(details)]);
}

/** Refuses a second concurrent shardctl, naming the one that holds the lock. */
export async function takeLock(client: ClientBase): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS locked", [SHARDCTL_LOCK_KEY.toString()]);
  if (rows[0]?.locked) return;
  const holder = await client.query<{ pid: number; usename: string; application_name: string }>(
    `SELECT a.pid, a.usename, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint`,
    [SHARDCTL_LOCK_KEY.toString()],
  );
  const h = holder.rows[0];
  throw new ShardctlError(`another shardctl is running${h ? ` (pid ${h.pid}, ${h.usename}, ${h.application_name})` : ""}: wait for it, or see platform_ops.operations`, 3);
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
