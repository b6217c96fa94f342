/**
 * The environment of the service (server.ts) and of its worker (worker.ts), parsed once at start with zod. What both
 * read (the database's secret files, logging, tracing) is written once, below, and spread into each schema.
 */
import { z } from "zod";
import { parseAllowedRanges } from "./webhook-targets.js";
import { DEAD_WORKER_RELEASE_SECONDS } from "./worker/dead-workers.js";

const optionalUrl = z.string().url().optional();

/** The database's credentials and CA as mounted files: they never travel in the environment or the URL. */
const databaseFiles = {
  /** Password as a mounted file (Secret Manager CSI volume). */
  DATABASE_PASSWORD_FILE: z.string().optional(),
  /** CA of the database's server certificates: enables TLS with full verification (sslmode=verify-full). */
  DATABASE_CA_FILE: z.string().optional(),
};

/** Webhook targets a deployment lets through although private or loopback (webhook-targets.ts); read by both. */
const webhookTargets = {
  /** CIDR ranges, comma-separated, such as 127.0.0.1/32 (the tests' receivers). Default none: only public addresses. */
  WEBHOOK_ALLOWED_PRIVATE_CIDRS: z.string().default("").superRefine((text, ctx) => {
    try {
      parseAllowedRanges(text);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
    }
  }),
};

/** Redis (Memorystore): the service's shared rate-limit store; the worker removes an erased tenant's keys from it. */
const redis = {
  /** Service unset: an in-process rate limiter, correct only with a single replica. Worker unset: an erased tenant's
   * rate-limit keys are left to expire with their window (RATE_LIMIT_WINDOW_MS). */
  REDIS_URL: optionalUrl,
  REDIS_PASSWORD_FILE: z.string().optional(),
  /** Memorystore's per-instance CA: enables TLS. */
  REDIS_CA_FILE: z.string().optional(),
};

/**
 * Ory Hydra's admin API (issue 24): the worker creates each tenant's OAuth2 client there (worker/provision.ts), the
 * service rotates its secret (routes/oauth2-client.ts). The audience is the one tokens must carry, which every
 * tenant's client may request.
 */
const hydra = {
  /** e.g. http://hydra-admin.auth.svc.cluster.local:4445 (k8s/src/charts/tenants.ts). Unset: no OAuth2 clients (development). */
  HYDRA_ADMIN_URL: optionalUrl,
  AUTH_AUDIENCE: z.string().min(1).default("tenant-service"),
};

/** Production provisions OAuth2 clients: without the admin URL, a tenant would silently get none. */
const hydraInProduction = (c: { NODE_ENV: string; HYDRA_ADMIN_URL?: string }, ctx: z.RefinementCtx) => {
  if (c.NODE_ENV === "production" && !c.HYDRA_ADMIN_URL) {
    ctx.addIssue({ code: "custom", path: ["HYDRA_ADMIN_URL"], message: "production creates each tenant's OAuth2 client in Hydra: set Hydra's admin URL" });
  }
};

/**
 * Where tenant exports go (src/export-store.ts), for the service (which reads and signs) and the worker (which writes
 * and, on erasure, deletes). local: a directory, for development; gcs: a Cloud Storage bucket (staging, production).
 */
const exportStore = {
  EXPORT_STORE: z.enum(["local", "gcs"]).default("local"),
  /** The local store's directory. */
  EXPORT_DIR: z.string().min(1).default("/tmp/tenant-exports"),
  /** The gcs store's bucket (config/ names it per environment: names.exportsBucket). */
  EXPORT_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, "must be a Cloud Storage bucket name (3-63 lowercase characters)").optional(),
  /** Another Cloud Storage endpoint (tests run fake-gcs-server); unset: Google's. */
  EXPORT_GCS_ENDPOINT: optionalUrl,
  /** Days an export's objects are kept: the bucket's lifecycle deletes them then (config/, exports.retentionDays). */
  EXPORT_RETENTION_DAYS: z.coerce.number().int().min(1).max(30).default(7),
  /**
   * A running export whose job showed no progress for this long is given up when its tenant asks for another (its
   * worker died and its job was not run again: its attempts spent, or a worker that recorded no liveness, whose job
   * graphile-worker holds for 4 hours). The worker beats every tenth of it, so the service
   * and the worker must agree on it (README "Export").
   */
  EXPORT_STALE_SECONDS: z.coerce.number().int().min(2).max(86_400).default(600),
};

