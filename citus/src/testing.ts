import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CITUS_OUTPUT_PLUGIN_LIBRARIES, CITUS_SETTINGS } from "@platform/config";
import pg from "pg";
import { loadMigrations, runMigrations } from "./migrations.js";

export const CITUS_TEST_ROLES = { migrator: ["platform_migrator", "migrator"], app: ["platform_app", "app"] } as const;

/** The connection string of CITUS_URL's cluster as another role. */
export function citusUrlAs(citusUrl: string, user: string, password: string): string {
  const url = new URL(citusUrl);
  url.username = user;
  url.password = password;
  return url.toString();
}

/** What every node of a cluster the Citus suites run on must have, as the platform's nodes do (config/src/citus-settings.ts). */
const WANTED_SETTINGS: Readonly<Record<string, string>> = {
  wal_level: "logical",
  ...Object.fromEntries(Object.entries(CITUS_SETTINGS).map(([name, value]) => [name, String(value)])),
};

/**
 * Where a cluster's nodes differ from the platform's settings, one line each; empty when none does. `settings` holds
 * each node's values as `current_setting` gives them; `output_plugin_libraries` is null where the server predates it.
 */
export function settingsMismatches(nodes: readonly { node: string; settings: Readonly<Record<string, string | null>> }[]): string[] {
  const wantedPlugins = CITUS_OUTPUT_PLUGIN_LIBRARIES.split(",").map((plugin) => plugin.trim());
  return nodes.flatMap(({ node, settings }) => {
    const wrong = Object.entries(WANTED_SETTINGS)
      .filter(([name, value]) => settings[name] !== value)
      .map(([name, value]) => `${node}: ${name} = ${settings[name] ?? "(unset)"}, the platform's ${value}`);
    const plugins = settings.output_plugin_libraries;
    if (plugins != null) {
      const allowed = plugins.split(",").map((plugin) => plugin.trim());
      if (wantedPlugins.some((plugin) => !allowed.includes(plugin))) wrong.push(`${node}: output_plugin_libraries = ${plugins}, the platform's ${CITUS_OUTPUT_PLUGIN_LIBRARIES}`);
    }
    return wrong;
  });
}

/** Refuses a cluster whose nodes are not configured as the platform's are, naming each node and setting. */
async function checkClusterSettings(admin: pg.Client): Promise<void> {
  const probe = `SELECT json_build_object(${[...Object.keys(WANTED_SETTINGS).map((name) => `'${name}', current_setting('${name}')`), "'output_plugin_libraries', current_setting('output_plugin_libraries', true)"].join(", ")})::text AS settings`;
  const coordinator = (await admin.query<{ settings: string }>(probe)).rows[0]!;
  const workers = await admin.query<{ node: string; success: boolean; result: string }>(
    "SELECT nodename || ':' || nodeport AS node, success, result FROM run_command_on_workers($1) ORDER BY nodename, nodeport",
    [probe.replace(/ AS settings$/, "")],
  );
  const unreachable = workers.rows.filter((w) => !w.success);
  if (unreachable.length > 0) throw new Error(`CITUS_URL's cluster: cannot read the settings of ${unreachable.map((w) => `${w.node} (${w.result})`).join(", ")}`);
  const wrong = settingsMismatches([
    { node: "the coordinator", settings: JSON.parse(coordinator.settings) as Record<string, string | null> },
    ...workers.rows.map((w) => ({ node: w.node, settings: JSON.parse(w.result) as Record<string, string | null> })),
  ]);
  if (wrong.length > 0) {
    throw new Error(
      `CITUS_URL's cluster is not configured as the platform's nodes are (config/src/citus-settings.ts), and its tests would fail for it later: ${wrong.join("; ")}. ` +
        "Set each in that node's postgresql.conf and reload (wal_level needs a restart): citus/README.md, \"Test\"",
    );
  }
}

/**
 * For test suites that run against a real Citus cluster (CITUS_URL, a superuser on the coordinator): drops and
 * re-creates the platform schema, creates the two roles, and migrates as the migration role. Refuses when the
 * database holds tenants whose code does not start with "test-", so it cannot wipe a real cluster by mistake.
 */
