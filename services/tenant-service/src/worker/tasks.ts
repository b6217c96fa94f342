import type { CronItem, Task, TaskList } from "graphile-worker";
import type { Database } from "../db/database.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { enqueue } from "./queue.js";

export interface WorkerOptions {
  readonly db: Database;
  /** audit_log partitions older than this many months are dropped. */
  readonly auditRetentionMonths: number;
  /** Tenants per metrics batch job. */
  readonly rollupBatchSize: number;
  readonly now?: () => Date;
}

const dayOf = (d: Date): string => d.toISOString().slice(0, 10);

/**
 * Every task is idempotent: a retried or duplicated job converges to the same state (upserts, existence checks,
 * partition DDL that skips what exists). Each tenant's work runs in that tenant's context, so row-level security
 * holds in the worker as in the API.
 */
export function createTaskList(options: WorkerOptions): TaskList {
  const { db } = options;
  const now = options.now ?? (() => new Date());

  const provision: Task = async (payload, helpers) => {
    const { tenantId } = payload as { tenantId: string };
    await db.transaction({ tenantId }, async (tx) => {
      const tenant = await tx.query("SELECT id FROM platform.tenants WHERE id = $1", [tenantId]);
      if (tenant.rows.length === 0) {
        helpers.logger.warn(`tenant ${tenantId} no longer exists; nothing to provision`);
        return;
      }
      await tx.query(
        `INSERT INTO platform.tenant_metrics (tenant_id, day, users, items, storage_bytes, writes) VALUES ($1, $2, 0, 0, 0, 0)
         ON CONFLICT (tenant_id, day) DO NOTHING`,
        [tenantId, dayOf(now())],
      );
      const done = await tx.query("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'tenant.provisioned' LIMIT 1", [tenantId]);
      if (done.rows.length === 0) {
        await new AuditLogRepository(tx, tenantId).record({ actor: "worker", action: "tenant.provisioned", entityType: "tenant", entityId: tenantId, requestId: helpers.job.id });
      }
    });
  };

  /** Daily: fans out one batch job per `rollupBatchSize` active tenants, so replicas share the rollup. */
  const rollup: Task = async (payload, helpers) => {
    const day = (payload as { day?: string } | null)?.day ?? dayOf(new Date(now().getTime() - 86_400_000));
    let after = "00000000-0000-0000-0000-000000000000";
    let batches = 0;
    for (;;) {
      const ids = await db.transaction({ tenantLookup: true }, async (tx) =>
        (await tx.query<{ id: string }>("SELECT id FROM platform.tenants WHERE status = 'active' AND id > $1 ORDER BY id LIMIT $2", [after, options.rollupBatchSize])).rows.map((r) => r.id),
      );
      if (ids.length === 0) break;
      await db.transaction({}, (tx) => enqueue(tx, "metrics.rollup-batch", { day, tenantIds: ids }, `metrics:${day}:${ids[0]}`));
      batches++;
      after = ids.at(-1)!;
    }
    helpers.logger.info(`metrics rollup for ${day}: ${batches} batch job(s)`);
  };

  const rollupBatch: Task = async (payload) => {
    const { day, tenantIds } = payload as { day: string; tenantIds: string[] };
    for (const tenantId of tenantIds) {
      // One router transaction per tenant: the tenant's rows are on one shard.
      await db.transaction({ tenantId }, (tx) =>
        tx.query(
          `INSERT INTO platform.tenant_metrics (tenant_id, day, users, items, storage_bytes, writes, computed_at)
           SELECT $1, $2::date,
                  (SELECT count(*) FROM platform.users WHERE tenant_id = $1),
                  (SELECT count(*) FROM platform.items WHERE tenant_id = $1),
                  (SELECT coalesce(sum(size_bytes), 0) FROM platform.items WHERE tenant_id = $1),
                  (SELECT count(*) FROM platform.audit_log WHERE tenant_id = $1 AND occurred_at >= $2::date AND occurred_at < $2::date + 1),
                  now()
           ON CONFLICT (tenant_id, day) DO UPDATE SET users = EXCLUDED.users, items = EXCLUDED.items,
             storage_bytes = EXCLUDED.storage_bytes, writes = EXCLUDED.writes, computed_at = EXCLUDED.computed_at`,
          [tenantId, day],
        ),
      );
    }
  };

  const retention: Task = async (_payload, helpers) => {
    const cutoff = new Date(Date.UTC(now().getUTCFullYear(), now().getUTCMonth() - options.auditRetentionMonths, 1));
    const result = await db.transaction({}, async (tx) => {
      const created = (await tx.query<{ n: number }>("SELECT platform.ensure_audit_log_partitions(6) AS n")).rows[0]!.n;
      const dropped = (await tx.query<{ n: number }>("SELECT platform.drop_audit_log_partitions_before($1::date) AS n", [dayOf(cutoff)])).rows[0]!.n;
      return { created, dropped };
    });
    helpers.logger.info(`audit_log partitions: ${result.created} created, ${result.dropped} dropped (keeping from ${dayOf(cutoff)})`);
  };

  return {
    "tenant.provision": provision,
    "metrics.rollup": rollup,
    "metrics.rollup-batch": rollupBatch,
    "audit.retention": retention,
  };
}

const DAY_MS = 86_400_000;

/**
 * Daily schedules; `backfillPeriod` re-runs a slot missed while no worker was up, `jobKey` keeps it to one job per
 * slot. Cron items, not a crontab string: graphile-worker's crontab syntax refuses a task name with a dot (every one
 * of ours), and the worker then stopped at start with "Invalid command specification in line 1 of crontab".
 */
export const CRON_ITEMS: CronItem[] = [
  { task: "metrics.rollup", match: "0 2 * * *", options: { backfillPeriod: 2 * DAY_MS, jobKey: "metrics.rollup", maxAttempts: 5 } },
  { task: "audit.retention", match: "30 2 * * *", options: { backfillPeriod: 2 * DAY_MS, jobKey: "audit.retention", maxAttempts: 5 } },
];
