import type { Queryable } from "../db/database.js";
import type { ExportStoreKind } from "../export-store.js";
import { cursorColumn, keysetAfter, toPage, type After, type Page } from "./page.js";

export type ExportStatus = "queued" | "running" | "done" | "failed";

/** What one table of an export holds: its NDJSON object's key in the store, and how much went into it. */
export interface ExportedTable {
  readonly rows: number;
  readonly bytes: number;
  readonly key: string;
}

/** platform.exports (migration 0016): the record of one export. No tenant data: that is in the store's objects. */
export interface ExportRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly status: ExportStatus;
  readonly requestedBy: string;
  readonly requestId: string | null;
  readonly requestedAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly store: ExportStoreKind;
  readonly tables: Record<string, ExportedTable>;
  readonly expiresAt: Date;
  readonly error: string | null;
  /** The running job's last sign of progress (migration 0018); null before it started. */
  readonly heartbeatAt: Date | null;
}

const COLUMNS = "id, tenant_id, status, requested_by, request_id, requested_at, started_at, finished_at, store, tables, expires_at, error, heartbeat_at";

const toExport = (r: Record<string, unknown>): ExportRecord => ({
  id: r.id as string,
  tenantId: r.tenant_id as string,
  status: r.status as ExportStatus,
  requestedBy: r.requested_by as string,
  requestId: (r.request_id as string | null) ?? null,
  requestedAt: r.requested_at as Date,
  startedAt: (r.started_at as Date | null) ?? null,
  finishedAt: (r.finished_at as Date | null) ?? null,
  store: r.store as ExportStoreKind,
  tables: r.tables as Record<string, ExportedTable>,
  expiresAt: r.expires_at as Date,
  error: (r.error as string | null) ?? null,
  heartbeatAt: (r.heartbeat_at as Date | null) ?? null,
});

/** One tenant's platform.exports: every statement names the tenant, so Citus routes it to the tenant's shard. */
export class ExportRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  /** A queued export; it expires `retentionDays` after it is requested unless the job, finishing, moves that on. */
  async create(e: { requestedBy: string; requestId: string; store: ExportStoreKind; retentionDays: number }): Promise<ExportRecord> {
    const { rows } = await this.db.query(
      `INSERT INTO platform.exports (tenant_id, requested_by, request_id, store, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(days => $5)) RETURNING ${COLUMNS}`,
      [this.tenantId, e.requestedBy, e.requestId, e.store, e.retentionDays],
    );
    return toExport(rows[0]!);
  }

  async find(id: string): Promise<ExportRecord | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.exports WHERE tenant_id = $1 AND id = $2`, [this.tenantId, id]);
    return rows[0] ? toExport(rows[0]) : undefined;
  }

  /** Newest first (by requested_at, then id: the exports_tenant_requested index, migration 0016). */
  async list(options: { limit: number; after?: After }): Promise<Page<ExportRecord>> {
    const params: unknown[] = [this.tenantId, options.limit + 1];
    const where = ["tenant_id = $1"];
    keysetAfter("requested_at", options.after, where, params);
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, ${cursorColumn("requested_at")} FROM platform.exports WHERE ${where.join(" AND ")} ORDER BY requested_at DESC, id DESC LIMIT $2`,
      params,
    );
    return toPage(rows, options.limit, toExport);
  }

  /**
   * The tenant's export queued or running, if any (at most one: migration 0016's exports_one_in_progress), with the
   * seconds since its job last showed progress (its heartbeat, else its start), by the database's clock.
   */
  async inProgress(): Promise<(ExportRecord & { silentSeconds: number | null }) | undefined> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, extract(epoch FROM now() - COALESCE(heartbeat_at, started_at))::float8 AS silent_seconds
         FROM platform.exports WHERE tenant_id = $1 AND status IN ('queued', 'running')`,
      [this.tenantId],
    );
    return rows[0] ? { ...toExport(rows[0]), silentSeconds: (rows[0].silent_seconds as number | null) ?? null } : undefined;
  }

  /**
   * The job begins (or begins again after a crash): running, from now. Undefined when the export is no longer queued
   * or running: given up meanwhile (giveUp), or gone.
   */
  async start(id: string): Promise<Date | undefined> {
    const { rows } = await this.db.query<{ started_at: Date }>(
      `UPDATE platform.exports SET status = 'running', started_at = now(), heartbeat_at = now(), error = NULL
        WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING started_at`,
      [this.tenantId, id],
    );
    return rows[0]?.started_at;
  }

  /** The running job made progress. False when the export is no longer running: given up as stale, or gone. */
  async heartbeat(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query("UPDATE platform.exports SET heartbeat_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'running'", [this.tenantId, id]);
    return rowCount > 0;
  }

  /** Failed without its job: it made no progress for too long, or its job is gone. False when it had ended already. */
  async giveUp(id: string, reason: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      "UPDATE platform.exports SET status = 'failed', finished_at = now(), error = left($3, 2000) WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')",
      [this.tenantId, id, reason],
    );
    return rowCount > 0;
  }

  /**
   * Done: what each table's object holds, and when they expire. The bucket's lifecycle counts an object's age from
   * when it was written, which is after the attempt started: the caller passes that start plus the retention, so the
   * record never promises an object past its deletion. (Computed by the caller: on Citus an UPDATE may not call a
   * STABLE function such as timestamptz + interval on a column.) Undefined when the record is gone (the tenant's
   * erasure deleted it while the job wrote) or no longer running (given up as stale: a new export may be running).
   */
  async finish(id: string, tables: Record<string, ExportedTable>, expiresAt: Date): Promise<ExportRecord | undefined> {
    const { rows } = await this.db.query(
      `UPDATE platform.exports SET status = 'done', finished_at = now(), tables = $3, expires_at = $4
        WHERE tenant_id = $1 AND id = $2 AND status = 'running' RETURNING ${COLUMNS}`,
      [this.tenantId, id, JSON.stringify(tables), expiresAt],
    );
    return rows[0] ? toExport(rows[0]) : undefined;
  }

  /** Given up after its last attempt: the reason, for the tenant to read (never a stack or a connection string). */
  async fail(id: string, reason: string): Promise<void> {
    await this.db.query("UPDATE platform.exports SET status = 'failed', finished_at = now(), error = left($3, 2000) WHERE tenant_id = $1 AND id = $2", [this.tenantId, id, reason]);
  }
}