export async function prepareCitusDatabase(
  citusUrl: string,
  options: { migrateUpTo?: number } = {},
): Promise<{ appUrl: string; migratorUrl: string; release: () => Promise<void> }> {
  // Suites that reset the schema run one at a time: each holds this lock from setup to teardown (release()).
  const lock = new pg.Client({ connectionString: citusUrl, application_name: "platform-citus-test-lock" });
  await lock.connect();
  await lock.query("SELECT pg_advisory_lock(7302615002)");
  const release = async () => {
    await lock.end().catch(() => {});
  };
  const admin = new pg.Client({ connectionString: citusUrl });
  await admin.connect();
  try {
    const workers = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM citus_get_active_worker_nodes()");
    if ((workers.rows[0]?.n ?? 0) < 2) throw new Error("CITUS_URL's cluster needs two or more active workers");
    await checkClusterSettings(admin);
    if ((await admin.query("SELECT to_regclass('platform.tenants') AS t")).rows[0].t) {
      const foreign = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.tenants WHERE code NOT LIKE 'test-%'");
      if ((foreign.rows[0]?.n ?? 0) > 0) throw new Error("CITUS_URL's database holds real tenants: refusing to drop the platform schema");
    }
    await admin.query("DROP SCHEMA IF EXISTS platform CASCADE");
    await admin.query("DROP SCHEMA IF EXISTS platform_migrations CASCADE");
    for (const [role, password] of Object.values(CITUS_TEST_ROLES)) {
      if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rows.length === 0) await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`ALTER ROLE ${role} PASSWORD '${password}'`);
    }
    await admin.query(`GRANT CREATE ON DATABASE ${admin.database} TO platform_migrator`);
    // The queue's owner (the tenant service's graphile-worker schema), as the bootstrap creates it.
    if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'platform_queue'")).rows.length === 0) await admin.query("CREATE ROLE platform_queue NOLOGIN");
    await admin.query("GRANT platform_queue TO platform_app, platform_migrator");
    await admin.query(`GRANT CREATE ON DATABASE ${admin.database} TO platform_queue`);
    await admin.query("DROP SCHEMA IF EXISTS graphile_worker CASCADE");
  } catch (error) {
    await release();
    throw error;
  } finally {
    await admin.end();
  }
  const migratorUrl = citusUrlAs(citusUrl, ...CITUS_TEST_ROLES.migrator);
  const migrator = new pg.Client({ connectionString: migratorUrl });
  await migrator.connect();
  try {
    const all = await loadMigrations();
    const result = await runMigrations(migrator, { migrations: all.filter((m) => m.version <= (options.migrateUpTo ?? Infinity)) });
    if (!result.citus) throw new Error("CITUS_URL points at a database without the citus extension");
  } catch (error) {
    await release();
    throw error;
  } finally {
    await migrator.end();
  }
  return { appUrl: citusUrlAs(citusUrl, ...CITUS_TEST_ROLES.app), migratorUrl, release };
}

export interface WriteLoadReport {
  /** Items whose COMMIT was acknowledged, with their tenant. */
  readonly acknowledged: { tenantId: string; id: string; at: number }[];
  /** Failed writes by SQLSTATE (or the message when there is none). */
  readonly errors: Record<string, number>;
  /** The first message seen for each kind in `errors`. */
  readonly messages: Record<string, string>;
  /** The longest time between two acknowledged writes, across all clients. */
  readonly longestStallMs: number;
  readonly durationMs: number;
}

/**
 * Writers that do what the tenant service does for POST /v1/items, as its role: BEGIN, SET LOCAL app.tenant_id as
 * its own statement, platform.enter_tenant (see `opening`), the item and its audit entry, COMMIT. `clients`
 * connections round-robin over `tenants`, each at most `ratePerClient` writes a second, until stop() or `maxMs` (so a
 * forgotten writer still ends).
 */
