/**
 * What the benchmarks at scale share: a real PostgreSQL 15 migrated as in production, tenants seeded in bulk, and
 * the service and the worker in processes of their own, started as production starts them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort, startPostgres, type PostgresServer } from "@platform/testing";
import { installQueue } from "../src/worker/queue.js";
import { AUDIENCE, ISSUER, SECRET, migratePlatform } from "../test/harness.js";

const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface BenchDatabase {
  readonly server: PostgresServer;
  /** The superuser: seeds and checks. */
  readonly admin: pg.Client;
  close(): Promise<void>;
}

/**
 * Memory settings as the platform sizes its own database servers (infra/src/citus/bootstrap/lib/patroni.sh): a
 * quarter of the machine's memory for shared_buffers, three quarters assumed cached. Under the 512 MB this used to
 * give every count, the 1M-tenant database (1.7 GB) did not fit, and its reads were copies from the page cache that
 * no production server sized this way makes; BENCH_SHARED_BUFFERS (e.g. 512MB) measures that case again.
 */
export function databaseMemorySettings(): Record<string, string> {
  const quarterMb = Math.floor(totalmem() / 1024 / 1024 / 4);
  return { shared_buffers: process.env.BENCH_SHARED_BUFFERS ?? `${quarterMb}MB`, effective_cache_size: `${quarterMb * 3}MB` };
}

/** PostgreSQL 15 with the platform's roles, migrated by the migration role; with the worker's queue when asked. */
export async function startBenchDatabase(options: { queue?: boolean } = {}): Promise<BenchDatabase> {
  const server = await startPostgres({ settings: { max_connections: "300", ...databaseMemorySettings() } });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await migratePlatform(server, admin);
  if (options.queue) await installQueue(server.urlFor("platform_migrator", "migrator"));
  return {
    server,
    admin,
    async close() {
      await admin.end();
      server.stop();
    },
  };
}

/**
 * Reads the platform's tables and indexes into shared_buffers (pg_prewarm): a database serving a million tenants runs
 * with a warm cache, and a benchmark of a few seconds a round would otherwise measure the cache filling, a cost the
 * 20-tenant database (a few MB) never pays.
 */
export async function warmCache(admin: pg.Client): Promise<void> {
  const prewarm = "SELECT count(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'platform' AND c.relkind IN ('r', 'i')";
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_prewarm");
  // On Citus the rows live in the workers' shards (tables of the same schema there): warm every node.
  if ((await admin.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).rows.length > 0) {
    await admin.query("SELECT run_command_on_all_nodes('CREATE EXTENSION IF NOT EXISTS pg_prewarm')");
    await admin.query("SELECT run_command_on_all_nodes($1)", [prewarm]);
  } else {
    await admin.query(prewarm);
  }
}

/**
 * Tenants <prefix>1 .. <prefix>n, each with an owner and two items; only the ones above `from` are written. On a
 * shared Citus cluster the prefix starts with test- (prepareCitusDatabase drops only test tenants).
 */
