import { z } from "zod";

const optionalUrl = z.string().url().optional();

export const ServiceConfigSchema = z
  .object({
    /** Unset: an embedded PGlite database, migrated on start (one process, development only). */
    DATABASE_URL: optionalUrl,
    /** Unset: an in-process rate limiter, correct only with a single replica. */
    REDIS_URL: optionalUrl,
    /** Password as a mounted file (Secret Manager CSI volume), kept out of the environment and the URL. */
    DATABASE_PASSWORD_FILE: z.string().optional(),
    /** CA of the database's server certificates: enables TLS with full verification (sslmode=verify-full). */
    DATABASE_CA_FILE: z.string().optional(),
    REDIS_PASSWORD_FILE: z.string().optional(),
    /** Memorystore's per-instance CA: enables TLS. */
    REDIS_CA_FILE: z.string().optional(),
    PORT: z.coerce.number().int().min(1).max(65535).default(8080),
    HOST: z.string().default("0.0.0.0"),
    /** Production: Hydra's JWKS (RS256/ES256). */
    AUTH_JWKS_URL: optionalUrl,
    /** HS256 shared secret: development and tests only. */
    AUTH_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    AUTH_ISSUER: z.string().min(1).default("https://auth.platform.local/"),
    AUTH_AUDIENCE: z.string().min(1).default("tenant-service"),
    /** Tenants are also named by subdomain: <code>.BASE_DOMAIN. */
    BASE_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/, "must be a DNS domain such as app.example.com").default("localhost"),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
    /** Requests per tenant per window. */
    RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(600),
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).default(60_000),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 * 1024).default(256 * 1024),
    /** How long a tenant's status and limits are cached per process. */
    TENANT_CACHE_TTL_MS: z.coerce.number().int().min(0).default(5_000),
    /** Tenants one replica holds resolved at once (least recently used leave first): its memory bound, README. */
    TENANT_CACHE_MAX: z.coerce.number().int().min(1).default(50_000),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
    OTEL_SERVICE_NAME: z.string().default("tenant-service"),
    NODE_ENV: z.string().default("development"),
  })
  .superRefine((c, ctx) => {
    if (!c.AUTH_JWKS_URL && !c.AUTH_JWT_SECRET) {
      ctx.addIssue({ code: "custom", path: ["AUTH_JWKS_URL"], message: "set AUTH_JWKS_URL (Hydra) or, for development, AUTH_JWT_SECRET" });
    }
    if (c.NODE_ENV === "production" && c.AUTH_JWT_SECRET && !c.AUTH_JWKS_URL) {
      ctx.addIssue({ code: "custom", path: ["AUTH_JWT_SECRET"], message: "shared-secret tokens are for development; production verifies Hydra's keys (AUTH_JWKS_URL)" });
    }
    if (c.NODE_ENV === "production" && !c.DATABASE_URL) {
      ctx.addIssue({ code: "custom", path: ["DATABASE_URL"], message: "production needs a real database; the embedded one is for development" });
    }
  });

export type ServiceConfig = z.infer<typeof ServiceConfigSchema>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Parses the environment once at boot; a bad value stops the process with the variable and the reason. */
export function loadServiceConfig(env: Record<string, string | undefined> = process.env): ServiceConfig {
  const result = ServiceConfigSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join(".") || "(environment)"}: ${i.message}`).join("\n");
    throw new ConfigError(`invalid tenant-service configuration:\n${problems}`);
  }
  return result.data;
}
