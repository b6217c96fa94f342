import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClientBase } from "pg";
import { parse } from "libpg-query";

/** The migrations shipped with this package. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

/** Runners of every version agree on this key, so two of them never apply migrations at the same time. */
export const MIGRATION_LOCK_KEY = 7_302_615_001n;

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const NO_TRANSACTION = /^--\s*migrate:no-transaction\s*$/m;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly file: string;
  readonly sql: string;
  /**
   * The file's statements, each sent on its own. Citus forwards some commands to the workers as the query string
   * they arrived in, so a multi-statement string fails there ("cannot insert multiple commands into a prepared
   * statement"); PostgreSQL's own parser (libpg-query) finds the boundaries, dollar quoting and all.
   */
  readonly statements: readonly string[];
  /** sha256 of the file's bytes: an applied migration must never change. */
  readonly checksum: string;
  /** `-- migrate:no-transaction` (e.g. CREATE INDEX CONCURRENTLY) runs outside a transaction. */
  readonly transactional: boolean;
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: Date;
}

export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

/** Splits SQL into statements with PostgreSQL 15's parser; a syntax error names the file, line and column. */
export async function splitStatements(sql: string, file: string): Promise<string[]> {
  let tree: { stmts?: { stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = await parse(sql);
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const position = details?.cursorPosition;
    const where = position === undefined ? "" : (() => {
      const before = Buffer.from(sql).subarray(0, position).toString("utf8").split("\n");
      return ` at line ${before.length}, column ${before.at(-1)!.length + 1}`;
    })();
    throw new MigrationError(`${file}: syntax error${where}: ${(error as Error).message}`);
  }
  // Locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(sql, "utf8");
  return (tree.stmts ?? [])
    .map((s) => {
      const start = s.stmt_location ?? 0;
      const end = s.stmt_len ? start + s.stmt_len : bytes.length;
      return bytes.subarray(start, end).toString("utf8").trim();
    })
    .filter((statement) => statement.length > 0);
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) {
      throw new MigrationError(`${join(dir, file)}: migration files are named NNNN_lowercase_name.sql (e.g. 0003_add_items_index.sql)`);
    }
    const bytes = readFileSync(join(dir, file));
    const sql = bytes.toString("utf8");
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      file,
      sql,
      statements: await splitStatements(sql, file),
      checksum: createHash("sha256").update(bytes).digest("hex"),
      transactional: !NO_TRANSACTION.test(sql),
    });
  }
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new MigrationError(`${m.file}: versions must run 0001, 0002, ... without gaps or duplicates; expected ${String(i + 1).padStart(4, "0")}`);
    }
  });
  return migrations;
}

export interface MigrationPlan {
  readonly applied: AppliedMigration[];
  readonly pending: Migration[];
}

/** Compares the files with what the database recorded; refuses anything but "a prefix applied, the rest pending". */
export function planMigrations(migrations: readonly Migration[], applied: readonly AppliedMigration[]): MigrationPlan {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  for (const a of applied) {
    const file = byVersion.get(a.version);
    const label = `${String(a.version).padStart(4, "0")}_${a.name}.sql`;
    if (!file) {
      throw new MigrationError(
        `migration ${label} was applied on ${a.appliedAt.toISOString()} but its file is missing: restore it (applied migrations are never removed)`,
      );
    }
    if (file.checksum !== a.checksum) {
      throw new MigrationError(
        `migration ${label} was applied on ${a.appliedAt.toISOString()} with checksum ${a.checksum.slice(0, 12)} but the file now has ` +
          `${file.checksum.slice(0, 12)}: applied migrations are immutable. Restore the file (git checkout) and put the change in a new migration.`,
      );
    }
  }
  const done = new Set(applied.map((a) => a.version));
  return { applied: [...applied], pending: migrations.filter((m) => !done.has(m.version)) };
}

/** Its own schema: PostgreSQL 15 no longer lets ordinary roles create tables in public. */
const HISTORY_SCHEMA = "platform_migrations";
const HISTORY_TABLE = `${HISTORY_SCHEMA}.history`;