export async function seedTenants(admin: pg.Client, n: number, from = 0, prefix = "scale-"): Promise<void> {
  const started = Date.now();
  const batch = 100_000;
  for (let lo = from + 1; lo <= n; lo += batch) {
    const hi = Math.min(n, lo + batch - 1);
    await admin.query("BEGIN");
    await admin.query("INSERT INTO platform.tenants (code, name, max_users) SELECT $3 || i, 'Scale ' || i, 1000 FROM generate_series($1::int, $2::int) i", [lo, hi, prefix]);
    await admin.query(
      "INSERT INTO platform.users (tenant_id, email) SELECT t.id, 'owner@' || t.code || '.test' FROM platform.tenants t WHERE t.code = ANY (SELECT $3 || i FROM generate_series($1::int, $2::int) i)",
      [lo, hi, prefix],
    );
    await admin.query(
      "INSERT INTO platform.items (tenant_id, owner_id, title, body) SELECT u.tenant_id, u.id, 'item ' || k, 'a small item body' FROM platform.users u JOIN platform.tenants t ON t.id = u.tenant_id, generate_series(1, 2) k WHERE t.code = ANY (SELECT $3 || i FROM generate_series($1::int, $2::int) i)",
      [lo, hi, prefix],
    );
    await admin.query("COMMIT");
  }
  await admin.query("VACUUM ANALYZE platform.tenants, platform.users, platform.items");
  if (n > from) console.log(`seeded ${n.toLocaleString("en")} tenants (${(n - from).toLocaleString("en")} new) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

export interface Target { tenant: string; owner: string; item: string }

/** Each tenant number's id, owner and first item, in the order given. */
export async function targets(admin: pg.Client, numbers: number[], prefix = "scale-"): Promise<Target[]> {
  const codes = [...new Set(numbers)].map((i) => `${prefix}${i}`);
  const byCode = new Map<string, Target>();
  for (let i = 0; i < codes.length; i += 20_000) {
    const { rows } = await admin.query<{ code: string; tenant: string; owner: string; item: string }>(
      // A join on the tenant, not a subquery per row: Citus plans that only on the distribution column.
      "SELECT DISTINCT ON (t.code) t.code, t.id AS tenant, u.id AS owner, i.id AS item FROM platform.tenants t JOIN platform.users u ON u.tenant_id = t.id JOIN platform.items i ON i.tenant_id = u.tenant_id WHERE t.code = ANY ($1) ORDER BY t.code, i.id",
      [codes.slice(i, i + 20_000)],
    );
    for (const r of rows) byCode.set(r.code, r);
  }
  return numbers.map((i) => byCode.get(`${prefix}${i}`)!);
}

export interface Process {
  readonly pid: number;
  readonly child: ChildProcess;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
}

/** One of the package's entry points in its own process: node with tsx's loader, no wrapper, as the image runs it. */
function startEntry(entry: string, env: Record<string, string>): Process {
  const child = spawn(process.execPath, ["--import", "tsx", join(PACKAGE, "src", entry)], {
    cwd: PACKAGE,
    env: { ...process.env, LOG_LEVEL: "silent", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return {
    pid: child.pid!,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** The service, answering on loopback, with the rate limit out of the way; on a bench database, or at a URL as its role. */
export async function startServiceProcess(database: PostgresServer | string): Promise<Process & { url: string }> {
  const port = await freePort();
  const service = startEntry("server.ts", {
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: typeof database === "string" ? database : database.urlFor("platform_app", "app"),
    DATABASE_POOL_SIZE: "20",
    AUTH_JWT_SECRET: SECRET,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    RATE_LIMIT_MAX: "100000000",
    // Not NODE_ENV=production: that refuses the shared-secret tokens a benchmark signs itself (Hydra is not here).
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (service.child.exitCode !== null) throw new Error(`the service exited with ${service.child.exitCode} before it listened`);
    const ok = await fetch(`${url}/health`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (i > 300) throw new Error("the service did not answer /health within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...service, url };
}

/** The queue worker as the service role, ready once its health port answers. */
export async function startWorkerProcess(server: PostgresServer, env: Record<string, string> = {}): Promise<Process> {
  const port = await freePort();
  const worker = startEntry("worker.ts", { DATABASE_URL: server.urlFor("platform_app", "app"), HEALTH_PORT: String(port), ...env });
  for (let i = 0; ; i++) {
    if (worker.child.exitCode !== null) throw new Error(`the worker exited with ${worker.child.exitCode} before it was ready`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (i > 300) throw new Error("the worker was not ready within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return worker;
}

/** Resident and peak resident memory of a process, MiB (Linux). */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/**
 * CPU seconds (user + system) used so far by the process `pid`, from /proc: with wrk, the service and PostgreSQL on
 * the same cores, a per-request figure for each says which of them a slower count is paying in.
 */
export function cpuSeconds(pid: number): number {
  // Fields after the command name (which may hold spaces), from the last ")": utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A PostgreSQL server's processes now running (the postmaster and its children, backends included): pid to CPU seconds. */
export type DatabaseCpu = ReadonlyMap<number, number>;
export function databaseCpu(server: PostgresServer): DatabaseCpu {
  const postmaster = Number(readFileSync(join(server.socketDir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
  const used = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster || Number(entry) === postmaster) used.set(Number(entry), cpuSeconds(Number(entry)));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return used;
}

/**
 * CPU seconds the server's processes used since `before`, per process: a backend that ended meanwhile (a pool
 * closed just before) would otherwise take its whole past from the sum and make it negative, and one started
 * meanwhile counts from zero. A process that ended within the interval is not counted: read before closing a pool.
 */
export function databaseCpuSince(server: PostgresServer, before: DatabaseCpu): number {
  let total = 0;
  for (const [pid, seconds] of databaseCpu(server)) total += seconds - (before.get(pid) ?? 0);
  return total;
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The q-quantile (0..1) of `values`, by rank. */
export const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))]!;
