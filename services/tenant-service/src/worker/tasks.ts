import type { CronItem, JobHelpers, Task, TaskList } from "graphile-worker";
import { HOME_DATABASE } from "@platform/citus";
import type { Database, Queryable } from "../db/database.js";
import type { PlacedDatabase } from "../db/placed.js";
import type { ExportStore } from "../export-store.js";
import type { HydraAdmin } from "../hydra.js";
import type { GiveUpReason } from "../stale-exports.js";
import { DEAD_WORKERS_TASK, DEAD_WORKER_RELEASE_SECONDS, type Released, releaseDeadWorkers } from "./dead-workers.js";
import { ERASE_TASK, eraseTask, type RedisKeys } from "./erasure.js";
import { EXPORT_SWEEP_TASK, exportSweepTask } from "./export-sweep.js";
import { PROVISION_TASK, provisionTask, type ProvisionOptions } from "./provision.js";
import { enqueue } from "./queue.js";
import { withShortLocks } from "./short-locks.js";

export interface WorkerOptions {
  readonly db: Database;
  /** audit_log partitions older than this many months are dropped. */
  readonly auditRetentionMonths: number;
  /** Tenants per metrics batch job. */
  readonly rollupBatchSize: number;
  readonly now?: () => Date;
  /**
   * Retention's DDL waits at most this long for its lock on audit_log, then lets the service's writes through and
   * tries again (`retentionAttempts` times, backing off). @default 500
   */
  readonly retentionLockTimeoutMs?: number;
  /** @default 20 */
  readonly retentionAttempts?: number;
  /** Rows an erasure deletes per table per transaction (ERASURE_BATCH_SIZE). @default 1000 */
  readonly erasureBatchSize?: number;
  /** The service's rate-limit store: an erased tenant's keys are removed from it. Unset: they expire with their window. */
  readonly redis?: RedisKeys;
  /** Hydra's admin API: provisioning creates each tenant's OAuth2 client there. Unset: none is created. */
  readonly hydra?: HydraAdmin;
  /** Tests: called between provisioning's steps (worker/provision.ts). */
  readonly afterProvisionStep?: ProvisionOptions["afterStep"];
  /** Where tenant exports go (EXPORT_STORE): an erased tenant's objects are removed from it. Unset: none are. */
  readonly exportStore?: ExportStore;
  /** EXPORT_STALE_SECONDS: the sweep gives up a running export silent this long. @default 600 */
  readonly exportStaleSeconds?: number;
  /** Called for each export the sweep gives up (exports_given_up_total). */
  readonly onExportGivenUp?: (reason: GiveUpReason) => void;
  /** WORKER_DEAD_RELEASE_SECONDS: a dead worker's jobs are released this long after it is found dead. @default 60 */
  readonly deadWorkerReleaseSeconds?: number;
  /** Called after a sweep released dead workers' jobs (worker_processes_found_dead_total, worker_dead_jobs_released_total). */
  readonly onDeadWorkersReleased?: (released: Released) => void;
}

const dayOf = (d: Date): string => d.toISOString().slice(0, 10);

/** Every database the worker can reach by name: several behind a router (db/placed.ts), or the one it was given. */
const databasesOf = (db: Database): ReadonlyMap<string, Database> => (db as Partial<PlacedDatabase>).databases ?? new Map([[HOME_DATABASE, db]]);

/**
 * Every task is idempotent: a retried or duplicated job converges to the same state (upserts, existence checks,
 * partition DDL that skips what exists). A tenant's own work runs in that tenant's context, so row-level security
 * holds in the worker as in the API; what spans tenants goes through a reviewed SECURITY DEFINER function that
 * returns no tenant's data (the rollup, migration 0007).
 */
