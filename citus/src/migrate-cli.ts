/**
 * `pnpm migrate` (root) / `pnpm --filter @platform/citus migrate`: apply the schema migrations to DATABASE_URL.
 *
 *   pnpm migrate                 apply pending migrations
 *   pnpm migrate --dry-run       list what would be applied; verify checksums of applied ones
 *   pnpm migrate status          applied and pending migrations
 *
 * Each transactional migration runs with lock_timeout (--ddl-lock-timeout, 2 s) and is rolled back and tried again
 * (--ddl-attempts, 30) when a table lock is busy, so it never queues the service's writes behind itself for long.
 *
 * Exit codes: 0 done, 2 bad usage, 4 refused (an applied migration was edited, another runner holds the lock, no
 * database) or failed.
 */
import { Command, InvalidArgumentError } from "commander";
import pg from "pg";
import { main } from "@platform/cli";
import { MigrationError, loadMigrations, planMigrations, readApplied, runMigrations } from "./migrations.js";

function databaseUrl(option: string | undefined): string {
  const url = option ?? process.env.DATABASE_URL;
  if (!url) {
    throw new MigrationError("no database: set DATABASE_URL (e.g. postgresql://platform_migrator@coordinator.db.internal:5432/platform) or pass --database-url");
  }
  return url;
}

const seconds = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`must be a number of seconds (got "${value}")`);
  return n;
};

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be a number of seconds above 0 (got "${value}")`);
  return n;
};

const whole = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a whole number from 1 (got "${value}")`);
  return n;
};

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "platform-migrate" });
  try {
    await client.connect();
  } catch (error) {
    throw new MigrationError(`cannot connect to the database: ${(error as Error).message}. Check DATABASE_URL, the network path and the password.`);
  }
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => {});
  }
}

const program = new Command()
  .name("platform-migrate")
  .description("Apply the platform's schema migrations (plain PostgreSQL 15 or Citus 13)")
  .option("--database-url <url>", "connection string (default: $DATABASE_URL)")
  .option("--dry-run", "show what would be applied, change nothing")
  .option("--lock-timeout <seconds>", "how long to wait for another runner", seconds, 60)
  .option("--ddl-lock-timeout <seconds>", "how long a migration's statement may wait for a table lock before it rolls back and tries again", positive, 2)
  .option("--ddl-attempts <n>", "tries per migration when its table locks are busy", whole, 30)
  .option("--allow-blocking-index", "apply a plain CREATE INDEX on a table with rows (it blocks the table's writes for the whole build): for a maintenance window")
  .action(async (opts: { databaseUrl?: string; dryRun?: boolean; lockTimeout: number; ddlLockTimeout: number; ddlAttempts: number; allowBlockingIndex?: boolean }) => {
    const result = await withClient(databaseUrl(opts.databaseUrl), (client) =>
      runMigrations(client, {
        dryRun: opts.dryRun,
        lockTimeoutMs: opts.lockTimeout * 1000,
        ddlLockTimeoutMs: opts.ddlLockTimeout * 1000,
        ddlAttempts: opts.ddlAttempts,
        allowBlockingIndex: opts.allowBlockingIndex,
        log: (line) => console.log(line),
      }),
    );
    console.log(`${result.citus ? "Citus" : "PostgreSQL"}: ${result.applied.length} applied${opts.dryRun ? `, ${result.pending.length} pending` : ""}`);
  });

program
  .command("status")
  .description("list applied and pending migrations")
  .action(async () => {
    await withClient(databaseUrl(program.opts<{ databaseUrl?: string }>().databaseUrl), async (client) => {
      const plan = planMigrations(await loadMigrations(), await readApplied(client));
      for (const a of plan.applied) console.log(`applied  ${String(a.version).padStart(4, "0")}_${a.name}  ${a.appliedAt.toISOString()}`);
      for (const p of plan.pending) console.log(`pending  ${p.file}`);
    });
  });

// One line on stderr, the stack only with DEBUG=1; exit 2 for bad usage, 4 when a migration is refused or fails.
await main("migrate", program);
