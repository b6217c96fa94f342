/**
 * The queue worker: tenant provisioning follow-ups, the daily metrics rollup and audit-log retention.
 *
 *   pnpm --filter tenant-service worker                   run (as the service role, DATABASE_URL)
 *   pnpm --filter tenant-service worker --install-queue   install/upgrade the queue schema (as the migration role)
 *
 * Safe to run in several replicas: jobs are taken with SKIP LOCKED and cron fires once per slot.
 */
import { Command } from "commander";
import { parseCronItems, run } from "graphile-worker";
import pg from "pg";
import { createServer } from "node:http";
import { Counter, Registry, collectDefaultMetrics } from "prom-client";
import { z } from "zod";
import { postgresConnection } from "./connections.js";
import { createPostgresDatabase } from "./db/postgres.js";
import { installQueue } from "./worker/queue.js";
import { CRON_ITEMS, createTaskList } from "./worker/tasks.js";

const WorkerEnv = z.object({
  DATABASE_URL: z.string().url("must be a postgresql:// URL (the worker needs a real database)"),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  AUDIT_RETENTION_MONTHS: z.coerce.number().int().min(1).max(120).default(13),
  ROLLUP_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  DATABASE_PASSWORD_FILE: z.string().optional(),
  DATABASE_CA_FILE: z.string().optional(),
  /** Probes and metrics: /livez, /readyz, /metrics. */
  HEALTH_PORT: z.coerce.number().int().min(1).max(65535).default(9090),
});

const program = new Command()
  .name("worker")
  .option("--install-queue", "install or upgrade the queue schema and grant the service role; run as the migration role")
  .option("--queue-role <role>", "the role that owns the queue schema (the service role is a member)", "platform_queue")
  .action(async (opts: { installQueue?: boolean; queueRole: string }) => {
    const parsed = WorkerEnv.safeParse(process.env);
    if (!parsed.success) {
      console.error(`invalid worker configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
      process.exit(2);
    }
    const env = parsed.data;
    if (opts.installQueue) {
      await installQueue(env.DATABASE_URL, opts.queueRole);
      console.log(`queue schema installed, owned by ${opts.queueRole}`);
      return;
    }
    const connection = postgresConnection(env);
    const db = createPostgresDatabase({ url: env.DATABASE_URL, password: connection.password, ssl: connection.ssl, poolSize: 2 });
    const pgPool = new pg.Pool({ ...connection, max: env.WORKER_CONCURRENCY + 2, application_name: "tenant-worker" });
    const runner = await run({
      pgPool,
      concurrency: env.WORKER_CONCURRENCY,
      noHandleSignals: true,
      taskList: createTaskList({ db, auditRetentionMonths: env.AUDIT_RETENTION_MONTHS, rollupBatchSize: env.ROLLUP_BATCH_SIZE }),
      parsedCronItems: parseCronItems(CRON_ITEMS),
    });
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const jobs = new Counter({ name: "worker_jobs_total", help: "Jobs finished by task and outcome", labelNames: ["task", "outcome"], registers: [registry] });
    runner.events.on("job:success", ({ job }) => jobs.inc({ task: job.task_identifier, outcome: "success" }));
    runner.events.on("job:failed", ({ job }) => jobs.inc({ task: job.task_identifier, outcome: "failed" }));
    const health = createServer((request, response) => {
      const send = (status: number, body: string, type = "text/plain") => response.writeHead(status, { "content-type": type }).end(body);
      if (request.url === "/livez") return send(200, "ok");
      if (request.url === "/readyz") {
        db.ping().then(() => send(200, "ready"), () => send(503, "database unreachable"));
        return;
      }
      if (request.url === "/metrics") {
        registry.metrics().then((body) => send(200, body, registry.contentType), () => send(500, "metrics failed"));
        return;
      }
      send(404, "not found");
    }).listen(env.HEALTH_PORT);
    const stop = async (signal: string) => {
      console.log(`${signal}: finishing running jobs`);
      health.close();
      await runner.stop();
      await pgPool.end();
      await db.close();
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    await runner.promise;
  });

try {
  await program.parseAsync();
} catch (error) {
  // Unreadable secret files, an unreachable database, a failed queue install: say what, not where in the code.
  console.error(`worker: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.DEBUG) console.error(error);
  process.exit(1);
}
