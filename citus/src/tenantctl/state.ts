/**
 * A tenant's move as recorded in the home database (platform.tenant_moves, migration 0014), its placement, and the
 * lock that keeps two runs off the same tenant.
 */
import type pg from "pg";
import { HOME_DATABASE } from "../databases.js";
import { type Db, TenantctlError } from "./context.js";

export const PHASES = ["fencing", "copying", "streaming", "cutover", "switched", "rollback_window", "reversed", "completed"] as const;
export type Phase = (typeof PHASES)[number];

export interface MoveRow {
  tenant_id: string;
  source: string;
  target: string;
  direction: "forward" | "reverse";
  phase: Phase;
  slot: string | null;
  publication: string | null;
  reverse_slot: string | null;
  reverse_publication: string | null;
  copy_lsn: string | null;
  cutover_lsn: string | null;
  reverse_from_lsn: string | null;
  rows_copied: string;
  cutover_ms: number | null;
  cutover_attempts: number;
  error: string | null;
  started_at: Date;
  phase_at: Date;
  finished_at: Date | null;
}

const COLUMNS = "tenant_id::text, source, target, direction, phase, slot, publication, reverse_slot, reverse_publication, copy_lsn::text, cutover_lsn::text, reverse_from_lsn::text, rows_copied, cutover_ms, cutover_attempts, error, started_at, phase_at, finished_at";

export async function readMove(home: Db, tenantId: string): Promise<MoveRow | null> {
  const { rows } = await home.pool.query<MoveRow>(`SELECT ${COLUMNS} FROM platform.tenant_moves WHERE tenant_id = $1`, [tenantId]);
  return rows[0] ?? null;
}

export async function listMoves(home: Db, all: boolean): Promise<(MoveRow & { code: string | null })[]> {
  const { rows } = await home.pool.query<MoveRow & { code: string | null }>(
    `SELECT ${COLUMNS.split(", ").map((c) => `m.${c}`).join(", ")}, t.code
       FROM platform.tenant_moves m LEFT JOIN platform.tenants t ON t.id = m.tenant_id
      ${all ? "" : "WHERE m.phase <> 'completed'"} ORDER BY m.phase_at`,
  );
  return rows;
}

/** Starts a new move record, replacing a completed one. */
export async function startMove(home: Db, row: Pick<MoveRow, "tenant_id" | "source" | "target" | "slot" | "publication" | "reverse_slot" | "reverse_publication">): Promise<void> {
  await home.pool.query(
    `INSERT INTO platform.tenant_moves (tenant_id, source, target, direction, phase, slot, publication, reverse_slot, reverse_publication)
     VALUES ($1, $2, $3, 'forward', 'fencing', $4, $5, $6, $7)
     ON CONFLICT (tenant_id) DO UPDATE SET source = EXCLUDED.source, target = EXCLUDED.target, direction = 'forward', phase = 'fencing',
       slot = EXCLUDED.slot, publication = EXCLUDED.publication, reverse_slot = EXCLUDED.reverse_slot, reverse_publication = EXCLUDED.reverse_publication,
       copy_lsn = NULL, cutover_lsn = NULL, reverse_from_lsn = NULL, rows_copied = 0, cutover_ms = NULL, cutover_attempts = 0, error = NULL,
       started_at = EXCLUDED.started_at, phase_at = EXCLUDED.phase_at, finished_at = NULL`,
    [row.tenant_id, row.source, row.target, row.slot, row.publication, row.reverse_slot, row.reverse_publication],
  );
}

type Updatable = Partial<Omit<MoveRow, "tenant_id" | "started_at" | "phase_at">>;

/** Records a phase (and any other fields) in one statement; `client` lets the cutover's switch do it in its transaction. */
export async function recordMove(q: Pick<pg.ClientBase, "query"> | Db, tenantId: string, fields: Updatable): Promise<void> {
  const target = "pool" in q ? q.pool : q;
  const entries = Object.entries(fields);
  const sets = entries.map(([k], i) => `${k} = $${i + 2}`);
  if (fields.phase) sets.push("phase_at = now()");
  await target.query(`UPDATE platform.tenant_moves SET ${sets.join(", ")} WHERE tenant_id = $1`, [tenantId, ...entries.map(([, v]) => v)]);
}

export async function placementOf(home: Db, tenantId: string): Promise<{ database: string; version: number }> {
  const { rows } = await home.pool.query<{ database: string; version: number }>("SELECT database, version FROM platform.tenant_placements WHERE tenant_id = $1", [tenantId]);
  return rows[0] ?? { database: HOME_DATABASE, version: 0 };
}

/** The cutover's switch: the registry names `database` for the tenant, one version later. */
export const PLACE_SQL = `INSERT INTO platform.tenant_placements (tenant_id, database) VALUES ($1, $2)
  ON CONFLICT (tenant_id) DO UPDATE SET database = EXCLUDED.database, version = platform.tenant_placements.version + 1, placed_at = EXCLUDED.placed_at`;

/** Session lock class for tenantctl's per-tenant lock ('TNCT'); the tenant's hash is the second key. */
const LOCK_CLASS = 1414415188;

/**
 * Takes the tenant's lock on a connection of its own, held until the connection ends: a killed tenantctl's lock dies
 * with its connection. A second run on the same tenant is refused (exit 3), naming the holder.
 */
export async function lockTenant(home: Db, tenantId: string, code: string): Promise<pg.Client> {
  const client = await home.client();
  await client.query("SET application_name = 'tenantctl'");
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked", [LOCK_CLASS, tenantId]);
  if (rows[0]?.locked) return client;
  const holder = await client.query<{ pid: number; application_name: string; backend_start: Date }>(
    `SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = (hashtext($2)::bigint & 4294967295)::oid`,
    [LOCK_CLASS, tenantId],
  );
  await client.end().catch(() => {});
  const h = holder.rows[0];
  throw new TenantctlError(`another tenantctl is working on tenant ${code}${h ? ` (backend pid ${h.pid} since ${h.backend_start.toISOString()})` : ""}: wait for it, or see tenantctl status`, 3);
}
