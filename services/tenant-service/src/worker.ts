/**
 * The queue worker: tenant provisioning follow-ups, the daily metrics rollup and audit-log retention.
 *
 *   pnpm --filter tenant-service worker                   run (as the service role, DATABASE_URL)
 *   pnpm --filter tenant-service worker --install-queue   install/upgrade the queue schema (as the migration role)
 *
 * Safe to run in several replicas: jobs are taken with SKIP LOCKED and cron fires once per slot.
 */
import { Command } from "commander";
import { parseCrontab, run } from "graphile-worker";
import pg from "pg";
import { z } from "zod";
import { createPostgresDatabase } from "./db/postgres.js";
import { installQueue } from "./worker/queue.js";
import { CRONTAB, createTaskList } from "./worker/tasks.js";

const WorkerEnv = z.object({
  DATABASE_URL: z.string().url("must be a postgresql:// URL (the worker needs a real database)"),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  AUDIT_RETENTION_MONTHS: z.coerce.number().int().min(1).max(120).default(13),
  ROLLUP_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
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
    const db = createPostgresDatabase({ url: env.DATABASE_URL, poolSize: env.WORKER_CONCURRENCY + 2 });
    const pgPool = new pg.Pool({ connectionString: env.DATABASE_URL, max: env.WORKER_CONCURRENCY + 2, application_name: "tenant-worker" });
    const runner = await run({
      pgPool,
      concurrency: env.WORKER_CONCURRENCY,
      noHandleSignals: true,
      taskList: createTaskList({ db, auditRetentionMonths: env.AUDIT_RETENTION_MONTHS, rollupBatchSize: env.ROLLUP_BATCH_SIZE }),
      parsedCronItems: parseCrontab(CRONTAB),
    });
    const stop = async (signal: string) => {
      console.log(`${signal}: finishing running jobs`);
      await runner.stop();
      await pgPool.end();
      await db.close();
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    await runner.promise;
  });

await program.parseAsync();
