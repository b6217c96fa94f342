import { HOME_DATABASE } from "@platform/citus";
import { LRUCache } from "lru-cache";
import type { Database } from "./db/database.js";

export interface PlacementCacheOptions {
  /**
   * How long a placement is believed. Not a correctness bound: a stale one is refused by the old database's fence
   * and read again (db/placed.ts). It bounds how long a replica keeps paying that refusal after a cutover: at most
   * one per tenant.
   */
  readonly ttlMs: number;
  /** Placements held at once (least recently used leave first). */
  readonly max: number;
}

/**
 * Which database holds a tenant's rows, read from the home database's registry (platform.tenant_placements; no row:
 * the home database), cached per process. Used only when the process has more than one database: with one, nothing
 * is looked up.
 */
export class TenantPlacements {
  private readonly cache: LRUCache<string, string> | undefined;
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly home: Database,
    options: PlacementCacheOptions,
  ) {
    if (options.ttlMs > 0) this.cache = new LRUCache({ max: options.max, ttl: options.ttlMs, ttlAutopurge: false });
  }

  /** The database's name; `fresh` reads the registry whatever is cached (after a fence refused the cached one). */
  of = async (tenantId: string, { fresh }: { fresh: boolean }): Promise<string> => {
    if (!fresh) {
      const hit = this.cache?.get(tenantId);
      if (hit) return hit;
      const pending = this.inFlight.get(tenantId);
      if (pending) return pending;
    }
    const lookup = this.read(tenantId).finally(() => {
      if (this.inFlight.get(tenantId) === lookup) this.inFlight.delete(tenantId);
    });
    this.inFlight.set(tenantId, lookup);
    return lookup;
  };

  private async read(tenantId: string): Promise<string> {
    const database = await this.home.transaction({ tenantLookup: true }, async (tx) => {
      const { rows } = await tx.query<{ database: string }>("SELECT database FROM platform.tenant_placements WHERE tenant_id = $1", [tenantId]);
      return rows[0]?.database ?? HOME_DATABASE;
    });
    this.cache?.set(tenantId, database);
    return database;
  }
}