/** An export store that cannot work is refused at start, naming the variable. */
function checkExportStore(c: { EXPORT_STORE: string; EXPORT_BUCKET?: string; NODE_ENV: string }, ctx: z.RefinementCtx): void {
  if (c.EXPORT_STORE === "gcs" && !c.EXPORT_BUCKET) ctx.addIssue({ code: "custom", path: ["EXPORT_BUCKET"], message: "EXPORT_STORE=gcs needs the bucket's name" });
  if (c.EXPORT_STORE === "local" && c.NODE_ENV === "production") {
    ctx.addIssue({ code: "custom", path: ["EXPORT_STORE"], message: "local is a pod's own disk, lost with it and unseen by other replicas: production uses gcs" });
  }
}

/** Logs and traces, the same way in every process; `serviceName` is the default name traces carry. */
const telemetry = (serviceName: string) => ({
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** OTLP/HTTP base URL (Jaeger's collector); unset: no tracing, and no cost. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
  OTEL_SERVICE_NAME: z.string().default(serviceName),
  NODE_ENV: z.string().default("development"),
});

export const ServiceConfigSchema = z
  .object({
    /** Unset: an embedded PGlite database, migrated on start (one process, development only). */
    DATABASE_URL: optionalUrl,
    ...redis,
    ...databaseFiles,
    PORT: z.coerce.number().int().min(1).max(65535).default(8080),
    HOST: z.string().default("0.0.0.0"),
    /** Production: Hydra's JWKS (RS256/ES256). */
    AUTH_JWKS_URL: optionalUrl,
    /** HS256 shared secret: development and tests only. */
    AUTH_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    AUTH_ISSUER: z.string().min(1).default("https://auth.platform.local/"),
    ...hydra,
    /** Tenants are also named by subdomain: <code>.BASE_DOMAIN. */
    BASE_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/, "must be a DNS domain such as app.example.com").default("localhost"),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
    /**
     * On Citus, the connections of the pool one node group's tenants may hold at once (db/node-bulkhead.ts). Unset:
     * all but a quarter of the pool (config/src/dead-peers.ts, nodeConnectionCap). 0 switches the bound off: the
     * runbook's step for a bulkhead that refuses healthy nodes (docs/runbooks/database-pool.md).
     */
    DATABASE_NODE_CONNECTION_CAP: z.coerce.number().int().min(0).max(500).optional(),
    /**
     * Unset (production): each tenant's requests a minute and concurrent requests are its own (plans.ts). Set: every
     * tenant gets this many requests per window and no concurrency cap, for benchmarks and tests that measure the
     * service rather than the limits.
     */
    RATE_LIMIT_MAX: z.coerce.number().int().min(1).optional(),
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).default(60_000),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 * 1024).default(256 * 1024),
    /** How long a tenant's status and limits are cached per process. */
    TENANT_CACHE_TTL_MS: z.coerce.number().int().min(0).default(5_000),
    /** Tenants one replica holds resolved at once (least recently used leave first): its memory bound, README. */
    TENANT_CACHE_MAX: z.coerce.number().int().min(1).default(50_000),
    ...webhookTargets,
    /**
     * Seconds between DELETE /v1/tenants/{t} and the erasure of its rows, during which a platform administrator can
     * cancel it; 0 erases as soon as a worker takes the job. Default 7 days; at most 90.
     */
    TENANT_ERASURE_GRACE_SECONDS: z.coerce.number().int().min(0).max(90 * 86_400).default(7 * 86_400),
    ...exportStore,
    /** How long an export's signed download URL (gcs) works: at most 7 days, V4 signing's limit. */
    EXPORT_URL_TTL_SECONDS: z.coerce.number().int().min(60).max(7 * 86_400).default(900),
    /** The largest import body (POST .../imports, streamed); BODY_LIMIT_BYTES is for JSON bodies. Default 1 GiB. */
    IMPORT_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 ** 3).default(1024 ** 3),
    /** Rows an import writes per transaction: each batch holds the tenant's row lock that long. */
    IMPORT_BATCH_ROWS: z.coerce.number().int().min(1).max(5_000).default(500),
    ...telemetry("tenant-service"),
  })
  .superRefine((c, ctx) => {
    checkExportStore(c, ctx);
    if (!c.AUTH_JWKS_URL && !c.AUTH_JWT_SECRET) {
      ctx.addIssue({ code: "custom", path: ["AUTH_JWKS_URL"], message: "set AUTH_JWKS_URL (Hydra) or, for development, AUTH_JWT_SECRET" });
    }
    if (c.NODE_ENV === "production" && c.AUTH_JWT_SECRET && !c.AUTH_JWKS_URL) {
      ctx.addIssue({ code: "custom", path: ["AUTH_JWT_SECRET"], message: "shared-secret tokens are for development; production verifies Hydra's keys (AUTH_JWKS_URL)" });
    }
    if (c.NODE_ENV === "production" && !c.DATABASE_URL) {
      ctx.addIssue({ code: "custom", path: ["DATABASE_URL"], message: "production needs a real database; the embedded one is for development" });
    }
    if (c.DATABASE_NODE_CONNECTION_CAP !== undefined && c.DATABASE_NODE_CONNECTION_CAP > c.DATABASE_POOL_SIZE) {
      ctx.addIssue({
        code: "custom",
        path: ["DATABASE_NODE_CONNECTION_CAP"],
        message: `${c.DATABASE_NODE_CONNECTION_CAP} is more than the pool (DATABASE_POOL_SIZE ${c.DATABASE_POOL_SIZE}), so it would bound nothing: set at most ${c.DATABASE_POOL_SIZE}, 0 to switch the bound off, or leave it unset for all but a quarter of the pool`,
      });
    }
    hydraInProduction(c, ctx);
  });

