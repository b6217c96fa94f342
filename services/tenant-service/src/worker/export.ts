/**
 * tenant.export: writes one NDJSON object per tenant table to the export store (README "Export").
 *
 * - **In short transactions.** Each table is read in keyset order (its primary key), `chunkRows` rows at a time, each
 *   chunk in a transaction of its own that enters the tenant as the service's do (db/database.ts: row-level security
 *   confines it, and with several databases it runs where the tenant's rows are). A transaction that entered the
 *   tenant holds its cutover lock shared until it ends, so a tenantctl cutover of the tenant (await_tenant_quiet,
 *   migration 0012) waits for one chunk, not for the whole export; one long transaction also held back vacuum on
 *   every table of the database for as long as the export ran.
 * - **Across a cutover.** A chunk refused because the tenant is fenced (PT001) is retried by the router (db/placed.ts)
 *   in the tenant's new database when its placement changed; while the cutover is still under way (TenantMoving),
 *   the chunk is tried again after a pause, for up to `fencedRetryMs`, and continues from the same key.
 * - **Consistency.** Each chunk is one snapshot; the export as a whole is not: a change committed while it ran may be
 *   in it or not. Every row is as it was at some moment between the record's startedAt and finishedAt, which the
 *   record keeps and the API shows (README "Export").
 * - **Constant memory.** One chunk at a time: PostgreSQL renders each row as JSON text, the worker passes the chunk
 *   on to the store's stream, and the next chunk is read only when the store has taken the last (stream
 *   backpressure).
 * - **Idempotent.** A retry writes the same keys again, overwriting; the record says done only once every object is
 *   stored, with the audit entry, in one last transaction.
 * - **A heartbeat.** A chunk's transaction writes the record's heartbeat_at every `heartbeatMs` (migration 0018). The
 *   service gives up an export whose heartbeat is older than EXPORT_STALE_SECONDS when the tenant asks for another
 *   (routes/exports.ts): its worker died and the job did not run again (a worker that recorded no liveness keeps it 4
 *   hours, dead-workers.ts; or its attempts were spent). A job that finds
 *   its export given up (or deleted) stops, and removes what it wrote.
 */
import { Readable } from "node:stream";
import type { Task, TaskList } from "graphile-worker";
import type { Database, Queryable } from "../db/database.js";
import { TenantMoving, tenantFenced } from "../db/placed.js";
import { exportObjectKey, exportPrefix, type ExportStore } from "../export-store.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { ExportRepository, type ExportedTable } from "../repositories/exports.js";

export const EXPORT_TASK = "tenant.export";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const exportJobKey = (tenantId: string, exportId: string): string => `${EXPORT_TASK}:${tenantId}:${exportId}`;
/** The tenant an export job's key names (exportJobKey), or undefined for a key that is not one. */
export function tenantOfExportJobKey(key: string): string | undefined {
  const [task, tenantId, exportId] = key.split(":");
  return task === EXPORT_TASK && tenantId && exportId && UUID.test(tenantId) && UUID.test(exportId) ? tenantId : undefined;
}
/** Attempts before the export is marked failed; graphile-worker backs off exponentially between them. */
export const EXPORT_MAX_ATTEMPTS = 5;

/** A column of a table's primary key after tenant_id, as the export's keyset reads and compares it. */
interface KeyColumn {
  readonly column: string;
  readonly type: "uuid" | "timestamptz" | "date";
}

/**
 * The tables an export holds, each read in the order of its primary key (an index scan, no sort) and rendered by
 * PostgreSQL as the row's JSON, less generated columns (items.search is derived from title and body).
 */
export const EXPORT_TABLES = [
  { table: "users", key: [{ column: "id", type: "uuid" }], omit: [] },
  { table: "items", key: [{ column: "id", type: "uuid" }], omit: ["search"] },
  { table: "audit_log", key: [{ column: "occurred_at", type: "timestamptz" }, { column: "id", type: "uuid" }], omit: [] },
  { table: "tenant_metrics", key: [{ column: "day", type: "date" }], omit: [] },
] as const satisfies readonly { table: string; key: readonly KeyColumn[]; omit: readonly string[] }[];

type ExportTable = (typeof EXPORT_TABLES)[number];

/**
 * A key column as text that casts back to the same value: a timestamp to the microsecond in UTC (a JavaScript Date
 * keeps milliseconds, and the next chunk would skip rows of the same millisecond), whatever the session's settings.
 */
const keyText = ({ column, type }: KeyColumn): string =>
  type === "timestamptz" ? `to_char(t.${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` : type === "date" ? `to_char(t.${column}, 'YYYY-MM-DD')` : `t.${column}::text`;

