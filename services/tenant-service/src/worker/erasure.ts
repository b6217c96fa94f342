/**
 * tenant.erase: removes every row of one tenant, then the tenant, at the end of its grace period (routes/erasures.ts
 * queues it with run_at). The platform's record (platform.tenant_erasures) keeps who asked, when, when it was done
 * and how many rows went from each table.
 *
 * - **In the tenant's context.** Every statement runs in a transaction with SET LOCAL app.tenant_id (and
 *   app.tenant_erasure, which migration 0010's policies require for deleting audit entries, metrics and the tenant
 *   row), so row-level security confines it to that tenant as it confines a request.
 * - **Short batches.** At most `batchSize` rows of one table per transaction, each waiting at most 500 ms for a lock
 *   (the retention task's rule, short-locks.ts): it takes row locks on the tenant's own rows only, so other tenants'
 *   requests never wait on it, and a DDL lock queued on the table holds it up for half a second, not the DDL's time.
 * - **Resumable and idempotent.** Each batch adds its count to the record in the transaction that deletes its rows,
 *   so a crash loses nothing counted; a rerun (graphile-worker retries a failed job, a dead worker's once released: dead-workers.ts)
 *   starts again from whatever rows are left. A request already erased or cancelled is a no-op.
 */
import type { Task } from "graphile-worker";
import { HOME_DATABASE } from "@platform/citus";
import type { Database, Queryable } from "../db/database.js";
import type { PlacedDatabase } from "../db/placed.js";
import { tenantPrefix, type ExportStore } from "../export-store.js";
import type { HydraAdmin } from "../hydra.js";
import { ErasureRepository, type ErasureRecord } from "../repositories/erasures.js";
import { RATE_LIMIT_PREFIX, tenantRateKey } from "../rate-limit-store.js";
import { withShortLocks, type ShortLockOptions } from "./short-locks.js";

export const ERASE_TASK = "tenant.erase";
export const eraseJobKey = (tenantId: string): string => `${ERASE_TASK}:${tenantId}`;

/**
 * Every table that holds a tenant's rows (test/erasure.test.ts fails when a platform table with a tenant_id column
 * is missing here), in the order they are emptied: items before users (items_owner_fkey restricts), a webhook's
 * deliveries before it, and each table's key, by which a batch picks its rows. The tenants row goes last, on its own.
 */
export const TENANT_TABLES = [
  { table: "items", key: "id" },
  { table: "users", key: "id" },
  { table: "webhook_deliveries", key: "id" },
  { table: "webhooks", key: "id" },
  { table: "tenant_metrics", key: "day" },
  { table: "audit_log", key: "occurred_at, id" },
  { table: "exports", key: "id" },
  { table: "import_rows", key: "kind, import_key" },
] as const;

/** What the erasure needs of Redis (an ioredis client). */
export interface RedisKeys {
  del(...keys: string[]): Promise<number>;
}

export interface ErasureOptions {
  readonly db: Database;
  /** Rows per table per transaction. */
  readonly batchSize: number;
  /** The service's rate-limit store, to remove the tenant's count from. */
  readonly redis?: RedisKeys;
  readonly now?: () => Date;
  /** @default { lockTimeoutMs: 500, attempts: 20 } */
  readonly shortLocks?: ShortLockOptions;
  /** Hydra's admin API: the tenant's OAuth2 client (worker/provision.ts) is deleted with the tenant. */
  readonly hydra?: Pick<HydraAdmin, "remove">;
  /** The export store: the tenant's export objects are removed from it (worker/export.ts). */
  readonly exportStore?: ExportStore;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function eraseTask(options: ErasureOptions): Task {
  const { db, batchSize } = options;
  const now = options.now ?? (() => new Date());
  const shortLocks = options.shortLocks ?? { lockTimeoutMs: 500, attempts: 20 };
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`erasure batch size must be a positive whole number (got ${batchSize})`);