export type ServiceConfig = z.infer<typeof ServiceConfigSchema>;

export const WorkerConfigSchema = z.object({
  DATABASE_URL: z.string({ error: "must be set: the worker needs a real database" }).url("must be a postgresql:// URL (the worker needs a real database)"),
  ...databaseFiles,
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  AUDIT_RETENTION_MONTHS: z.coerce.number().int().min(1).max(120).default(13),
  ROLLUP_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  ...webhookTargets,
  /** Webhook deliveries in flight at once in this worker, in slots of their own (worker/webhooks.ts). */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(200).default(20),
  /** One delivery attempt's bound, connect to the last byte read: a slow receiver holds a slot no longer. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(5_000),
  /** Attempts per delivery before it is marked failed. */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(10),
  /** The first retry's delay; each next one doubles (jittered, at most 6 hours). */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** CA certificates (PEM file) trusted for receivers besides the public roots: a private CA, or the tests' own. */
  WEBHOOK_CA_FILE: z.string().optional(),
  /** Rows an erasure deletes per table per transaction (worker/erasure.ts): each batch holds its locks that long. */
  ERASURE_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(1_000),
  /**
   * A worker process found dead (worker/dead-workers.ts) has its jobs released this long after it was first found
   * so, by the next sweep (every minute) after that: 1 to 3 minutes after its death with the default.
   */
  WORKER_DEAD_RELEASE_SECONDS: z.coerce.number().int().min(1).max(14_400).default(DEAD_WORKER_RELEASE_SECONDS),
  ...redis,
  ...hydra,
  ...exportStore,
  /**
   * Rows an export reads per chunk, each chunk a short transaction of its own: its memory is about this many times
   * the largest row (an item is up to 100 kB), and a tenantctl cutover of the tenant waits at most one chunk.
   */
  EXPORT_FETCH_ROWS: z.coerce.number().int().min(1).max(10_000).default(200),
  /**
   * Exports run at once in this worker, in a runner of their own: each holds a slot for its whole run, so they have
   * their own slots and pool and never take the ones erasures and the rollup need.
   */
  EXPORT_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(2),
  /** Probes and metrics: /livez, /readyz, /metrics. */
  HEALTH_PORT: z.coerce.number().int().min(1).max(65535).default(9090),
  ...telemetry("tenant-worker"),
}).superRefine((c, ctx) => {
  hydraInProduction(c, ctx);
  checkExportStore(c, ctx);
});

export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Empty values count as unset, as a Deployment's `value: ""` means to whoever wrote it. */
function parseEnv<S extends z.ZodType>(schema: S, what: string, env: Record<string, string | undefined>): z.infer<S> {
  const result = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join(".") || "(environment)"}: ${i.message}`).join("\n");
    throw new ConfigError(`invalid ${what} configuration:\n${problems}`);
  }
  return result.data;
}

/** Parses the environment once at boot; a bad value stops the process with the variable and the reason. */
export function loadServiceConfig(env: Record<string, string | undefined> = process.env): ServiceConfig {
  return parseEnv(ServiceConfigSchema, "tenant-service", env);
}

/** The worker's, the same way (exit 2 on a bad value, in worker.ts). */
export function loadWorkerConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  return parseEnv(WorkerConfigSchema, "worker", env);
}