/**
 * One chunk of a table: the JSON text of each row (what the export writes: also what a test compares an export
 * with) and its key, after the key `$2...` when `after` (absent: from the first row), at most `$limit` rows.
 */
export const exportChunkSql = (table: ExportTable, options: { after: boolean }): string => {
  const key = table.key as readonly KeyColumn[];
  const columns = key.map((k) => k.column).join(", ");
  const after = options.after ? ` AND (${columns}) > (${key.map((k, i) => `$${i + 3}::${k.type}`).join(", ")})` : "";
  // The rows are chosen first and rendered after: where the planner misjudges the tenant's size (statistics not yet
  // gathered after a bulk import) it may sort the tenant's rows instead of walking the primary key, and with to_jsonb
  // in the same query level it rendered every one of them for each chunk (965 ms a chunk of 40 at 10,000 rows).
  return (
    `SELECT (to_jsonb(t)${table.omit.map((c) => ` - '${c}'`).join("")})::text AS line, ${key.map((k, i) => `${keyText(k)} AS k${i}`).join(", ")}` +
    ` FROM (SELECT * FROM platform.${table.table} WHERE tenant_id = $1${after} ORDER BY ${columns} LIMIT $2) t ORDER BY ${columns}`
  );
};

export const NDJSON = "application/x-ndjson";

export interface ExportOptions {
  readonly db: Database;
  readonly store: ExportStore;
  /** Rows per chunk, each read in a transaction of its own (EXPORT_FETCH_ROWS). */
  readonly chunkRows: number;
  /** Days the objects are kept from the start of the attempt that wrote them (EXPORT_RETENTION_DAYS). */
  readonly retentionDays: number;
  /** How long a chunk is tried again while the tenant is being cut over (tenantctl's cutover takes under 2 s). @default 30000 */
  readonly fencedRetryMs?: number;
  /** The record's heartbeat at most this often (worker.ts: EXPORT_STALE_SECONDS / 10). @default 60000 */
  readonly heartbeatMs?: number;
}

/** The export was given up (its heartbeat went stale) or deleted (the tenant erased) while this job ran. */
class ExportNoLongerRunning extends Error {
  readonly code = "export_no_longer_running";
}

/** One run of the job: which export, and when its heartbeat is due. */
interface Run {
  readonly tenantId: string;
  readonly exportId: string;
  nextHeartbeat: number;
}

/**
 * `work` in a transaction that enters the tenant, tried again while the tenant is fenced where its rows were read
 * (a cutover under way): the router has then re-read the placement already (db/placed.ts), and a plain database
 * reports the fence itself. Anything else, or a fence that outlasts `retryMs`, fails the attempt.
 */