  return async (payload, helpers) => {
    const { tenantId } = (payload ?? {}) as { tenantId?: string };
    if (typeof tenantId !== "string" || !UUID.test(tenantId)) throw new Error(`tenant.erase needs a tenantId (a lowercase uuid), got ${JSON.stringify(tenantId)}`);
    const context = { tenantId, tenantErasure: true };
    const inTenant = <T>(work: (tx: Queryable) => Promise<T>, what: string) => withShortLocks(db, context, work, helpers, what, shortLocks);
    // The erasure record is the registry's, in the home database. A tenant whose rows are there too has each batch
    // counted in the transaction that deletes it (a crash resumes exactly); a tenant placed in another database
    // (issue 25) has its rows deleted there and counted here just after, so a crash between the two leaves at most
    // one batch per table uncounted (the rows are gone all the same).
    const placement = (db as Partial<PlacedDatabase>).placementOf ? await (db as PlacedDatabase).placementOf(tenantId) : HOME_DATABASE;
    const inRegistry = <T>(work: (tx: Queryable) => Promise<T>, what: string) =>
      placement === HOME_DATABASE ? inTenant(work, what) : withShortLocks(db, { ...context, registry: true }, work, helpers, what, shortLocks);

    // Begin, under the record's row lock: a cancellation either happened first (nothing to do) or can no longer
    // happen (it needs started_at unset).
    const begun = await inRegistry(async (tx): Promise<{ erasure?: ErasureRecord; early?: Date }> => {
      const erasures = new ErasureRepository(tx);
      const erasure = await erasures.open(tenantId);
      if (!erasure || erasure.erasedAt) return { erasure };
      if (!erasure.startedAt && erasure.eraseAfter > now()) return { erasure, early: erasure.eraseAfter };
      await erasures.start(erasure.id);
      return { erasure };
    }, "the erasure record");
    const { erasure } = begun;
    if (!erasure) {
      helpers.logger.info(`tenant ${tenantId}: no erasure pending (cancelled, or never requested); nothing to do`);
      return;
    }
    if (begun.early) {
      // Queued by hand, or by an older request: wait for the grace period of this one.
      await helpers.addJob(ERASE_TASK, { tenantId }, { runAt: begun.early, jobKey: eraseJobKey(tenantId) });
      helpers.logger.info(`tenant ${tenantId}: erasure's grace period ends ${begun.early.toISOString()}; rescheduled`);
      return;
    }

    if (!erasure.erasedAt) {
      let batches = 0;
      for (const { table, key } of TENANT_TABLES) {
        for (;;) {
          // One batch: the tenant's rows picked by key, deleted, and counted in the same transaction.
          const deleteBatch = (tx: Queryable) =>
            tx.query(`DELETE FROM platform.${table} WHERE tenant_id = $1 AND (${key}) IN (SELECT ${key} FROM platform.${table} WHERE tenant_id = $1 LIMIT $2)`, [tenantId, batchSize]);
          const deleted =
            placement === HOME_DATABASE
              ? await inTenant(async (tx) => {
                  const result = await deleteBatch(tx);
                  await new ErasureRepository(tx).count(erasure.id, table, result.rowCount);
                  return result.rowCount;
                }, `platform.${table}`)
              : await inTenant(async (tx) => (await deleteBatch(tx)).rowCount, `platform.${table}`).then(async (n) => {
                  await inRegistry((tx) => new ErasureRepository(tx).count(erasure.id, table, n), "the erasure record");
                  return n;
                });
          batches++;
          if (deleted < batchSize) break;
        }
      }
      // The tenant's jobs still queued (its provisioning, an export): they would act on a tenant that is gone.
      // Coordinator-local tables on Citus, so apart from the tenant's transaction. A job running now is left to
      // finish; each task finds no tenant and does nothing.
      const dropped = await db.transaction({}, async (tx) =>
        (await tx.query("DELETE FROM graphile_worker._private_jobs WHERE locked_at IS NULL AND payload ->> 'tenantId' = $1", [tenantId])).rowCount,
      );
      // Last: whatever a request admitted before its replica saw `deleting` wrote meanwhile (a few rows at most: every
      // replica refuses the tenant within TENANT_CACHE_TTL_MS), then the tenant, and the record says done.
      const lastRows = async (tx: Queryable): Promise<Record<string, number>> => {
        const counts: Record<string, number> = {};
        for (const { table } of TENANT_TABLES) counts[table] = (await tx.query(`DELETE FROM platform.${table} WHERE tenant_id = $1`, [tenantId])).rowCount;
        return counts;
      };
      const finish = async (tx: Queryable, counts: Record<string, number>) => {
        const erasures = new ErasureRepository(tx);
        for (const [table, n] of Object.entries(counts)) await erasures.count(erasure.id, table, n);
        const tenant = await tx.query("DELETE FROM platform.tenants WHERE id = $1 AND status = 'deleting'", [tenantId]);
        await erasures.count(erasure.id, "tenants", tenant.rowCount);
        return erasures.finish(erasure.id);
      };
      const finished =
        placement === HOME_DATABASE
          ? await inTenant(async (tx) => finish(tx, await lastRows(tx)), "platform.tenants")
          : await inRegistry(
              // The copy of the tenant's row that went with its rows, then the registry's.
              async (tx) => finish(tx, await inTenant(async (dtx) => ({ ...(await lastRows(dtx)), tenant_copy: (await dtx.query("DELETE FROM platform.tenants WHERE id = $1", [tenantId])).rowCount }), "platform.tenants")),
              "platform.tenants",
            );
      helpers.logger.info(`tenant ${tenantId} erased in ${batches} batch(es): ${JSON.stringify(finished.rowCounts)}; ${dropped} queued job(s) dropped`);
    }

    // After the commit, and again on any rerun (an erased tenant's rerun comes straight here): a credential of a
    // tenant that is gone must not outlive it, so a failure fails the job and graphile-worker retries it.
    if (options.hydra && (await options.hydra.remove(tenantId))) helpers.logger.info(`tenant ${tenantId}: OAuth2 client deleted from Hydra`);
    // The tenant's export objects, after the commit and again on any rerun; a failure fails the job, which is retried
    // (the bucket's lifecycle would delete them anyway, EXPORT_RETENTION_DAYS after each export).
    if (options.exportStore) await options.exportStore.deletePrefix(tenantPrefix(tenantId));

    // After the commit, and again on any rerun: a failure leaves a key that expires with its window anyway.
    if (options.redis) {
      await options.redis.del(RATE_LIMIT_PREFIX + tenantRateKey(tenantId)).catch((error: unknown) => {
        helpers.logger.warn(`tenant ${tenantId}: rate-limit key not removed from Redis (${(error as Error).message}); it expires with its window`);
      });
    }
  };
}
