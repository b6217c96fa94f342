/**
 * The process: config, logger, database (PostgreSQL, or embedded PGlite when DATABASE_URL is unset), Redis,
 * tracing, listen, and a shutdown that drains within the pod's grace period.
 *
 *   pnpm --filter tenant-service start
 */
import { Redis } from "ioredis";
import { buildApp } from "./app.js";
import { ConfigError, loadServiceConfig } from "./config.js";
import type { Database } from "./db/database.js";
import { createEmbeddedDatabase } from "./db/pglite.js";
import { openDatabases } from "./db/open.js";
import { startTracing } from "./tracing.js";
import { REDIS_STARTUP_WAIT_MS, redisConnection, redisReady, watchRedis } from "./connections.js";

let config;
try {
  config = loadServiceConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}

/** A failure before the server listens (an unreadable secret file, a port in use): one line, exit 1. */
function cannotStart(error: unknown): never {
  console.error(`tenant-service: cannot start: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.DEBUG) console.error(error);
  process.exit(1);
}

const tracing = config.OTEL_EXPORTER_OTLP_ENDPOINT ? startTracing({ endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: config.OTEL_SERVICE_NAME }) : undefined;
if (tracing && !tracing.queriesTraced) {
  console.warn("tracing: pg was loaded before its instrumentation, so statements are not traced; start with --import ./src/tracing-register.ts (package scripts, image entrypoint)");
}
const logger = { level: config.LOG_LEVEL, redact: ["req.headers.authorization"] };

let db: Database;
if (config.DATABASE_URL) {
  try {
    // DATABASE_URL and any DATABASE_URL_<NAME> a tenant can be placed in (db/open.ts), one pool each.
    db = openDatabases(process.env, {
      poolSize: config.DATABASE_POOL_SIZE,
      placementTtlMs: config.TENANT_CACHE_TTL_MS,
      placementMax: config.TENANT_CACHE_MAX,
      ...(config.DATABASE_NODE_CONNECTION_CAP !== undefined ? { nodeConnectionCap: config.DATABASE_NODE_CONNECTION_CAP } : {}),
    });
  } catch (error) {
    cannotStart(error);
  }
} else {
  console.warn("DATABASE_URL is unset: using an embedded PGlite database in memory (development only; data is lost on exit)");
  db = await createEmbeddedDatabase(process.env.PGLITE_DATA_DIR).catch(cannotStart);
}
let redisOptions: ReturnType<typeof redisConnection> = {};
try {
  redisOptions = redisConnection(config);
} catch (error) {
  cannotStart(error);
}
const redis = config.REDIS_URL
  ? new Redis(config.REDIS_URL, { ...redisOptions, lazyConnect: false })
  : undefined;
if (!redis) console.warn("REDIS_URL is unset: rate limits are counted in this process only (correct for a single replica)");
redis?.on("error", () => {}); // until the app's logger exists (watchRedis below); ioredis reconnects on its own

const app = await buildApp({ config, db, redis, logger }).catch(cannotStart);
if (redis) watchRedis(redis, app.log);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, "shutting down: draining in-flight requests");
  // Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds (30 s); finish well within it.
  const timer = setTimeout(() => {
    app.log.error("drain took longer than 25 s; exiting");
    process.exit(1);
  }, 25_000);
  timer.unref();
  try {
    await app.close();
    await db.close();
    redis?.disconnect();
    await tracing?.stop();
    process.exit(0);
  } catch (error) {
    app.log.error({ err: error }, "error during shutdown");
    process.exit(1);
  }
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

// Listen only once Redis answers (or is given up on), so that no request is admitted unlimited for a Redis that is
// merely still connecting (connections.ts, REDIS_STARTUP_WAIT_MS).
if (redis && !(await redisReady(redis))) {
  app.log.warn(`Redis did not answer within ${REDIS_STARTUP_WAIT_MS} ms of starting: serving without per-tenant rate limits until it does`);
}
await app.listen({ port: config.PORT, host: config.HOST }).catch(cannotStart);
