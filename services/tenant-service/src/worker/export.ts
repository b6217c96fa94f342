/**
 * tenant.export: writes one NDJSON object per tenant table to the export store (README "Export").
 *
 * - **In the tenant's context.** One transaction that enters the tenant (db/database.ts), so row-level security
 *   confines every read to it and, with several databases, it runs where the tenant's rows are. The cursors of every
 *   table are declared first, one after the other, so the tables are read from snapshots taken within milliseconds.
 * - **Constant memory.** A server-side cursor per table (DECLARE ... CURSOR, then FETCH `fetchRows` at a time):
 *   PostgreSQL renders each row as JSON text, the worker passes it on to the store's stream, and the next FETCH is
 *   sent only when the store has taken the last (stream backpressure). The worker holds one batch of rows at a time.
 *   The cursor is SQL over the same transaction rather than pg-cursor or pg-query-stream, which need a raw client of
 *   their own outside the Database's tenant transaction (its context, its fence, its placement routing).
 * - **Idempotent.** A retry writes the same keys again, overwriting; the record says done only once every object is
 *   stored, in the transaction that read them, with the audit entry.
 *
 * The transaction holds the tenant's cutover lock shared (enter_tenant) while it runs, so a tenantctl cutover of the
 * tenant waits for a running export (bench:exports, local store, 2 cores: 11.4 s for 200,000 items of 1 kB).
 */
import { Readable } from "node:stream";
import type { Task, TaskList } from "graphile-worker";
import type { Database, Queryable } from "../db/database.js";
import { exportObjectKey, exportPrefix, type ExportStore } from "../export-store.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { ExportRepository, type ExportedTable } from "../repositories/exports.js";

export const EXPORT_TASK = "tenant.export";
export const exportJobKey = (tenantId: string, exportId: string): string => `${EXPORT_TASK}:${tenantId}:${exportId}`;
/** Attempts before the export is marked failed; graphile-worker backs off exponentially between them. */
export const EXPORT_MAX_ATTEMPTS = 5;

/**
 * The tables an export holds, each ordered by its primary key (an index scan, no sort) and rendered by PostgreSQL as
 * the row's JSON, less generated columns (items.search is derived from title and body).
 */
export const EXPORT_TABLES = [
  { table: "users", order: "id", omit: [] },
  { table: "items", order: "id", omit: ["search"] },
  { table: "audit_log", order: "occurred_at, id", omit: [] },
  { table: "tenant_metrics", order: "day", omit: [] },
] as const;

/** The JSON text of one row, as the export writes it: also what a test compares an export with. */
export const exportRowSql = (table: (typeof EXPORT_TABLES)[number], tenantId: string): string =>
  `SELECT (to_jsonb(t)${table.omit.map((c) => ` - '${c}'`).join("")})::text AS line FROM platform.${table.table} t WHERE tenant_id = '${tenantId}' ORDER BY ${table.order}`;

export const NDJSON = "application/x-ndjson";

