/**
 * What the tenantctl tests and `pnpm bench:tenant-move` share: two real databases migrated as the platform's are
 * (home, and a target: a second PostgreSQL 15, or Citus with CITUS_URL), tenants seeded into home, writers that route
 * each tenant's transactions as the service does, and tenantctl run as an SRE runs it, in its own process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { type PostgresServer, startPostgres } from "@platform/testing";
import { loadMigrations, runMigrations } from "../src/migrations.js";
import { prepareCitusDatabase } from "../src/testing.js";

export const TARGET = "target";

/** Logical decoding on, and room for a slot per tenant in its rollback window. */
const LOGICAL = { wal_level: "logical", max_replication_slots: "250", max_wal_senders: "40", max_connections: "300" };

async function migrate(url: string): Promise<void> {
  const migrator = new pg.Client({ connectionString: url });
  await migrator.connect();
  try {
    await runMigrations(migrator, { migrations: await loadMigrations() });
  } finally {
    await migrator.end();
  }
}

/** The roles the platform's bootstrap creates, on a fresh server; tenantctl's role may replicate. */
async function createRoles(admin: pg.Client, database: string): Promise<void> {
  for (const [role, password] of [["platform_migrator", "migrator"], ["platform_app", "app"]]) {
    if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rows.length === 0) await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`ALTER ROLE ${role} PASSWORD '${password}'`);
  }
  await admin.query("ALTER ROLE platform_migrator REPLICATION");
  await admin.query(`GRANT CREATE ON DATABASE ${database} TO platform_migrator`);
  if ((await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'platform_queue'")).rows.length === 0) await admin.query("CREATE ROLE platform_queue NOLOGIN");
  await admin.query("GRANT platform_queue TO platform_app, platform_migrator");
  await admin.query(`GRANT CREATE ON DATABASE ${database} TO platform_queue`);
}

export interface Side {
  readonly name: string;
  /** Superuser: reads everything. */
  readonly admin: pg.Pool;
  /** The service's role, through row-level security. */
  readonly app: pg.Pool;
  readonly migratorUrl: string;
  readonly citus: boolean;
}

export interface Pair {
  readonly home: Side;
  readonly target: Side;
  /** The environment tenantctl runs with: DATABASE_URL (home) and DATABASE_URL_TARGET, as the migration role. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

function side(name: string, adminUrl: string, appUrl: string, migratorUrl: string, citus: boolean): Side {
  const admin = new pg.Pool({ connectionString: adminUrl, max: 4 });
  const app = new pg.Pool({ connectionString: appUrl, max: 24 });
  admin.on("error", () => {});
  app.on("error", () => {});
  return { name, admin, app, migratorUrl, citus };
}

/** Home: a fresh PostgreSQL 15. Target: a second one, or the Citus cluster at CITUS_URL (its platform schema is reset). */
export async function startPair(options: { citusUrl?: string } = {}): Promise<Pair> {
  const servers: PostgresServer[] = [];
  try {
    return await openPair(servers, options);
  } catch (error) {
    // A setup that fails half way leaves no server running.
    for (const s of servers) s.stop();
    throw error;
  }
}

async function openPair(servers: PostgresServer[], options: { citusUrl?: string }): Promise<Pair> {
  const homeServer = await startPostgres({ settings: LOGICAL });
  servers.push(homeServer);
  const boot = new pg.Client({ connectionString: homeServer.url });
  await boot.connect();
  await createRoles(boot, "postgres");
  await boot.end();
  await migrate(homeServer.urlFor("platform_migrator", "migrator"));
  const home = side("home", homeServer.url, homeServer.urlFor("platform_app", "app"), homeServer.urlFor("platform_migrator", "migrator"), false);
  let target: Side;
  let release: (() => Promise<void>) | undefined;
  if (options.citusUrl) {
    const prepared = await prepareCitusDatabase(options.citusUrl);
    release = prepared.release;
    const admin = new pg.Client({ connectionString: options.citusUrl });
    await admin.connect();
    await admin.query("ALTER ROLE platform_migrator REPLICATION");
    await admin.end();
    target = side(TARGET, options.citusUrl, prepared.appUrl, prepared.migratorUrl, true);
  } else {
    const targetServer = await startPostgres({ settings: LOGICAL });
    servers.push(targetServer);
    const c = new pg.Client({ connectionString: targetServer.url });
    await c.connect();
    await createRoles(c, "postgres");
    await c.end();
    await migrate(targetServer.urlFor("platform_migrator", "migrator"));
    target = side(TARGET, targetServer.url, targetServer.urlFor("platform_app", "app"), targetServer.urlFor("platform_migrator", "migrator"), false);
  }
  return {
    home,
    target,
    env: { DATABASE_URL: home.migratorUrl, [`DATABASE_URL_${TARGET.toUpperCase()}`]: target.migratorUrl },
    async stop() {
      for (const s of [home, target]) await Promise.all([s.admin.end().catch(() => {}), s.app.end().catch(() => {})]);
      await release?.();
      for (const s of servers) s.stop();
    },
  };
}

export interface SeededTenant {
  readonly id: string;
  readonly code: string;
  readonly ownerId: string;
  readonly items: string[];
}

/** `n` tenants in home, each with a user, `items` items and as many audit entries, written as the owner. */
export async function seedTenants(home: Side, n: number, items: number, prefix = "test-t"): Promise<SeededTenant[]> {
  const tenants: SeededTenant[] = [];
  for (let i = 0; i < n; i++) tenants.push({ id: randomUUID(), code: `${prefix}${String(i).padStart(4, "0")}`, ownerId: randomUUID(), items: Array.from({ length: items }, () => randomUUID()) });
  const client = await home.admin.connect();
  try {
    await client.query("BEGIN");
    await client.query("INSERT INTO platform.tenants (id, code, name) SELECT * FROM unnest($1::uuid[], $2::text[], $2::text[])", [tenants.map((t) => t.id), tenants.map((t) => t.code)]);
    await client.query("INSERT INTO platform.users (tenant_id, id, email) SELECT t, u, u::text || '@seed.test' FROM unnest($1::uuid[], $2::uuid[]) AS x(t, u)", [tenants.map((t) => t.id), tenants.map((t) => t.ownerId)]);
    const rows = tenants.flatMap((t) => t.items.map((id) => [t.id, id, t.ownerId]));
    await client.query(
      `INSERT INTO platform.items (tenant_id, id, owner_id, title, body, tags) SELECT t, i, o, 'seed', repeat('x', 200), ARRAY['a', 'b'] FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS x(t, i, o)`,
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
    );
    await client.query(
      `INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id, details) SELECT t, 'seed', 'item.created', 'item', i, '{"seed": true}' FROM unnest($1::uuid[], $2::uuid[]) AS x(t, i)`,
      [rows.map((r) => r[0]), rows.map((r) => r[1])],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  return tenants;
}

/** What the writers were told was committed, per item: its last acknowledged title, or deleted. */
export interface WriteModel {
  readonly live: Map<string, { tenantId: string; title: string }>;
  readonly deleted: Map<string, string>;
  /** Items whose last write had an unknown outcome (the connection broke at COMMIT): not checked. */
  readonly uncertain: Set<string>;
  acknowledged: number;
  fencedRetries: number;
  failed: Record<string, number>;
  /** Longest time one write waited on a fence before it went through (the cutover as a writer sees it). */
  longestFencedWaitMs: number;
  /** Each tenant's items the writers may update or delete. */
  readonly owned: Map<string, string[]>;
}

/**
 * Writers routed as the service routes (services/tenant-service/src/db/placed.ts): the tenant's placement read from
 * home, each transaction entering the tenant first (platform.enter_tenant), a PT001 answered by reading the placement
 * again and retrying. Each tenant's writes are sequential (one loop owns it), so the model's order is commit order.
 */
/** The model of what was written, for every seeded tenant; shared by every writer started on them. */
export function newWriteModel(tenants: readonly SeededTenant[]): WriteModel {
  const model: WriteModel = { live: new Map(), deleted: new Map(), uncertain: new Set(), acknowledged: 0, fencedRetries: 0, failed: {}, longestFencedWaitMs: 0, owned: new Map() };
  for (const t of tenants) for (const id of t.items) model.live.set(id, { tenantId: t.id, title: "seed" });
  for (const t of tenants) model.owned.set(t.id, [...t.items]);
  return model;
}

export function startRouterWriters(pair: Pair, tenants: readonly SeededTenant[], options: { loops?: number; pauseMs?: number; maxMs?: number; model?: WriteModel; holdMs?: number } = {}) {
  const loops = options.loops ?? 8;
  const pools = new Map<string, pg.Pool>([["home", pair.home.app], [TARGET, pair.target.app]]);
  const model = options.model ?? newWriteModel(tenants);
  const owned = model.owned;
  const placement = new Map<string, string>();
  const readPlacement = async (tenantId: string) => {
    const { rows } = await pair.home.admin.query<{ database: string }>("SELECT database FROM platform.tenant_placements WHERE tenant_id = $1", [tenantId]);
    const db = rows[0]?.database ?? "home";
    placement.set(tenantId, db);
    return db;
  };
  let stopped = false;
  const deadline = Date.now() + (options.maxMs ?? 20 * 60_000);
  let counter = 0;
  const write = async (tenant: SeededTenant) => {
    const items = owned.get(tenant.id)!;
    const roll = Math.random();
    const kind = items.length < 5 || roll < 0.5 ? "insert" : roll < 0.8 ? "update" : "delete";
    const id = kind === "insert" ? randomUUID() : items[Math.floor(Math.random() * items.length)]!;
    const title = `w${++counter}`;
    const firstTry = Date.now();
    for (let attempt = 0; attempt < 400 && Date.now() < deadline; attempt++) {
      const db = placement.get(tenant.id) ?? (await readPlacement(tenant.id));
      const client = await pools.get(db)!.connect();
      let committing = false;
      try {
        await client.query("BEGIN");
        // On Citus only SET LOCAL, as its own statement, reaches the workers (where row-level security is checked).
        if (db === TARGET && pair.target.citus) await client.query(`SET LOCAL app.tenant_id = '${tenant.id}'`);
        await client.query("SELECT platform.enter_tenant($1)", [tenant.id]);
        if (kind === "insert") {
          await client.query("INSERT INTO platform.items (tenant_id, id, owner_id, title) VALUES ($1, $2, $3, $4)", [tenant.id, id, tenant.ownerId, title]);
          await client.query("INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id) VALUES ($1, 'writer', 'item.created', 'item', $2)", [tenant.id, id]);
        } else if (kind === "update") {
          const r = await client.query("UPDATE platform.items SET title = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2", [tenant.id, id, title]);
          if (r.rowCount !== 1) throw Object.assign(new Error(`update found ${r.rowCount} rows`), { code: "rowcount" });
        } else {
          const r = await client.query("DELETE FROM platform.items WHERE tenant_id = $1 AND id = $2", [tenant.id, id]);
          if (r.rowCount !== 1) throw Object.assign(new Error(`delete found ${r.rowCount} rows`), { code: "rowcount" });
        }
        // A request that keeps its transaction open a while: the cutover must wait for it (await_tenant_quiet).
        if (options.holdMs) await new Promise((resolve) => setTimeout(resolve, options.holdMs));
        committing = true;
        await client.query("COMMIT");
        client.release();
        model.acknowledged++;
        if (attempt > 0) model.longestFencedWaitMs = Math.max(model.longestFencedWaitMs, Date.now() - firstTry);
        if (kind === "delete") {
          model.live.delete(id);
          model.deleted.set(id, tenant.id);
          items.splice(items.indexOf(id), 1);
        } else {
          model.live.set(id, { tenantId: tenant.id, title });
          if (kind === "insert") items.push(id);
        }
        return;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        const code = (error as { code?: string }).code;
        client.release(code ? undefined : true);
        if (code === "PT001") {
          model.fencedRetries++;
          await readPlacement(tenant.id);
          await new Promise((resolve) => setTimeout(resolve, 25));
          continue;
        }
        if (committing) model.uncertain.add(id);
        // A connection refused (the servers going away at the end) is not retried in a tight loop.
        if (!code) await new Promise((resolve) => setTimeout(resolve, 100));
        // The code with its message (numbers elided): CI keeps only the test's output, and a code alone (XX000) says little.
        const key = code ? `${code} ${(error as Error).message.replace(/\d+/g, "N")}` : (error as Error).message;
        model.failed[key] = (model.failed[key] ?? 0) + 1;
        return;
      }
    }
    model.failed.fenced_too_long = (model.failed.fenced_too_long ?? 0) + 1;
  };
  const running = Array.from({ length: loops }, async (_, n) => {
    const mine = tenants.filter((_, i) => i % loops === n);
    while (!stopped && Date.now() < deadline && mine.length > 0) {
      for (const tenant of mine) {
        if (stopped) break;
        await write(tenant);
        if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      }
    }
  });
  return {
    model,
    async stop(): Promise<WriteModel> {
      stopped = true;
      await Promise.all(running);
      return model;
    },
  };
}

/**
 * Every acknowledged write, checked where the registry now places its tenant: live items present with their last
 * acknowledged title, deleted ones absent, each inserted item's audit entry present. Returns the problems.
 */
export async function lostWrites(pair: Pair, model: WriteModel): Promise<string[]> {
  const { rows: placements } = await pair.home.admin.query<{ tenant_id: string; database: string }>("SELECT tenant_id::text, database FROM platform.tenant_placements");
  const where = new Map(placements.map((p) => [p.tenant_id, p.database]));
  const admins = new Map([["home", pair.home.admin], [TARGET, pair.target.admin]]);
  const problems: string[] = [];
  for (const [db, admin] of admins) {
    const live = [...model.live].filter(([id, v]) => (where.get(v.tenantId) ?? "home") === db && !model.uncertain.has(id));
    const deleted = [...model.deleted].filter(([id, t]) => (where.get(t) ?? "home") === db && !model.uncertain.has(id));
    for (let i = 0; i < live.length; i += 5000) {
      const batch = live.slice(i, i + 5000);
      const { rows } = await admin.query<{ id: string; title: string }>("SELECT id::text, title FROM platform.items WHERE id = ANY($1::uuid[])", [batch.map(([id]) => id)]);
      const found = new Map(rows.map((r) => [r.id, r.title]));
      for (const [id, v] of batch) {
        if (!found.has(id)) problems.push(`${db}: item ${id} of ${v.tenantId} missing`);
        else if (found.get(id) !== v.title) problems.push(`${db}: item ${id} has title ${found.get(id)}, acknowledged ${v.title}`);
      }
      const audit = await admin.query<{ id: string }>("SELECT DISTINCT entity_id::text AS id FROM platform.audit_log WHERE entity_id = ANY($1::uuid[])", [batch.map(([id]) => id)]);
      const audited = new Set(audit.rows.map((r) => r.id));
      for (const [id] of batch) if (!audited.has(id)) problems.push(`${db}: audit entry of item ${id} missing`);
    }
    if (deleted.length > 0) {
      const { rows } = await admin.query<{ id: string }>("SELECT id::text FROM platform.items WHERE id = ANY($1::uuid[])", [deleted.map(([id]) => id)]);
      for (const r of rows) problems.push(`${db}: item ${r.id} was deleted (acknowledged) but is present`);
    }
  }
  return problems;
}

export interface TenantctlRun {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly done: Promise<{ code: number; out: string }>;
  /** Resolves when the output contains `text`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

/** `pnpm tenantctl ...` in its own process, with `env` (and TENANTCTL_TEST_PAUSE_AT when `pauseAt`). */
export function tenantctl(env: Record<string, string>, args: readonly string[], options: { pauseAt?: string; timeoutMs?: number } = {}): TenantctlRun {
  const cli = fileURLToPath(new URL("../src/tenantctl/cli.ts", import.meta.url));
  // node itself with tsx's loader (not the tsx wrapper, which runs node as a child): SIGKILL reaches tenantctl.
  const packageDir = fileURLToPath(new URL("..", import.meta.url));
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DATABASE_") && k !== "TENANTCTL_TEST_PAUSE_AT"));
  const child = spawn(process.execPath, ["--import", "tsx", cli, ...args], { cwd: packageDir, env: { ...clean, ...env, ...(options.pauseAt ? { TENANTCTL_TEST_PAUSE_AT: options.pauseAt } : {}) }, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const waiters: { match: string | RegExp; resolve: () => void }[] = [];
  const feed = (chunk: Buffer) => {
    text += chunk.toString();
    for (const w of [...waiters]) if (typeof w.match === "string" ? text.includes(w.match) : w.match.test(text)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout!.on("data", feed);
  child.stderr!.on("data", feed);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
  const done = new Promise<{ code: number; out: string }>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : 1), out: text });
    });
  });
  return {
    child,
    output: () => text,
    done,
    waitFor(match, timeoutMs = 300_000) {
      if (typeof match === "string" ? text.includes(match) : match.test(text)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`tenantctl did not print ${String(match)} within ${timeoutMs} ms; it printed:\n${text}`)), timeoutMs);
        waiters.push({ match, resolve: () => (clearTimeout(t), resolve()) });
        void done.then(() => {
          clearTimeout(t);
          if (!(typeof match === "string" ? text.includes(match) : match.test(text))) reject(new Error(`tenantctl ended before printing ${String(match)}:\n${text}`));
        });
      });
    },
  };
}
