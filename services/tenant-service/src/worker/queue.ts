import { runMigrations as installGraphileWorker } from "graphile-worker";
import pg from "pg";
import type { Queryable } from "../db/database.js";
import { WORKER_SESSIONS_DDL } from "./dead-workers.js";
import { injectTraceContext } from "../tracing.js";

/**
 * The queue is graphile-worker, in PostgreSQL (on Citus: local tables on the coordinator). Chosen over a Redis
 * queue because a job can then be enqueued in the same transaction as the change that needs it: a tenant and its
 * provisioning job commit together or not at all, with no outbox to reconcile. Workers take jobs with
 * SELECT ... FOR UPDATE SKIP LOCKED, so any number of replicas share the work; job keys make enqueueing
 * idempotent, and cron runs once per slot however many replicas run it.
 */
export const QUEUE_SCHEMA = "graphile_worker";

/**
 * Installs or upgrades the queue's schema: run with `pnpm --filter tenant-service worker --install-queue` as the
 * migration role, next to `pnpm migrate`.
 *
 * graphile-worker keeps its tables behind row-level security with no policies, usable only by their owner. So the
 * schema is owned by a dedicated NOLOGIN role, platform_queue, and the service role is a member of it: the service
 * and the worker get the queue, and nothing else, with owner rights. The platform tables stay owned by the
 * migration role, which the service role is not a member of.
 */
export async function installQueue(migratorUrl: string, queueRole = "platform_queue"): Promise<void> {
  // pg-pool's onConnect hook (3.14; not yet in @types/pg) runs before the client is handed out, so these SETs are
  // awaited one after the other instead of queued under the caller's first query, which pg 8.16+ deprecates.
  const config: pg.PoolConfig & { onConnect: (client: pg.PoolClient) => Promise<void> } = {
    connectionString: migratorUrl,
    max: 1,
    onConnect: async (client) => {
      // A failure here is reported below, with what to do, by the current_user check.
      await client.query(`SET ROLE ${client.escapeIdentifier(queueRole)}`).catch(() => {});
      // On Citus the queue is coordinator-local: its DDL must not be propagated to the workers (where Citus would
      // connect as the NOLOGIN queue role). On plain PostgreSQL this only sets an unused placeholder.
      await client.query("SET citus.enable_ddl_propagation TO off");
    },
  };
  const pgPool = new pg.Pool(config);
  try {
    const client = await pgPool.connect();
    try {
      const { rows } = await client.query<{ r: string }>("SELECT current_user AS r");
      if (rows[0]?.r !== queueRole) {
        throw new Error(`cannot act as ${queueRole}: create it (CREATE ROLE ${queueRole} NOLOGIN), grant it to the migration and service roles, and grant it CREATE on the database`);
      }
    } finally {
      client.release();
    }
    await installGraphileWorker({ pgPool });
    // Beside graphile-worker's tables: which worker ids belong to which process, to release a dead one's jobs.
    await pgPool.query(WORKER_SESSIONS_DDL);
  } finally {
    await pgPool.end();
  }
}

export async function queueInstalled(tx: Queryable): Promise<boolean> {
  const { rows } = await tx.query<{ ok: boolean }>("SELECT to_regproc('graphile_worker.add_job') IS NOT NULL AS ok");
  return rows[0]?.ok === true;
}

/**
 * The payload field that carries the trace context of whoever queued the job (W3C `traceparent` and `tracestate`),
 * so the job's span links to the request's (worker/instrument.ts). Tasks ignore it; no task may use the name.
 */
export const TRACE_CONTEXT_KEY = "traceContext";

export interface EnqueueOptions {
  /** Not before this moment (the end of an erasure's grace period); default now. */
  readonly runAt?: Date;
  /** @default 10 */
  readonly maxAttempts?: number;
}

/** Enqueues inside the caller's transaction. The job key makes a repeated enqueue replace, not duplicate. */
export async function enqueue(tx: Queryable, task: string, payload: Record<string, unknown>, jobKey: string, options: EnqueueOptions = {}): Promise<void> {
  const traceContext = injectTraceContext();
  const body = traceContext ? { ...payload, [TRACE_CONTEXT_KEY]: traceContext } : payload;
  await tx.query("SELECT graphile_worker.add_job($1, $2::json, job_key := $3, max_attempts := $4, run_at := COALESCE($5::timestamptz, now()))", [
    task, JSON.stringify(body), jobKey, options.maxAttempts ?? 10, options.runAt ?? null,
  ]);
}

/**
 * Whether a job with this key is in the queue and can still run: waiting, running, or to be retried. False when
 * there is none (run to its end, removed by hand, the queue reinstalled) or its attempts are spent.
 */
export async function jobRunnable(tx: Queryable, jobKey: string): Promise<boolean> {
  const { rows } = await tx.query<{ ok: boolean }>("SELECT EXISTS (SELECT 1 FROM graphile_worker.jobs WHERE key = $1 AND attempts < max_attempts) AS ok", [jobKey]);
  return rows[0]?.ok === true;
}

/** Removes a job by its key, unless a worker holds it now (graphile-worker then lets it finish and not retry). */
export async function dequeue(tx: Queryable, jobKey: string): Promise<void> {
  await tx.query("SELECT graphile_worker.remove_job($1)", [jobKey]);
}
