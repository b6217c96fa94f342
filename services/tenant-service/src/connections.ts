import { readFileSync } from "node:fs";
import type { Redis, RedisOptions } from "ioredis";
import type { PoolConfig } from "pg";
import { deadPeerStartupOptions } from "@platform/config/dead-peers";

interface ConnectionEnv {
  readonly DATABASE_URL?: string;
  readonly DATABASE_PASSWORD_FILE?: string;
  readonly DATABASE_CA_FILE?: string;
  readonly REDIS_PASSWORD_FILE?: string;
  readonly REDIS_CA_FILE?: string;
}

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new Error(`cannot read ${what} from ${path}: ${(error as Error).message}. Check the secret volume mount.`);
  }
}

/**
 * pg settings from the URL plus mounted files: password and CA never travel in the environment. Every session also
 * tells the server to drop it within a minute of this process going silent (config/src/dead-peers.ts): a worker on a
 * lost node must not keep its locks, its snapshot or its liveness lock for hours, on any PostgreSQL.
 */
export function postgresConnection(env: ConnectionEnv): { connectionString?: string; password?: string; ssl?: PoolConfig["ssl"]; options: string } {
  return {
    connectionString: env.DATABASE_URL,
    options: deadPeerStartupOptions(),
    password: env.DATABASE_PASSWORD_FILE ? readSecretFile(env.DATABASE_PASSWORD_FILE, "the database password") : undefined,
    ssl: env.DATABASE_CA_FILE ? { ca: readSecretFile(env.DATABASE_CA_FILE, "the database CA"), rejectUnauthorized: true } : undefined,
  };
}

/** ioredis settings for the rate-limit store: credentials from mounted files, and how the client behaves. */
export function redisConnection(env: ConnectionEnv): RedisOptions {
  return {
    // Fail a command fast rather than queue it while Redis is away: the limiter skips on error (no limiting), which
    // beats holding every request for a reconnect.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Commands issued in the same tick (the limiter's one per request, under load many per tick) leave in one write.
    enableAutoPipelining: true,
    password: env.REDIS_PASSWORD_FILE ? readSecretFile(env.REDIS_PASSWORD_FILE, "the Redis AUTH string") : undefined,
    // Memorystore's CA is unique to the instance, so a chain that verifies against it is the instance; its
    // certificate names the IP, not the private DNS name clients use, hence no host-name check.
    tls: env.REDIS_CA_FILE ? { ca: readSecretFile(env.REDIS_CA_FILE, "the Redis CA"), checkServerIdentity: () => undefined } : undefined,
  };
}

interface RedisWatchLog {
  warn(details: object, message: string): void;
  info(message: string): void;
}

/**
 * Says when Redis stops answering and when it answers again. The rate limiter fails open meanwhile (no limits), and
 * nothing else would say so: the plugin skips a failed store without a word. A connection that keeps failing emits
 * an error per reconnect attempt, so the warning repeats at most once per `quietMs`.
 */
export function watchRedis(redis: Redis, log: RedisWatchLog, quietMs = 30_000): void {
  let down = false;
  let warnedAt = 0;
  redis.on("error", (error: Error) => {
    const now = Date.now();
    if (!down || now - warnedAt >= quietMs) {
      log.warn({ err: error.message }, "Redis is unreachable: per-tenant rate limits are not enforced until it answers");
      warnedAt = now;
    }
    down = true;
  });
  redis.on("ready", () => {
    if (!down) return;
    down = false;
    log.info("Redis answers again: per-tenant rate limits are enforced");
  });
}

/**
 * How long a starting replica waits for its first Redis connection before it listens. With the offline queue off, a
 * request that comes before the connection is ready fails its lease renewal: admitted unlimited and counted as an
 * error, which is what RateLimitNotEnforced watches. So every rollout under traffic would count errors for a Redis
 * that is fine. Memorystore answers in milliseconds; if it does not answer within this, it is down, and the replica
 * serves anyway (the limiter fails open, watchRedis says so) rather than hold up a rollout on Redis.
 */
export const REDIS_STARTUP_WAIT_MS = 5_000;

/** Resolves true once `redis` is ready, or false after `timeoutMs` if it is not. */
export function redisReady(redis: Redis, timeoutMs = REDIS_STARTUP_WAIT_MS): Promise<boolean> {
  if (redis.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      resolve(false);
    }, timeoutMs);
    redis.once("ready", onReady);
  });
}
