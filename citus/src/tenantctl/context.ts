/**
 * What every tenantctl command shares: its error and exit codes, the databases it can reach (the service's env
 * convention, citus/src/databases.ts), connections to them, and printing that never shows a password.
 */
import { readFileSync } from "node:fs";
import pg from "pg";
import { HOME_DATABASE, databasesFromEnv, type DatabaseEndpoint } from "../databases.js";

export class TenantctlError extends Error {
  constructor(
    message: string,
    /** 2 bad input, 3 refused (state, another run, preflight), 4 the operation failed, 5 verification found differences */
    readonly exitCode: 2 | 3 | 4 | 5 = 4,
  ) {
    super(message);
  }
}

export interface Output {
  line(text: string): void;
}
export const out: Output = { line: (t) => console.log(t) };

/** A connection string with its password replaced, for anything printed or logged. */
export function redact(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+:)[^@\s]*@/g, "$1***@").replace(/(password=)\S+/gi, "$1***");
}

/** One database tenantctl works with: its name (home, citus, ...), a pool, and whether it runs Citus. */
export interface Db {
  readonly name: string;
  readonly endpoint: DatabaseEndpoint;
  readonly pool: pg.Pool;
  citus: boolean;
  /** A connection of its own (not pooled): the replication connection, the tenant lock. */
  client(options?: { replication?: boolean }): Promise<pg.Client>;
}

function connectionConfig(endpoint: DatabaseEndpoint): pg.ClientConfig {
  const config: pg.ClientConfig = { connectionString: endpoint.url, application_name: "tenantctl" };
  if (endpoint.passwordFile) config.password = readFileSync(endpoint.passwordFile, "utf8").trim();
  if (endpoint.caFile) config.ssl = { ca: readFileSync(endpoint.caFile, "utf8"), rejectUnauthorized: true };
  return config;
}

/** Every database named in the environment, opened lazily; `close()` ends them all. */
export class Databases {
  private readonly opened = new Map<string, Db>();
  readonly endpoints: Map<string, DatabaseEndpoint>;

  constructor(
    env: Record<string, string | undefined>,
    private readonly poolSize = 10,
  ) {
    let endpoints: DatabaseEndpoint[];
    try {
      endpoints = databasesFromEnv(env);
    } catch (error) {
      throw new TenantctlError((error as Error).message, 2);
    }
    this.endpoints = new Map(endpoints.map((e) => [e.name, e]));
    if (!this.endpoints.has(HOME_DATABASE)) throw new TenantctlError("DATABASE_URL is not set: it names the home database (the tenant registry), as for the service", 2);
  }

  names(): string[] {
    return [...this.endpoints.keys()];
  }

  /** The database called `name`; an unknown name is bad input, naming the variable to set. */
  async get(name: string): Promise<Db> {
    const known = this.opened.get(name);
    if (known) return known;
    const endpoint = this.endpoints.get(name);
    if (!endpoint) throw new TenantctlError(`no database "${name}": set DATABASE_URL_${name.toUpperCase()} (known: ${this.names().join(", ")})`, 2);
    const config = connectionConfig(endpoint);
    const pool = new pg.Pool({ ...config, max: this.poolSize });
    pool.on("error", () => {});
    const db: Db = {
      name,
      endpoint,
      pool,
      citus: false,
      async client(options = {}) {
        const client = new pg.Client({ ...config, ...(options.replication ? { replication: "database" } : {}) } as pg.ClientConfig);
        client.on("error", () => {});
        await client.connect();
        return client;
      },
    };
    try {
      db.citus = (await pool.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).rows.length > 0;
      await pool.query("SELECT 1 FROM platform.tenant_moves LIMIT 0");
    } catch (error) {
      await pool.end().catch(() => {});
      const code = (error as { code?: string }).code;
      if (code === "42P01") throw new TenantctlError(`database "${name}" has no platform.tenant_moves: run the migrations there first (pnpm migrate, 0014)`, 3);
      throw new TenantctlError(`cannot reach database "${name}" (${redact(endpoint.url)}): ${redact((error as Error).message)}`, 4);
    }
    this.opened.set(name, db);
    return db;
  }

  async home(): Promise<Db> {
    return this.get(HOME_DATABASE);
  }

  async close(): Promise<void> {
    await Promise.all([...this.opened.values()].map((db) => db.pool.end().catch(() => {})));
    this.opened.clear();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Why `db` cannot hold a tenantctl stream (a logical slot, decoded by tenantctl's role), or null: a move refuses
 * before it records anything, saying what to change, rather than failing in its copy phase on PostgreSQL's own words.
 */
export async function streamRefusal(db: Db, why: string): Promise<string | null> {
  const { rows } = await db.pool.query<{ wal_level: string; role: string; replication: boolean }>(
    "SELECT current_setting('wal_level') AS wal_level, current_user AS role, (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS replication",
  );
  const { wal_level: walLevel, role, replication } = rows[0]!;
  const problems = [
    ...(walLevel === "logical" ? [] : [`wal_level is ${walLevel}: set wal_level = logical and restart (Cloud SQL: the flag cloudsql.logical_decoding, which database.citusAlongside sets)`]),
    ...(replication ? [] : [`the role ${role} may not use replication slots: ALTER ROLE ${role} WITH REPLICATION (the deploy's database bootstrap does it with database.citusAlongside)`]),
  ];
  return problems.length ? `database "${db.name}" cannot hold ${why}: ${problems.join("; ")}` : null;
}

/** Quotes an identifier. */
export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
/** Quotes a literal. */
export const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
/** schema.table, quoted. */
export const qualified = (table: string) => table.split(".").map(ident).join(".");
