/**
 * The queue worker: tenant provisioning follow-ups, the daily metrics rollup, audit-log retention, tenant erasure and
 * webhook deliveries.
 *
 *   pnpm --filter tenant-service worker                   run (as the service role, DATABASE_URL)
 *   pnpm --filter tenant-service worker --install-queue   install/upgrade the queue schema (as the migration role)
 *
 * Safe to run in several replicas: jobs are taken with SKIP LOCKED and cron fires once per slot. The service's
 * conventions hold here too: config parsed once with zod (config.ts), pino JSON logs, one prom-client registry
 * (metrics.ts), traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (tracing.ts, worker/instrument.ts).
 */
import { Command } from "commander";
import { parseCronItems, run, type TaskList, type WorkerEvents } from "graphile-worker";
import { EventEmitter } from "node:events";
import { createServer } from "node:http";
import pg from "pg";
import { pino } from "pino";
import { ConfigError, loadWorkerConfig, type WorkerConfig } from "./config.js";
import { Redis } from "ioredis";
import { postgresConnection, redisConnection } from "./connections.js";
import { openDatabases } from "./db/open.js";
import type { PlacedDatabase } from "./db/placed.js";
import { createExportStore } from "./export-store.js";
import { HydraAdmin } from "./hydra.js";
import { createWorkerMetrics } from "./metrics.js";
import { startTracing, traceFields } from "./tracing.js";
import { holdLivenessSession, releaseDeadWorkers, type Released } from "./worker/dead-workers.js";
import { exportTaskList } from "./worker/export.js";
import { instrumentTasks, workerLogger } from "./worker/instrument.js";
import { installQueue } from "./worker/queue.js";
import { webhookTaskList } from "./worker/webhooks.js";
import { CRON_ITEMS, createTaskList } from "./worker/tasks.js";

let config: WorkerConfig;
try {
  config = loadWorkerConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}

// Every line of a job carries its trace ids (the job's span is active while it runs).
const log = pino({ level: config.LOG_LEVEL, base: { service: config.OTEL_SERVICE_NAME }, mixin: () => traceFields() ?? {} });

