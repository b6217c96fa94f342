import type { ServiceConfig } from "./config.js";
import type { Database } from "./db/database.js";
import { HydraAdmin } from "./hydra.js";
import { createMetrics, type ServiceMetrics } from "./metrics.js";
import { TenantDirectory } from "./tenant-directory.js";
import { TenantLimiter } from "./tenant-limits.js";

/** What the plugins and routes share: built once per app by createServices, passed to each as an option. */
export interface Services {
  readonly db: Database;
  readonly directory: TenantDirectory;
  readonly metrics: ServiceMetrics;
  /** Each tenant's limits in this replica: concurrent requests and requests a minute. */
  readonly limiter: TenantLimiter;
  readonly config: ServiceConfig;
  /** Hydra's admin API (HYDRA_ADMIN_URL): the tenant's OAuth2 client (routes/oauth2-client.ts). Unset: those routes are not registered. */
  readonly hydra?: HydraAdmin;
}

export function createServices(config: ServiceConfig, db: Database): Services {
  const metrics = createMetrics(db.poolStats ? () => db.poolStats!() : undefined);
  const limiter = new TenantLimiter({
    poolSize: config.DATABASE_POOL_SIZE,
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    flatRateLimit: config.RATE_LIMIT_MAX,
    onRefused: () => metrics.rejections.inc({ reason: "too_many_concurrent_requests" }),
  });
  const hydra = config.HYDRA_ADMIN_URL ? new HydraAdmin({ adminUrl: config.HYDRA_ADMIN_URL, serviceAudience: config.AUTH_AUDIENCE }) : undefined;
  return { db, directory: new TenantDirectory(db, { ttlMs: config.TENANT_CACHE_TTL_MS, maxTenants: config.TENANT_CACHE_MAX }), metrics, limiter, config, hydra };
}