export function createTaskList(options: WorkerOptions): TaskList {
  const { db } = options;
  const now = options.now ?? (() => new Date());

  /** Daily: fans out one batch job per `rollupBatchSize` active tenants, so replicas share the rollup. */
  const rollup: Task = async (payload, helpers) => {
    const day = (payload as { day?: string } | null)?.day ?? dayOf(new Date(now().getTime() - 86_400_000));
    let after = "00000000-0000-0000-0000-000000000000";
    let batches = 0;
    for (;;) {
      const rows = await db.transaction({ tenantLookup: true }, async (tx) =>
        (await tx.query<{ id: string; database: string | null }>(
          `SELECT t.id, p.database FROM platform.tenants t LEFT JOIN platform.tenant_placements p ON p.tenant_id = t.id
            WHERE t.status = 'active' AND t.id > $1 ORDER BY t.id LIMIT $2`,
          [after, options.rollupBatchSize],
        )).rows,
      );
      if (rows.length === 0) break;
      // A batch's tenants are counted in one statement, so in one database: split by where their rows are.
      const byDatabase = new Map<string, typeof rows>();
      for (const r of rows) {
        const database = r.database ?? HOME_DATABASE;
        byDatabase.set(database, [...(byDatabase.get(database) ?? []), r]);
      }
      await db.transaction({}, async (tx) => {
        for (const [database, placed] of byDatabase) {
          const tenantIds = placed.map((r) => r.id);
          await enqueue(tx, "metrics.rollup-batch", { day, tenantIds, database }, `metrics:${day}:${tenantIds[0]}`);
        }
      });
      batches += byDatabase.size;
      after = rows.at(-1)!.id;
    }
    helpers.logger.info(`metrics rollup for ${day}: ${batches} batch job(s)`);
  };

  /**
   * One statement per batch (platform.rollup_tenant_metrics, migration 0007): the batch's tenants counted together,
   * grouped by tenant, taking only row locks on tenant_metrics, so the service's writes never wait on it. A tenant
   * whose row for the day was computed after the day ended is final and left alone, so a batch retried after a crash
   * (or a rollup fanned out again) computes only the tenants it had not finished.
   */
  const rollupBatch: Task = async (payload, helpers) => {
    const { day, tenantIds, database = HOME_DATABASE } = payload as { day: string; tenantIds: string[]; database?: string };
    const where = databasesOf(db).get(database);
    if (!where) throw new Error(`metrics batch for database "${database}", which this worker was not given: set DATABASE_URL_${database.toUpperCase()}`);
    const written = await where.transaction({}, async (tx) =>
      (await tx.query<{ n: number }>("SELECT platform.rollup_tenant_metrics($1::date, $2::uuid[]) AS n", [day, tenantIds])).rows[0]!.n,
    );
    if (written < tenantIds.length) helpers.logger.info(`metrics for ${day}: ${tenantIds.length - written} of ${tenantIds.length} tenant(s) final already or gone, skipped`);
  };

  /**
   * Creating or dropping a partition takes an ACCESS EXCLUSIVE lock on audit_log, which every service write
   * appends to. Waiting for it behind a long transaction would queue all of those writes behind the wait, so each
   * step waits at most `retentionLockTimeoutMs`, gives the lock up, and tries again after a growing pause in which
   * the queued writes go through. Each step is its own transaction, and a rerun skips what exists or is gone.
   */
  const retention: Task = async (_payload, helpers) => {
    const cutoff = new Date(Date.UTC(now().getUTCFullYear(), now().getUTCMonth() - options.auditRetentionMonths, 1));
    // Every database holds an audit_log of its own tenants.
    for (const [name, where] of databasesOf(db)) {
      const created = await underShortLocks(where, (tx) => tx.query<{ n: number }>("SELECT platform.ensure_audit_log_partitions(6) AS n"), helpers);
      const dropped = await underShortLocks(where, (tx) => tx.query<{ n: number }>("SELECT platform.drop_audit_log_partitions_before($1::date) AS n", [dayOf(cutoff)]), helpers);
      helpers.logger.info(`audit_log partitions in ${name}: ${created.rows[0]!.n} created, ${dropped.rows[0]!.n} dropped (keeping from ${dayOf(cutoff)})`);
    }
  };

  const shortLocks = { lockTimeoutMs: options.retentionLockTimeoutMs ?? 500, attempts: options.retentionAttempts ?? 20 };
  const underShortLocks = <T>(where: Database, work: (tx: Queryable) => Promise<T>, helpers: JobHelpers): Promise<T> =>
    withShortLocks(where, {}, work, helpers, "audit_log", shortLocks);

  return {
    [PROVISION_TASK]: provisionTask({ db, hydra: options.hydra, now, afterStep: options.afterProvisionStep }),
    "metrics.rollup": rollup,
    "metrics.rollup-batch": rollupBatch,
    "audit.retention": retention,
    [ERASE_TASK]: eraseTask({ db, batchSize: options.erasureBatchSize ?? 1_000, redis: options.redis, hydra: options.hydra, now, exportStore: options.exportStore }),
    [EXPORT_SWEEP_TASK]: exportSweepTask({ db, staleSeconds: options.exportStaleSeconds ?? 600, onGivenUp: options.onExportGivenUp }),
    [DEAD_WORKERS_TASK]: async (_payload, helpers) => {
      // The queue is in the home database: a transaction with no tenant runs there.
      const released = await db.transaction({}, (tx) => releaseDeadWorkers(tx, options.deadWorkerReleaseSeconds ?? DEAD_WORKER_RELEASE_SECONDS));
      if (released.workers.length > 0) {
        options.onDeadWorkersReleased?.(released);
        helpers.logger.warn(`released ${released.jobs} job(s) of ${released.workers.length} dead worker id(s), which run again now: ${released.workers.join(", ")}`);
      }
    },
  };
}

const DAY_MS = 86_400_000;

/**
 * Schedules; `backfillPeriod` re-runs a slot missed while no worker was up, `jobKey` keeps it to one job per
 * slot. Cron items, not a crontab string: graphile-worker's crontab syntax refuses a task name with a dot (every one
 * of ours), and the worker then stopped at start with "Invalid command specification in line 1 of crontab".
 */
export const CRON_ITEMS: CronItem[] = [
  { task: "metrics.rollup", match: "0 2 * * *", options: { backfillPeriod: 2 * DAY_MS, jobKey: "metrics.rollup", maxAttempts: 5 } },
  { task: "audit.retention", match: "30 2 * * *", options: { backfillPeriod: 2 * DAY_MS, jobKey: "audit.retention", maxAttempts: 5 } },
  // Every 5 minutes, no backfill (a missed run is the next one's work): a dead worker's export is given up within
  // EXPORT_STALE_SECONDS and 5 minutes even if its tenant never asks (worker/export-sweep.ts).
  { task: EXPORT_SWEEP_TASK, match: "*/5 * * * *", options: { backfillPeriod: 0, jobKey: EXPORT_SWEEP_TASK, maxAttempts: 1 } },
  // Every minute: a dead worker's jobs go back to the queue (worker/dead-workers.ts).
  { task: DEAD_WORKERS_TASK, match: "* * * * *", options: { backfillPeriod: 0, jobKey: DEAD_WORKERS_TASK, maxAttempts: 1 } },
];
