/**
 * The process's databases from its environment (citus/src/databases.ts: DATABASE_URL and DATABASE_URL_<NAME>), one
 * pool each, behind one router (db/placed.ts). The server and the worker open them the same way.
 */
import { databasesFromEnv } from "@platform/citus";
import { postgresConnection } from "../connections.js";
import type { Database } from "./database.js";
import { createPlacedDatabase, type PlacedDatabase } from "./placed.js";
import { createPostgresDatabase } from "./postgres.js";
import { mirrorTenantRow } from "../repositories/tenants.js";
import { TenantPlacements } from "../tenant-placements.js";

export interface OpenOptions {
  /** Connections per database, per process. */
  readonly poolSize: number;
  /** How long a tenant's placement is believed (TENANT_CACHE_TTL_MS) and how many are held (TENANT_CACHE_MAX). */
  readonly placementTtlMs: number;
  readonly placementMax: number;
  /** How the sessions are named in pg_stat_activity: the worker's are told from the service's. */
  readonly applicationName?: string;
  /** On Citus, one node group's share of each pool (DATABASE_NODE_CONNECTION_CAP); unset: derived from poolSize; 0: off. */
  readonly nodeConnectionCap?: number;
}

/** Throws, naming the variable, on a database the environment names badly or a secret file it cannot read. */
export function openDatabases(env: Record<string, string | undefined>, options: OpenOptions): PlacedDatabase {
  const endpoints = databasesFromEnv(env);
  if (endpoints.length === 0 || endpoints[0]!.name !== "home") throw new Error("DATABASE_URL must be set: it names the home database");
  const opened = new Map<string, Database>();
  try {
    for (const endpoint of endpoints) {
      const connection = postgresConnection({ DATABASE_URL: endpoint.url, DATABASE_PASSWORD_FILE: endpoint.passwordFile, DATABASE_CA_FILE: endpoint.caFile });
      opened.set(
        endpoint.name,
        createPostgresDatabase({
          url: endpoint.url,
          password: connection.password,
          ssl: connection.ssl,
          poolSize: options.poolSize,
          ...(options.applicationName ? { applicationName: options.applicationName } : {}),
          ...(options.nodeConnectionCap !== undefined ? { nodeConnectionCap: options.nodeConnectionCap } : {}),
        }),
      );
    }
  } catch (error) {
    for (const db of opened.values()) void db.close();
    throw error;
  }
  const placements = new TenantPlacements(opened.get("home")!, { ttlMs: options.placementTtlMs, max: options.placementMax });
  return createPlacedDatabase(opened, placements.of, mirrorTenantRow);
}
