import type { Queryable } from "../db/database.js";

/** Where an erasure request stands: derived from its timestamps. */
export type ErasureState = "scheduled" | "cancelled" | "erasing" | "erased";

/**
 * platform.tenant_erasures (migration 0010): the platform's record of one erasure request. It outlives the tenant
 * and holds none of its data: the id, who asked and cancelled, when, and how many rows went from each table.
 */
export interface ErasureRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly state: ErasureState;
  readonly previousStatus: "active" | "suspended";
  readonly requestedBy: string;
  readonly requestedAt: Date;
  readonly requestId: string | null;
  readonly eraseAfter: Date;
  readonly cancelledBy: string | null;
  readonly cancelledAt: Date | null;
  readonly startedAt: Date | null;
  readonly erasedAt: Date | null;
  readonly rowCounts: Record<string, number>;
}

export interface NewErasure {
  readonly tenantId: string;
  readonly previousStatus: "active" | "suspended";
  readonly requestedBy: string;
  readonly requestId: string;
  readonly graceSeconds: number;
}

const COLUMNS = "id, tenant_id, previous_status, requested_by, requested_at, request_id, erase_after, cancelled_by, cancelled_at, started_at, erased_at, row_counts";

function toErasure(row: Record<string, unknown>): ErasureRecord {
  const state: ErasureState = row.cancelled_at ? "cancelled" : row.erased_at ? "erased" : row.started_at ? "erasing" : "scheduled";
  return {
    id: row.id as string,
    tenantId: row.tenant_id as string,
    state,
    previousStatus: row.previous_status as ErasureRecord["previousStatus"],
    requestedBy: row.requested_by as string,
    requestedAt: row.requested_at as Date,
    requestId: (row.request_id as string | null) ?? null,
    eraseAfter: row.erase_after as Date,
    cancelledBy: (row.cancelled_by as string | null) ?? null,
    cancelledAt: (row.cancelled_at as Date | null) ?? null,
    startedAt: (row.started_at as Date | null) ?? null,
    erasedAt: (row.erased_at as Date | null) ?? null,
    rowCounts: Object.fromEntries(Object.entries(row.row_counts as Record<string, unknown>).map(([table, n]) => [table, Number(n)])),
  };
}

/**
 * Row-level security admits these statements in a platform administrator's transaction, or in the erasure job's
 * transaction for its one tenant (app.tenant_erasure with app.tenant_id): never in a tenant's.
 */
export class ErasureRepository {
  constructor(private readonly db: Queryable) {}

  /** The tenant's request that is not cancelled (scheduled, erasing or erased), locked until the transaction ends. */
  async open(tenantId: string): Promise<ErasureRecord | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.tenant_erasures WHERE tenant_id = $1 AND cancelled_at IS NULL FOR UPDATE`, [tenantId]);
    return rows[0] ? toErasure(rows[0]) : undefined;
  }

  /** Every request for the tenant id, newest first (cancelled ones too). */
  async history(tenantId: string): Promise<ErasureRecord[]> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.tenant_erasures WHERE tenant_id = $1 ORDER BY requested_at DESC, id`, [tenantId]);
    return rows.map(toErasure);
  }

  async request(e: NewErasure): Promise<ErasureRecord> {
    const { rows } = await this.db.query(
      `INSERT INTO platform.tenant_erasures (tenant_id, previous_status, requested_by, request_id, erase_after)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING ${COLUMNS}`,
      [e.tenantId, e.previousStatus, e.requestedBy, e.requestId, e.graceSeconds],
    );
    return toErasure(rows[0]!);
  }

  /** Cancels a request that has not started; undefined when there is none to cancel (started, erased, or none). */
  async cancel(id: string, by: string, requestId: string): Promise<ErasureRecord | undefined> {
    const { rows } = await this.db.query(
      `UPDATE platform.tenant_erasures SET cancelled_by = $2, cancelled_at = now(), cancel_request_id = $3
        WHERE id = $1 AND cancelled_at IS NULL AND started_at IS NULL RETURNING ${COLUMNS}`,
      [id, by, requestId],
    );
    return rows[0] ? toErasure(rows[0]) : undefined;
  }

  /** The job begins (or resumes): from here on the request cannot be cancelled. */
  async start(id: string): Promise<void> {
    // Not COALESCE(started_at, now()): Citus refuses a non-immutable function inside COALESCE in a modification.
    await this.db.query("UPDATE platform.tenant_erasures SET started_at = now() WHERE id = $1 AND started_at IS NULL", [id]);
  }

  /** Adds rows deleted from `table` to the record, in the transaction that deleted them. */
  async count(id: string, table: string, rows: number): Promise<void> {
    if (rows === 0) return;
    await this.db.query(
      `UPDATE platform.tenant_erasures
          SET row_counts = jsonb_set(row_counts, ARRAY[$2::text], to_jsonb(COALESCE((row_counts ->> $2)::bigint, 0) + $3::bigint))
        WHERE id = $1`,
      [id, table, rows],
    );
  }

  async finish(id: string): Promise<ErasureRecord> {
    const { rows } = await this.db.query(`UPDATE platform.tenant_erasures SET erased_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
    return toErasure(rows[0]!);
  }
}