async function inTenantRetryingFence<T>(db: Database, tenantId: string, retryMs: number, work: (tx: Queryable) => Promise<T>): Promise<T> {
  const deadline = Date.now() + retryMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
    try {
      return await db.transaction({ tenantId }, work);
    } catch (error) {
      if (!(error instanceof TenantMoving || tenantFenced(error)) || Date.now() + pause > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * A table's rows as NDJSON, one chunk (one short transaction) at a time, counting rows and bytes into `counts`; the
 * heartbeat, when due, goes in the chunk's transaction.
 */
async function* tableChunks(options: ExportOptions, run: Run, table: ExportTable, counts: { rows: number; bytes: number }): AsyncGenerator<Buffer> {
  const { tenantId, exportId } = run;
  const retryMs = options.fencedRetryMs ?? 30_000;
  let after: string[] | undefined;
  for (;;) {
    const sql = exportChunkSql(table, { after: after !== undefined });
    const params = [tenantId, options.chunkRows, ...(after ?? [])];
    const rows = await inTenantRetryingFence(options.db, tenantId, retryMs, async (tx) => {
      if (Date.now() >= run.nextHeartbeat) {
        if (!(await new ExportRepository(tx, tenantId).heartbeat(exportId))) throw new ExportNoLongerRunning(`export ${exportId} is no longer running`);
        run.nextHeartbeat = Date.now() + (options.heartbeatMs ?? 60_000);
      }
      // And the primary key's order is walked, never the tenant's rows sorted: with statistics that underestimate
      // the tenant, a chunk of 40 at 10,000 rows still took 52 ms sorted against 0.3 ms walked (on Citus the SET LOCAL
      // reaches the workers, as the tenant context does: citus.propagate_set_commands = 'local').
      await tx.query("SET LOCAL enable_sort = off");
      return (await tx.query<Record<string, string>>(sql, params)).rows;
    });
    if (rows.length === 0) return;
    const chunk = Buffer.from(rows.map((r) => r.line).join("\n") + "\n", "utf8");
    counts.rows += rows.length;
    counts.bytes += chunk.length;
    const last = rows.at(-1)!;
    after = table.key.map((_, i) => last[`k${i}`]!);
    yield chunk;
    if (rows.length < options.chunkRows) return;
  }
}

/** The export runner's task list (worker.ts runs it apart, in slots and pools of its own). */
export function exportTaskList(options: ExportOptions): TaskList {
  return { [EXPORT_TASK]: exportTask(options) };
}

export function exportTask(options: ExportOptions): Task {
  const { db, store, chunkRows, retentionDays } = options;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`export chunk size must be a positive whole number of rows (got ${chunkRows})`);

  return async (payload, helpers) => {
    const { tenantId, exportId } = (payload ?? {}) as { tenantId?: string; exportId?: string };
    if (typeof tenantId !== "string" || !UUID.test(tenantId) || typeof exportId !== "string" || !UUID.test(exportId)) {
      throw new Error(`tenant.export needs a tenantId and an exportId (lowercase uuids), got ${JSON.stringify({ tenantId, exportId })}`);
    }
    const context = { tenantId };
    const found = await db.transaction(context, async (tx) => {
      const exports = new ExportRepository(tx, tenantId);
      const record = await exports.find(exportId);
      if (!record || record.status === "done" || record.status === "failed") return record;
      const startedAt = await exports.start(exportId);
      return startedAt ? { ...record, startedAt } : undefined;
    });
    if (!found) {
      // Objects an earlier attempt wrote after the erasure removed the tenant's prefix would otherwise stay until the
      // bucket's lifecycle: removed here, which is nothing when there are none.
      await store.deletePrefix(exportPrefix(tenantId, exportId));
      helpers.logger.info(`export ${exportId} of tenant ${tenantId} no longer exists (the tenant was erased): nothing to export, its objects removed`);
      return;
    }
    if (found.status === "done") return;
    if (found.status === "failed") {
      // Given up while this job waited (its earlier attempt's worker died and the service failed the export as
      // stale): a rerun once the dead job is released must not start it again. What that attempt wrote goes.
      await store.deletePrefix(exportPrefix(tenantId, exportId));
      helpers.logger.info(`export ${exportId} of tenant ${tenantId} was given up (${found.error ?? "failed"}): nothing to do, its objects removed`);
      return;
    }
    if (found.store !== store.kind) throw new Error(`export ${exportId} was requested for the ${found.store} store, and this worker writes to ${store.kind}: set EXPORT_STORE alike on the service and the worker`);

    const started = Date.now();
    const run: Run = { tenantId, exportId, nextHeartbeat: started + (options.heartbeatMs ?? 60_000) };
    try {
      const tables: Record<string, ExportedTable> = {};
      for (const table of EXPORT_TABLES) {
        const key = exportObjectKey(tenantId, exportId, table.table);
        const counts = { rows: 0, bytes: 0 };
        await store.write(key, Readable.from(tableChunks(options, run, table, counts), { objectMode: false }), NDJSON);
        tables[table.table] = { ...counts, key };
      }
      const expiresAt = new Date(found.startedAt!.getTime() + retentionDays * 86_400_000);
      const finished = await db.transaction(context, async (tx) => {
        const done = await new ExportRepository(tx, tenantId).finish(exportId, tables, expiresAt);
        if (!done) return undefined;
        const rows = Object.fromEntries(Object.entries(tables).map(([name, t]) => [name, t.rows]));
        await new AuditLogRepository(tx, tenantId).record({ actor: "worker", action: "export.completed", entityType: "export", entityId: exportId, requestId: helpers.job.id, details: { rows, store: store.kind } });
        return done;
      });
      if (!finished) throw new ExportNoLongerRunning(`export ${exportId} is no longer running`);
      const total = Object.values(finished.tables).reduce((n, t) => n + t.rows, 0);
      helpers.logger.info(
        `export ${exportId} of tenant ${tenantId}: ${total} rows in ${Date.now() - started} ms to ${store.kind}; peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`,
      );
    } catch (error) {
      if ((error as { code?: string } | null)?.code === "export_no_longer_running") {
        // The tenant's erasure deleted the record while this job wrote (and may have removed the tenant's prefix
        // before the last object landed), or the service gave the export up as stale: what this job wrote goes too.
        await store.deletePrefix(exportPrefix(tenantId, exportId));
        helpers.logger.info(`export ${exportId} of tenant ${tenantId}: its record was deleted (the tenant was erased) or given up as stale while it ran; its objects removed`);
        return;
      }
      if (helpers.job.attempts >= helpers.job.max_attempts) {
        // The record says why in words the tenant may read; the log keeps the error itself.
        await db.transaction(context, (tx) => new ExportRepository(tx, tenantId).fail(exportId, `the export failed after ${helpers.job.attempts} attempts; ask support with the export id`));
      }
      throw error;
    }
  };
}
