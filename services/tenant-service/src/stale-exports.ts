/**
 * An export that will never end by itself, and giving it up (README "Export", docs/runbooks/export-stuck.md).
 *
 * A dead worker's job runs again only once released (1 to 3 minutes by worker/dead-workers.ts; 4 hours for a worker
 * that recorded no liveness), and never once its attempts are spent, and a job can leave the queue; the export job
 * writes a heartbeat (worker/export.ts). Whoever finds the tenant's export in progress with a stale
 * heartbeat, or queued with no job that can still run it, gives it up here: the service when the tenant polls, lists
 * or asks for another (routes/exports.ts), and the worker's sweep for the ones nobody asks about
 * (worker/export-sweep.ts). Both run it in a transaction in the tenant, so row-level security confines it.
 */
import type { Queryable } from "./db/database.js";
import { AuditLogRepository } from "./repositories/audit.js";
import { ExportRepository, type ExportRecord } from "./repositories/exports.js";
import { exportJobKey } from "./worker/export.js";
import { dequeue, jobRunnable } from "./worker/queue.js";

/** Why an export was given up: its job stopped making progress (a worker died), or its job left the queue. */
export type GiveUpReason = "stale" | "job_lost";

/** What settling found: the export still in progress, or why the one that was has been given up. */
export interface Settled {
  readonly running?: ExportRecord;
  readonly givenUp?: GiveUpReason;
}

export interface SettleOptions {
  /** EXPORT_STALE_SECONDS: a running export silent this long is given up. */
  readonly staleSeconds: number;
  /** Whether the queue is installed (queueInstalled): without it a queued export is not judged by its job. */
  readonly queue: boolean;
  /** Who gives it up, for the audit entry: the request's principal, or the worker. */
  readonly actor: string;
  readonly requestId?: string;
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
}

/** Why the export in progress will never end by itself, if so; the error is what the tenant reads. */
async function staleness(tx: Queryable, e: ExportRecord & { silentSeconds: number | null }, options: SettleOptions): Promise<{ reason: GiveUpReason; error: string } | undefined> {
  if (e.status === "running" && e.silentSeconds !== null && e.silentSeconds > options.staleSeconds) {
    return { reason: "stale", error: `given up: no progress since ${(e.heartbeatAt ?? e.startedAt)!.toISOString()}, more than ${options.staleSeconds} s (its worker stopped); request a new export` };
  }
  if (e.status === "queued" && options.queue && !(await jobRunnable(tx, exportJobKey(e.tenantId, e.id)))) {
    return { reason: "job_lost", error: "given up: its job was no longer in the queue; request a new export" };
  }
  return undefined;
}

/**
 * The tenant's export in progress, unless it will never end by itself: then it is given up in `tx` (failed with the
 * reason, its job dequeued, audited). The caller counts a give-up (exports_given_up_total) once `tx` has committed.
 */
export async function settleExportInProgress(tx: Queryable, tenantId: string, options: SettleOptions): Promise<Settled> {
  const exports = new ExportRepository(tx, tenantId);
  const running = await exports.inProgress();
  if (!running) return {};
  const stale = await staleness(tx, running, options);
  if (!stale) return { running };
  if (!(await exports.giveUp(running.id, stale.error))) return {};
  // Its job, if a dead worker still holds it, must not run it again once graphile-worker releases it.
  if (options.queue) await dequeue(tx, exportJobKey(tenantId, running.id));
  await new AuditLogRepository(tx, tenantId).record({
    actor: options.actor,
    action: "export.given_up",
    entityType: "export",
    entityId: running.id,
    requestId: options.requestId,
    details: { reason: stale.error, status: running.status, heartbeatAt: running.heartbeatAt?.toISOString() ?? null },
  });
  options.warn({ tenantId, exportId: running.id, reason: stale.error }, "export given up: it would never end by itself");
  return { givenUp: stale.reason };
}
