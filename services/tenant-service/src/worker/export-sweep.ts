/**
 * exports.sweep (cron, every 5 minutes): gives up the exports whose worker died and that nobody asks about.
 *
 * The service gives up a stale export when the tenant polls, lists or asks for another (stale-exports.ts); a tenant
 * that never comes back would leave it `running`, and the platform would not learn that a worker died mid-export
 * until then (ExportsGivenUp). A dead worker's job stays locked until it is released (1 to 3 minutes by
 * dead-workers.ts, when the export runs again; 4 hours for a worker that recorded no liveness), which is how the sweep
 * finds them without reading across tenants: export jobs locked for longer than EXPORT_STALE_SECONDS. That includes
 * live exports that simply run long; each is judged in its tenant by its heartbeat, as the service judges it, and a
 * live one is left alone. A job whose export was given up loses its key (graphile_worker.remove_job on a locked job),
 * so it is not judged again while it stays locked.
 */
import type { Task } from "graphile-worker";
import type { Database } from "../db/database.js";
import { settleExportInProgress, type GiveUpReason } from "../stale-exports.js";
import { EXPORT_TASK, tenantOfExportJobKey } from "./export.js";

export const EXPORT_SWEEP_TASK = "exports.sweep";

export interface ExportSweepOptions {
  readonly db: Database;
  /** EXPORT_STALE_SECONDS, as the service and the export job use it. */
  readonly staleSeconds: number;
  /** Called for each export given up, once its transaction has committed (exports_given_up_total). */
  readonly onGivenUp?: (reason: GiveUpReason) => void;
  /** Export jobs judged per run, the longest locked first; the next run takes the rest. @default 500 */
  readonly limit?: number;
}

export function exportSweepTask(options: ExportSweepOptions): Task {
  const { db, staleSeconds } = options;
  return async (_payload, helpers) => {
    // The queue is in the home database (on Citus, coordinator-local): a transaction with no tenant runs there.
    const { rows } = await db.transaction({}, (tx) =>
      tx.query<{ key: string }>(
        // graphile_worker.jobs shows no payload: the tenant is read from the job's key (exportJobKey).
        `SELECT key FROM graphile_worker.jobs
          WHERE task_identifier = $1 AND locked_at < now() - make_interval(secs => $2) AND key IS NOT NULL
          ORDER BY locked_at LIMIT $3`,
        [EXPORT_TASK, staleSeconds, options.limit ?? 500],
      ),
    );
    const tenants = new Set(rows.map((r) => tenantOfExportJobKey(r.key)).filter((t): t is string => t !== undefined));
    let givenUp = 0;
    let failed = 0;
    for (const tenantId of tenants) {
      try {
        const settled = await db.transaction({ tenantId }, (tx) =>
          settleExportInProgress(tx, tenantId, {
            staleSeconds,
            queue: true,
            actor: "worker",
            requestId: helpers.job.id,
            warn: (fields, message) => helpers.logger.warn(`${message}: ${JSON.stringify(fields)}`),
          }),
        );
        if (settled.givenUp) {
          givenUp++;
          options.onGivenUp?.(settled.givenUp);
        }
      } catch (error) {
        // One tenant being moved (fenced) or unreachable must not keep the others' exports stuck: the next run retries.
        failed++;
        helpers.logger.warn(`export sweep: tenant ${tenantId} not judged this run: ${(error as Error).message}`);
      }
    }
    helpers.logger.info(`export sweep: ${tenants.size} tenant(s) with an export job locked over ${staleSeconds} s; ${givenUp} export(s) given up, ${failed} tenant(s) to retry`);
  };
}