export function startTenantWriters(
  appUrl: string,
  tenants: readonly { id: string; ownerId: string }[],
  options: {
    clients?: number;
    ratePerClient?: number;
    maxMs?: number;
    /**
     * How each transaction enters its tenant: as the service does since migration 0012 (`enter_tenant`, the default),
     * or with `SET LOCAL` alone, as it did before, for a schema migrated only that far.
     */
    opening?: "enter_tenant" | "set_local";
  } = {},
): { stop(): Promise<WriteLoadReport>; acknowledgedSoFar(): number } {
  const clients = options.clients ?? 6;
  const pauseMs = 1000 / (options.ratePerClient ?? 40);
  const deadline = Date.now() + (options.maxMs ?? 30 * 60_000);
  const acknowledged: { tenantId: string; id: string; at: number }[] = [];
  const errors: Record<string, number> = {};
  const messages: Record<string, string> = {};
  const started = Date.now();
  let lastAck = started;
  let longestStallMs = 0;
  let stopped = false;
  let turn = 0;
  const loops = Array.from({ length: clients }, async (_, n) => {
    let client: pg.Client | undefined;
    while (!stopped && Date.now() < deadline) {
      const tenant = tenants[turn++ % tenants.length]!;
      try {
        if (!client) {
          client = new pg.Client({ connectionString: appUrl, application_name: `test-writer-${n}` });
          client.on("error", () => {});
          await client.connect();
        }
        await client.query("BEGIN");
        await client.query(`SET LOCAL app.tenant_id = '${tenant.id}'`);
        // As the service opens every tenant transaction on Citus (migration 0012, db/database.ts).
        if (options.opening !== "set_local") await client.query(`SELECT platform.enter_tenant('${tenant.id}')`);
        const { rows } = await client.query<{ id: string }>(
          "INSERT INTO platform.items (tenant_id, owner_id, title, body) VALUES ($1, $2, 'written during a shard operation', 'load') RETURNING id",
          [tenant.id, tenant.ownerId],
        );
        await client.query(
          "INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id) VALUES ($1, 'test-writer', 'item.created', 'item', $2)",
          [tenant.id, rows[0]!.id],
        );
        await client.query("COMMIT");
        const now = Date.now();
        longestStallMs = Math.max(longestStallMs, now - lastAck);
        lastAck = now;
        acknowledged.push({ tenantId: tenant.id, id: rows[0]!.id, at: now });
      } catch (error) {
        const key = (error as { code?: string }).code ?? (error as Error).message;
        errors[key] = (errors[key] ?? 0) + 1;
        messages[key] ??= (error as Error).message;
        await client?.query("ROLLBACK").catch(() => {});
        // A broken connection is replaced, as a pool would.
        if (!(error as { code?: string }).code) {
          await client?.end().catch(() => {});
          client = undefined;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    await client?.end().catch(() => {});
  });
  return {
    acknowledgedSoFar: () => acknowledged.length,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { acknowledged, errors, messages, longestStallMs: Math.max(longestStallMs, Date.now() - lastAck), durationMs: Date.now() - started };
    },
  };
}

/** The acknowledged items missing from the cluster, read as the superuser (no row-level security in the way). */
export async function missingWrites(admin: pg.ClientBase, acknowledged: readonly { tenantId: string; id: string }[]): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < acknowledged.length; i += 5000) {
    const batch = acknowledged.slice(i, i + 5000).map((w) => w.id);
    const { rows } = await admin.query<{ id: string }>("SELECT id::text FROM platform.items WHERE id = ANY($1::uuid[])", [batch]);
    const present = new Set(rows.map((r) => r.id));
    missing.push(...batch.filter((id) => !present.has(id)));
  }
  return missing;
}

/**
 * `pnpm shardctl ...` as an SRE runs it (the real CLI, in its own process) against `citusUrl`, killed after
 * `timeoutMs` (code -1): a hung move would otherwise hold a suite or a benchmark for hours.
 */
export function runShardctl(citusUrl: string, args: readonly string[], timeoutMs = 900_000): Promise<{ code: number; out: string; ms: number }> {
  const cli = fileURLToPath(new URL("./shardctl/cli.ts", import.meta.url));
  const tsx = fileURLToPath(new URL("../node_modules/.bin/tsx", import.meta.url));
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(tsx, [cli, ...args], { env: { ...process.env, CITUS_URL: citusUrl }, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number; killed?: boolean }) | null;
      resolve({ code: e ? (e.killed ? -1 : (e.code ?? 1)) : 0, out: `${stdout}${stderr}`, ms: Date.now() - started });
    });
  });
}

/**
 * shardctl in one process of its own that a test can signal as an operator's terminal would (Ctrl-C, a closed
 * terminal) or kill: node with tsx's loader, no tsx parent in between to relay or swallow a signal.
 */
export function startShardctl(citusUrl: string, args: readonly string[]): {
  readonly pid: number;
  kill(signal: NodeJS.Signals): void;
  output(): string;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
} {
  const cli = fileURLToPath(new URL("./shardctl/cli.ts", import.meta.url));
  const loader = new URL("../node_modules/tsx/dist/loader.mjs", import.meta.url).href;
  const child = spawn(process.execPath, ["--import", loader, cli, ...args], { env: { ...process.env, CITUS_URL: citusUrl }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, out })));
  return { pid: child.pid!, kill: (signal) => child.kill(signal), output: () => out, done };
}