async function ensureHistoryTable(client: ClientBase): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${HISTORY_SCHEMA}`);
  await client.query(`CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text        NOT NULL DEFAULT current_user,
    duration_ms integer     NOT NULL
  )`);
}

export async function readApplied(client: ClientBase): Promise<AppliedMigration[]> {
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass($1) AS t", [HISTORY_TABLE]);
  if (!exists.rows[0]?.t) return [];
  const { rows } = await client.query<{ version: number; name: string; checksum: string; applied_at: Date }>(
    `SELECT version, name, checksum, applied_at FROM ${HISTORY_TABLE} ORDER BY version`,
  );
  return rows.map((r) => ({ version: r.version, name: r.name, checksum: r.checksum, appliedAt: r.applied_at }));
}

export async function hasCitus(client: ClientBase): Promise<boolean> {
  const { rows } = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  return rows.length > 0;
}

/** Takes the runner's advisory lock, waiting up to `timeoutMs`, and says who holds it when it gives up. */
export async function acquireMigrationLock(client: ClientBase, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS locked", [MIGRATION_LOCK_KEY.toString()]);
    if (rows[0]?.locked) return;
    if (Date.now() >= deadline) {
      const holder = await client.query<{ pid: number; usename: string; application_name: string; backend_start: Date }>(
        `SELECT a.pid, a.usename, a.application_name, a.backend_start
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted
            AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint`,
        [MIGRATION_LOCK_KEY.toString()],
      );
      const h = holder.rows[0];
      throw new MigrationError(
        `another migration runner holds the lock${h ? ` (pid ${h.pid}, user ${h.usename}, ${h.application_name || "no application name"}, since ${h.backend_start.toISOString()})` : ""}; ` +
          `waited ${Math.round(timeoutMs / 1000)}s. Let it finish, or if it is stuck: SELECT pg_terminate_backend(<pid>).`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export interface RunOptions {
  readonly dryRun?: boolean;
  /** How long to wait for another runner's advisory lock. */
  readonly lockTimeoutMs?: number;
  /**
   * lock_timeout for each transactional migration: how long one of its statements may wait for a table lock before
   * the migration rolls back and tries again. A DDL statement waiting in a lock queue makes every later query on that
   * table wait behind it, so a short wait and a retry keeps the service's writes flowing on a live cluster.
   * @default 2000
   */
  readonly ddlLockTimeoutMs?: number;
  /** Tries per migration before the run gives up on lock_timeout. @default 30 */
  readonly ddlAttempts?: number;
  /** Waits between tries (the n-th wait, from 1); tests shorten it. @default 250 ms doubling to 5 s, with jitter */
  readonly retryDelayMs?: (attempt: number) => number;
  readonly migrations?: readonly Migration[];
  /**
   * Apply a plain CREATE INDEX on a table that already holds rows. Refused by default: it blocks every write to the
   * table for the whole build (minutes at millions of rows), where CREATE INDEX CONCURRENTLY does not.
   * @default false
   */
  readonly allowBlockingIndex?: boolean;
  /** Progress lines (one per migration). */
  readonly log?: (line: string) => void;
}

export interface RunResult {
  readonly citus: boolean;
  readonly applied: AppliedMigration[];
  readonly pending: Migration[];
  /** Versions applied by this run (empty on a dry run). */
  readonly ran: number[];
}

/** lock_not_available: lock_timeout expired (or NOWAIT), on the coordinator or relayed from a worker. */
const LOCK_NOT_AVAILABLE = "55P03";
const defaultRetryDelay = (attempt: number) => Math.min(5000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);

/**
 * Applies pending migrations in order, each in its own transaction with its history row, under an advisory lock.
 * On Citus, each transaction first switches to sequential shard modification so DDL on reference and distributed
 * tables in one transaction (foreign keys between them) is allowed. A transactional migration that cannot take a
 * table lock within `ddlLockTimeoutMs` rolls back and is tried again, up to `ddlAttempts` times.
 */
export async function runMigrations(client: ClientBase, options: RunOptions = {}): Promise<RunResult> {
  const log = options.log ?? (() => {});
  const migrations = options.migrations ?? (await loadMigrations());
  await acquireMigrationLock(client, options.lockTimeoutMs ?? 60_000);
  try {
    const citus = await hasCitus(client);
    const plan = planMigrations(migrations, await readApplied(client));
    if (options.dryRun) {
      for (const m of plan.pending) log(`would apply ${m.file} (sha256 ${m.checksum.slice(0, 12)}${m.transactional ? "" : ", outside a transaction"})`);
      if (plan.pending.length === 0) log("up to date: nothing to apply");
      return { citus, ...plan, ran: [] };
    }
    await ensureHistoryTable(client);
    const ran: number[] = [];
    const lockTimeoutMs = Math.round(options.ddlLockTimeoutMs ?? 2000);
    const attempts = Math.max(1, Math.floor(options.ddlAttempts ?? 30));
    const retryDelay = options.retryDelayMs ?? defaultRetryDelay;
    for (const m of plan.pending) {
      if (!options.allowBlockingIndex) await refuseBlockingIndexes(client, m);
      const started = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          await applyOnce(client, m, { citus, lockTimeoutMs, started });
          break;
        } catch (error) {
          if (m.transactional) await client.query("ROLLBACK").catch(() => {});
          const detail = error as { code?: string; message?: string; position?: string; hint?: string };
          if (m.transactional && detail.code === LOCK_NOT_AVAILABLE) {
            if (attempt < attempts) {
              log(`${m.file}: a table lock was not free within ${lockTimeoutMs} ms (${detail.message}); rolled back, trying again (${attempt + 1}/${attempts})`);
              await new Promise((resolve) => setTimeout(resolve, retryDelay(attempt)));
              continue;
            }
            throw new MigrationError(
              `${m.file} could not take its table locks within ${lockTimeoutMs} ms in ${attempts} tries (${detail.message}) and was rolled back: nothing changed. ` +
                `Long transactions hold them: SELECT pid, now() - xact_start AS age, query FROM pg_stat_activity WHERE xact_start IS NOT NULL ORDER BY 2 DESC. ` +
                `Run it again later, or with a longer --ddl-lock-timeout.`,
            );
          }
          throw new MigrationError(
            `${m.file} failed and was rolled back${m.transactional ? "" : " (it runs outside a transaction: check what it left behind)"}: ` +
              `${detail.message ?? String(error)}${detail.hint ? ` (hint: ${detail.hint})` : ""}${detail.position ? ` at character ${detail.position}` : ""}`,
          );
        }
      }
      ran.push(m.version);
      log(`applied ${m.file} in ${Date.now() - started} ms`);
    }
    if (ran.length === 0) log("up to date: nothing to apply");
    return { citus, applied: await readApplied(client), pending: [], ran };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [MIGRATION_LOCK_KEY.toString()]).catch(() => {});
  }
}

/**
 * Refuses a migration that would build an index the blocking way on a table that already has rows: CREATE INDEX
 * holds a SHARE lock, so every INSERT, UPDATE and DELETE on the table waits until the build ends (on Citus, on every
 * shard). An index on a table the same run creates, or an empty one, costs nothing and is allowed.
 */
export async function refuseBlockingIndexes(client: ClientBase, m: Migration): Promise<void> {
  for (const statement of m.statements) {
    const tree = (await parse(statement)) as { stmts?: { stmt?: { IndexStmt?: { concurrent?: boolean; relation?: { schemaname?: string; relname?: string } } } }[] };
    const index = tree.stmts?.[0]?.stmt?.IndexStmt;
    if (!index || index.concurrent || !index.relation?.relname) continue;
    const table = index.relation.schemaname ? `${index.relation.schemaname}.${index.relation.relname}` : index.relation.relname;
    const { rows } = await client.query<{ regclass: string | null }>("SELECT to_regclass($1)::text AS regclass", [table]);
    if (!rows[0]?.regclass) continue;
    const { rows: any } = await client.query(`SELECT 1 FROM ${rows[0].regclass} LIMIT 1`);
    if (any.length === 0) continue;
    throw new MigrationError(
      `${m.file}: CREATE INDEX on ${table}, which holds rows, blocks every write to it until the build ends. ` +
        "Use CREATE INDEX CONCURRENTLY in a migration of its own that starts with the line `-- migrate:no-transaction` " +
        "(docs: citus/README.md, \"Changing the schema of a live cluster\"), or pass --allow-blocking-index during a maintenance window.",
    );
  }
}

/** One try at one migration: its statements and its history row, in a transaction unless it opts out. */
async function applyOnce(client: ClientBase, m: Migration, o: { citus: boolean; lockTimeoutMs: number; started: number }): Promise<void> {
  if (m.transactional) {
    await client.query("BEGIN");
    // Each its own statement: Citus forwards SET LOCAL to the workers only when it is sent alone.
    await client.query(`SET LOCAL lock_timeout = ${o.lockTimeoutMs}`);
    if (o.citus) await client.query("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'");
  }
  for (const statement of m.statements) await client.query(statement);
  await client.query(`INSERT INTO ${HISTORY_TABLE} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)`, [m.version, m.name, m.checksum, Date.now() - o.started]);
  if (m.transactional) await client.query("COMMIT");
}
