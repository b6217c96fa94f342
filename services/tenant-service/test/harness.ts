import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { Redis } from "ioredis";
import { SignJWT } from "jose";
import pg from "pg";
import { runMigrations } from "@platform/citus";
import { postgresUnavailable, redisUnavailable, startPostgres, startRedis, type PostgresServer, type RedisServer } from "@platform/testing";
import { buildApp } from "../src/app.js";
import { loadServiceConfig, type ServiceConfig } from "../src/config.js";
import type { Database } from "../src/db/database.js";
import { createPostgresDatabase } from "../src/db/postgres.js";

export const SECRET = "test-secret-test-secret-test-secret-0123";
export const ISSUER = "https://auth.test/";
export const AUDIENCE = "tenant-service";

export const unavailable = postgresUnavailable() ?? redisUnavailable();

export interface TokenOptions {
  tenant?: string;
  scope?: string;
  sub?: string;
  expiresIn?: string;
  issuer?: string;
  audience?: string;
  secret?: string;
}

export async function token(options: TokenOptions = {}): Promise<string> {
  const jwt = new SignJWT({ ...(options.tenant ? { tenant_id: options.tenant } : {}), scope: options.scope ?? "" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(options.sub ?? "user-1")
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "10m");
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

export interface Stack {
  readonly app: FastifyInstance;
  readonly pg: PostgresServer;
  readonly redis: RedisServer;
  readonly config: ServiceConfig;
  /** Superuser queries, to check what really is in the database. */
  readonly admin: pg.Pool;
  request(options: InjectOptions & { token?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface StackOptions {
  readonly poolSize?: number;
  readonly env?: Record<string, string>;
  /** Wraps the service's database, to watch what reaches it. */
  readonly database?: (db: Database) => Database;
  /** postgresql.conf settings of the stack's server (e.g. wal_level = logical, for tenantctl's slots). */
  readonly postgresSettings?: Record<string, string>;
  /** pg_hba.conf lines for clients beyond loopback (e.g. an isolated host's address). */
  readonly postgresHbaRules?: readonly string[];
}

/**
 * The platform's roles as the Citus bootstrap creates them (the migration role, the service role, the queue's owner:
 * see src/worker/queue.ts), then the schema migrated by the migration role. `admin` is a superuser connection.
 */
export async function migratePlatform(server: PostgresServer, admin: Pick<pg.Client, "query">): Promise<void> {
  await admin.query("CREATE ROLE platform_migrator LOGIN PASSWORD 'migrator'");
  await admin.query("CREATE ROLE platform_app LOGIN PASSWORD 'app'");
  await admin.query("GRANT CREATE ON DATABASE postgres TO platform_migrator");
  await admin.query("CREATE ROLE platform_queue NOLOGIN");
  await admin.query("GRANT platform_queue TO platform_app, platform_migrator");
  await admin.query("GRANT CREATE ON DATABASE postgres TO platform_queue");
  const migrator = new pg.Client({ connectionString: server.urlFor("platform_migrator", "migrator") });
  await migrator.connect();
  try {
    await runMigrations(migrator);
  } finally {
    await migrator.end();
  }
}

/** A real PostgreSQL 15, migrated as the migration role; a real Redis; the app connected as the service role. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const [server, redisServer] = await Promise.all([startPostgres({ ...(options.postgresSettings ? { settings: options.postgresSettings } : {}), ...(options.postgresHbaRules ? { hbaRules: options.postgresHbaRules } : {}) }), startRedis()]);
  const admin = new pg.Pool({ connectionString: server.url, max: 2 });
  await migratePlatform(server, admin);

  const config = loadServiceConfig({
    DATABASE_URL: server.urlFor("platform_app", "app"),
    REDIS_URL: redisServer.url,
    AUTH_JWT_SECRET: SECRET,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    BASE_DOMAIN: "app.test",
    TENANT_CACHE_TTL_MS: "0",
    ...options.env,
  });
  const db = createPostgresDatabase({ url: config.DATABASE_URL!, poolSize: options.poolSize ?? config.DATABASE_POOL_SIZE });
  const redis = new Redis(config.REDIS_URL!, { maxRetriesPerRequest: 1 });
  const app = await buildApp({ config, db: options.database ? options.database(db) : db, redis });
  await app.ready();
  return {
    app,
    pg: server,
    redis: redisServer,
    config,
    admin,
    request: ({ token: t, headers, ...rest }) =>
      app.inject({ ...rest, headers: { ...(t ? { authorization: `Bearer ${t}` } : {}), ...headers } } as InjectOptions),
    async close() {
      await app.close();
      await db.close();
      redis.disconnect();
      await admin.end();
      server.stop();
      await redisServer.stop();
    },
  };
}

export interface TenantFixture {
  readonly id: string;
  readonly code: string;
  readonly admin: string;
  readonly member: string;
  readonly userId: string;
  readonly itemId: string;
}

/** Creates a tenant with one user and one item through the API, and tokens for its admin and a member. */
export async function createTenant(stack: Stack, code: string, platform: string, body: Record<string, unknown> = {}): Promise<TenantFixture> {
  const created = await stack.request({ method: "POST", url: "/v1/tenants", token: platform, payload: { code, name: code.toUpperCase(), ...body } });
  if (created.statusCode !== 201) throw new Error(`creating tenant ${code}: ${created.statusCode} ${created.body}`);
  const id = created.json().id as string;
  const admin = await token({ tenant: id, scope: "tenant:admin", sub: `${code}-admin` });
  const member = await token({ tenant: id, sub: `${code}-member` });
  const user = await stack.request({ method: "POST", url: `/v1/tenants/${id}/users`, token: admin, payload: { email: `owner@${code}.test` } });
  if (user.statusCode !== 201) throw new Error(`creating user: ${user.statusCode} ${user.body}`);
  const userId = user.json().id as string;
  const item = await stack.request({ method: "POST", url: `/v1/tenants/${id}/items`, token: member, payload: { ownerId: userId, title: `${code} first item`, body: "hello world" } });
  if (item.statusCode !== 201) throw new Error(`creating item: ${item.statusCode} ${item.body}`);
  return { id, code, admin, member, userId, itemId: item.json().id as string };
}