async function work(): Promise<void> {
  const tracing = config.OTEL_EXPORTER_OTLP_ENDPOINT ? startTracing({ endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: config.OTEL_SERVICE_NAME }) : undefined;
  if (tracing && !tracing.queriesTraced) log.warn("tracing: pg was loaded before its instrumentation, so statements are not traced; start with --import ./src/tracing-register.ts");
  const connection = postgresConnection(config);
  // Every database a tenant can be placed in (db/open.ts): a tenant's job runs where its rows are.
  const db = openDatabases(process.env, { poolSize: 2, placementTtlMs: 5_000, placementMax: 10_000, applicationName: "tenant-worker-db" });
  const pgPool = new pg.Pool({ ...connection, max: config.WORKER_CONCURRENCY + 2, application_name: "tenant-worker" });
  // An idle connection dropping (failover, restart) must not crash the process; graphile-worker reconnects.
  pgPool.on("error", (error) => log.warn({ err: error }, "queue connection lost"));
  // Only to remove an erased tenant's rate-limit key (worker/erasure.ts); commands wait for a reconnect briefly.
  const redis = config.REDIS_URL ? new Redis(config.REDIS_URL, { ...redisConnection(config), enableOfflineQueue: true }) : undefined;
  redis?.on("error", (error: Error) => log.warn({ err: error.message }, "Redis unreachable: an erased tenant's rate-limit key is left to expire with its window"));
  if (!redis) log.warn("REDIS_URL is unset: an erased tenant's rate-limit key is left to expire with its window");
  const hydra = config.HYDRA_ADMIN_URL ? new HydraAdmin({ adminUrl: config.HYDRA_ADMIN_URL, serviceAudience: config.AUTH_AUDIENCE }) : undefined;
  if (!hydra) log.warn("HYDRA_ADMIN_URL is unset: provisioning creates no OAuth2 client for new tenants");
  const metrics = createWorkerMetrics(() => ({ total: pgPool.totalCount, idle: pgPool.idleCount, waiting: pgPool.waitingCount, max: config.WORKER_CONCURRENCY + 2 }));
  const exportStore = createExportStore(config);
  // This process's liveness session: if the process dies, its jobs go back to the queue within minutes
  // (worker/dead-workers.ts). If the session is lost while the process lives, the process must stop at once: its
  // jobs are about to be released to other workers, and must not run twice.
  const liveness = await holdLivenessSession(connection, {
    warn: (message) => log.warn(message),
    onLost: (reason) => {
      log.fatal(`worker: ${reason}; exiting so that its jobs, released to other workers, never run twice at once`);
      process.exit(1);
    },
  });
  const events: WorkerEvents = new EventEmitter();
  events.on("worker:create", ({ worker }) => {
    liveness?.register(worker.workerId).catch((error: Error) => log.warn({ err: error.message, workerId: worker.workerId }, "worker id not recorded: if this process dies, its jobs wait 4 hours"));
  });
  const countReleased = (released: Released) => {
    metrics.deadWorkers.inc(released.processes);
    metrics.deadWorkerJobs.inc(released.jobs);
  };
  // A restarted process finds its predecessor dead here (the sweep then releases its jobs within a minute or two).
  if (liveness) {
    const released = await db.transaction({}, (tx) => releaseDeadWorkers(tx, config.WORKER_DEAD_RELEASE_SECONDS));
    if (released.workers.length > 0) {
      countReleased(released);
      log.warn({ workers: released.workers, jobs: released.jobs }, "released the jobs of dead workers; they run again now");
    }
  }
  const runner = await run({
    pgPool,
    events,
    concurrency: config.WORKER_CONCURRENCY,
    noHandleSignals: true,
    logger: workerLogger(log),
    taskList: instrumentTasks(
      createTaskList({
        db, auditRetentionMonths: config.AUDIT_RETENTION_MONTHS, rollupBatchSize: config.ROLLUP_BATCH_SIZE, erasureBatchSize: config.ERASURE_BATCH_SIZE, redis, hydra, exportStore,
        exportStaleSeconds: config.EXPORT_STALE_SECONDS, onExportGivenUp: (reason) => metrics.exportsGivenUp.inc({ reason }),
        deadWorkerReleaseSeconds: config.WORKER_DEAD_RELEASE_SECONDS, onDeadWorkersReleased: countReleased,
      }),
      metrics,
    ),
    parsedCronItems: parseCronItems(CRON_ITEMS),
  });
  /**
   * A runner of its own in this process: its slots, its queue pool and its database pools, so what its jobs hold is
   * never what the main runner's jobs need, and the other way round.
   */
  const ownRunner = async (name: string, concurrency: number, dbPoolSize: number, taskList: (ownDb: PlacedDatabase) => TaskList) => {
    const ownDb = openDatabases(process.env, { poolSize: dbPoolSize, placementTtlMs: 5_000, placementMax: 10_000, applicationName: `tenant-worker-${name}-db` });
    const pool = new pg.Pool({ ...connection, max: Math.min(concurrency, 8) + 2, application_name: `tenant-worker-${name}` });
    pool.on("error", (error) => log.warn({ err: error }, `queue connection lost (${name})`));
    const started = await run({ pgPool: pool, events, concurrency, noHandleSignals: true, logger: workerLogger(log), taskList: instrumentTasks(taskList(ownDb), metrics) });
    return {
      promise: started.promise,
      stop: async () => {
        await started.stop();
        await pool.end();
        await ownDb.close();
      },
    };
  };
  // Webhook deliveries (worker/webhooks.ts): a slow receiver holds none of what erasures, exports or the rollup need,
  // and those never hold up a delivery.
  const webhookRunner = await ownRunner("webhooks", config.WEBHOOK_CONCURRENCY, 4, (webhookDb) =>
    webhookTaskList({
      db: webhookDb, timeoutMs: config.WEBHOOK_TIMEOUT_MS, maxAttempts: config.WEBHOOK_MAX_ATTEMPTS, retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
      allowedPrivateCidrs: config.WEBHOOK_ALLOWED_PRIVATE_CIDRS, caFile: config.WEBHOOK_CA_FILE, registry: metrics.registry,
    }),
  );
  // Exports (worker/export.ts): each holds a slot for its whole run (minutes for a large tenant) and a database
  // connection for one chunk at a time, so EXPORT_CONCURRENCY slots with a pool of that many, and the main runner's
  // slots and two connections stay free for erasures and the rollup.
  const exportRunner = await ownRunner("exports", config.EXPORT_CONCURRENCY, config.EXPORT_CONCURRENCY, (exportDb) =>
    exportTaskList({
      db: exportDb, store: exportStore, chunkRows: config.EXPORT_FETCH_ROWS, retentionDays: config.EXPORT_RETENTION_DAYS,
      heartbeatMs: config.EXPORT_STALE_SECONDS * 100,
    }),
  );
  const health = createServer((request, response) => {
    const send = (status: number, body: string, type = "text/plain") => response.writeHead(status, { "content-type": type }).end(body);
    if (request.url === "/livez") return send(200, "ok");
    if (request.url === "/readyz") {
      db.ping().then(() => send(200, "ready"), () => send(503, "database unreachable"));
      return;
    }
    if (request.url === "/metrics") {
      metrics.registry.metrics().then((body) => send(200, body, metrics.registry.contentType), () => send(500, "metrics failed"));
      return;
    }
    send(404, "not found");
  }).listen(config.HEALTH_PORT);
  log.info({ concurrency: config.WORKER_CONCURRENCY, healthPort: config.HEALTH_PORT }, "worker running");
  const stop = async (signal: string) => {
    log.info({ signal }, "finishing running jobs");
    health.close();
    await runner.stop();
    await webhookRunner.stop();
    await exportRunner.stop();
    await liveness?.stop();
    await pgPool.end();
    await db.close();
    redis?.disconnect();
    await tracing?.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  await Promise.all([runner.promise, webhookRunner.promise, exportRunner.promise]);
}

const program = new Command()
  .name("worker")
  .option("--install-queue", "install or upgrade the queue schema and grant the service role; run as the migration role")
  .option("--queue-role <role>", "the role that owns the queue schema (the service role is a member)", "platform_queue")
  .action(async (opts: { installQueue?: boolean; queueRole: string }) => {
    if (!opts.installQueue) return work();
    await installQueue(config.DATABASE_URL, opts.queueRole);
    log.info({ queueRole: opts.queueRole }, "queue schema installed");
  });

try {
  await program.parseAsync();
} catch (error) {
  // Unreadable secret files, an unreachable database, a failed queue install: say what, not where in the code.
  log.fatal({ err: process.env.DEBUG ? error : undefined }, `worker: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