export interface ExportOptions {
  readonly db: Database;
  readonly store: ExportStore;
  /** Rows per FETCH (EXPORT_FETCH_ROWS). */
  readonly fetchRows: number;
  /** Days the objects are kept from the start of the attempt that wrote them (EXPORT_RETENTION_DAYS). */
  readonly retentionDays: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A cursor's rows as NDJSON, one FETCH at a time, counting rows and bytes into `counts`. */
async function* ndjson(tx: Queryable, cursor: string, fetchRows: number, counts: { rows: number; bytes: number }): AsyncGenerator<Buffer> {
  for (;;) {
    const { rows } = await tx.query<{ line: string }>(`FETCH ${fetchRows} FROM ${cursor}`);
    if (rows.length === 0) return;
    const chunk = Buffer.from(rows.map((r) => r.line).join("\n") + "\n", "utf8");
    counts.rows += rows.length;
    counts.bytes += chunk.length;
    yield chunk;
  }
}

/** The export runner's task list (worker.ts runs it apart, in slots and pools of its own). */
export function exportTaskList(options: ExportOptions): TaskList {
  return { [EXPORT_TASK]: exportTask(options) };
}

export function exportTask(options: ExportOptions): Task {
  const { db, store, fetchRows, retentionDays } = options;
  if (!Number.isInteger(fetchRows) || fetchRows < 1) throw new Error(`export fetch size must be a positive whole number (got ${fetchRows})`);

  return async (payload, helpers) => {
    const { tenantId, exportId } = (payload ?? {}) as { tenantId?: string; exportId?: string };
    if (typeof tenantId !== "string" || !UUID.test(tenantId) || typeof exportId !== "string" || !UUID.test(exportId)) {
      throw new Error(`tenant.export needs a tenantId and an exportId (lowercase uuids), got ${JSON.stringify({ tenantId, exportId })}`);
    }
    const context = { tenantId };
    const found = await db.transaction(context, async (tx) => {
      const exports = new ExportRepository(tx, tenantId);
      const record = await exports.find(exportId);
      if (!record || record.status === "done") return record;
      return { ...record, startedAt: await exports.start(exportId) };
    });
    if (!found) {
      // Objects an earlier attempt wrote after the erasure removed the tenant's prefix would otherwise stay until the
      // bucket's lifecycle: removed here, which is nothing when there are none.
      await store.deletePrefix(exportPrefix(tenantId, exportId));
      helpers.logger.info(`export ${exportId} of tenant ${tenantId} no longer exists (the tenant was erased): nothing to export, its objects removed`);
      return;
    }
    if (found.status === "done") return;
    if (found.store !== store.kind) throw new Error(`export ${exportId} was requested for the ${found.store} store, and this worker writes to ${store.kind}: set EXPORT_STORE alike on the service and the worker`);

    const started = Date.now();
    try {
      const finished = await db.transaction(context, async (tx) => {
        const cursors = EXPORT_TABLES.map((t) => ({ table: t, cursor: `export_${t.table}` }));
        for (const { table, cursor } of cursors) await tx.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${exportRowSql(table, tenantId)}`);
        const tables: Record<string, ExportedTable> = {};
        for (const { table, cursor } of cursors) {
          const key = exportObjectKey(tenantId, exportId, table.table);
          const counts = { rows: 0, bytes: 0 };
          await store.write(key, Readable.from(ndjson(tx, cursor, fetchRows, counts), { objectMode: false }), NDJSON);
          await tx.query(`CLOSE ${cursor}`);
          tables[table.table] = { ...counts, key };
        }
        const expiresAt = new Date(found.startedAt!.getTime() + retentionDays * 86_400_000);
        const done = await new ExportRepository(tx, tenantId).finish(exportId, tables, expiresAt);
        if (!done) return undefined;
        const rows = Object.fromEntries(Object.entries(tables).map(([name, t]) => [name, t.rows]));
        await new AuditLogRepository(tx, tenantId).record({ actor: "worker", action: "export.completed", entityType: "export", entityId: exportId, requestId: helpers.job.id, details: { rows, store: store.kind } });
        return done;
      });
      if (!finished) {
        // The tenant's erasure deleted the record while this job wrote, and may have removed the tenant's prefix
        // before the last object landed: what this job wrote goes too.
        await store.deletePrefix(exportPrefix(tenantId, exportId));
        helpers.logger.info(`export ${exportId} of tenant ${tenantId}: its record was deleted while it ran (the tenant was erased); its objects removed`);
        return;
      }
      const total = Object.values(finished.tables).reduce((n, t) => n + t.rows, 0);
      helpers.logger.info(
        `export ${exportId} of tenant ${tenantId}: ${total} rows in ${Date.now() - started} ms to ${store.kind}; peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`,
      );
    } catch (error) {
      if (helpers.job.attempts >= helpers.job.max_attempts) {
        // The record says why in words the tenant may read; the log keeps the error itself.
        await db.transaction(context, (tx) => new ExportRepository(tx, tenantId).fail(exportId, `the export failed after ${helpers.job.attempts} attempts; ask support with the export id`));
      }
      throw error;
    }
  };
}
