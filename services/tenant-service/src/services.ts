import type { ServiceConfig } from "./config.js";
import type { Database } from "./db/database.js";
import { createMetrics, type ServiceMetrics } from "./metrics.js";
import { TenantDirectory } from "./tenant-directory.js";

/** What the plugins and routes share: built once per app by createServices, passed to each as an option. */
export interface Services {
  readonly db: Database;
  readonly directory: TenantDirectory;
  readonly metrics: ServiceMetrics;
  readonly config: ServiceConfig;
}

export function createServices(config: ServiceConfig, db: Database): Services {
  const metrics = createMetrics(db.poolStats ? () => db.poolStats!() : undefined);
  return { db, directory: new TenantDirectory(db, { ttlMs: config.TENANT_CACHE_TTL_MS, maxTenants: config.TENANT_CACHE_MAX }), metrics, config };
}
