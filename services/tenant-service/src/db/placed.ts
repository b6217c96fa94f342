/**
 * Several databases behind one Database (issue 25): a transaction that enters a tenant runs in the database that holds
 * the tenant's rows (platform.tenant_placements, read from the home database with the tenant), every other
 * transaction in the home database. Routes and worker tasks keep calling `transaction(context, work)` unchanged.
 *
 * Correctness does not rest on the placement this process has cached. Every tenant transaction enters the tenant first
 * (platform.enter_tenant, db/database.ts), and the database the tenant left refuses it (PT001, the fence). Then the
 * placement is read again, fresh; if it changed, the work runs once more, in the new database (it had run in a
 * transaction that rolled back, so nothing of it stands). If it did not change, the tenant is being cut over right now:
 * the request gets 503 with Retry-After (tenantctl's cutover takes under 2 s).
 */
import { HOME_DATABASE } from "@platform/citus";
import { AppError } from "../errors.js";
import type { Database, Queryable, TenantContext } from "./database.js";

/** Where a tenant's rows are, as the home database says now (`fresh`: not from a cache). */
export type PlacementLookup = (tenantId: string, options: { fresh: boolean }) => Promise<string>;

/** The SQLSTATE enter_tenant raises where the tenant is fenced (migration 0012). */
export const TENANT_FENCED = "PT001";

export function tenantFenced(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === TENANT_FENCED;
}

export class TenantMoving extends AppError {
  constructor(tenantId: string) {
    super(503, "tenant_moving", `tenant ${tenantId} is being moved to another database; retry in a second`, { "retry-after": "1" });
  }
}

export interface PlacedDatabase extends Database {
  /** The home database: the registry, the queue, and every tenant without a placement. */
  readonly home: Database;
  /** Every database by name, the home one included. */
  readonly databases: ReadonlyMap<string, Database>;
  /** Where the tenant's rows are now (read from the registry, not from a cache). */
  placementOf(tenantId: string): Promise<string>;
  /** A transaction in one named database, whatever the context's tenant (the worker's per-database batches). */
  transactionIn<T>(database: string, context: TenantContext, work: (tx: Queryable) => Promise<T>): Promise<T>;
}

/**
 * `databases` must hold `home`. With it alone, nothing is looked up: every transaction runs there, as before
 * placement existed (and enter_tenant still guards against a tenant fenced there).
 */
export function createPlacedDatabase(
  databases: ReadonlyMap<string, Database>,
  placementOf: PlacementLookup,
  /** After a registry change to a tenant placed elsewhere: bring the copy of its row there up to date. */
  mirror: (home: Database, target: Database, tenantId: string) => Promise<void> = async () => {},
): PlacedDatabase {
  const home = databases.get(HOME_DATABASE);
  if (!home) throw new Error(`the databases must include the home one ("${HOME_DATABASE}", DATABASE_URL)`);
  const single = databases.size === 1;

  const named = (name: string, tenantId: string): Database => {
    const db = databases.get(name);
    if (!db) {
      throw new AppError(503, "database_not_configured", `tenant ${tenantId} is placed in database "${name}", which this process was not given: set DATABASE_URL_${name.toUpperCase()}`);
    }
    return db;
  };

  return {
    kind: home.kind,
    home,
    databases,
    placementOf: async (tenantId) => (single ? HOME_DATABASE : placementOf(tenantId, { fresh: true })),
    transactionIn(database, context, work) {
      return named(database, context.tenantId ?? "(none)").transaction(context, work);
    },
    async transaction(context, work) {
      const tenantId = context.tenantId;
      if (tenantId === undefined) return home.transaction(context, work);
      if (context.registry) {
        const result = await home.transaction(context, work);
        if (!single) {
          // The registry row is authoritative; the copy beside the tenant's rows follows it. If this fails, the change
          // stands in the registry and the request reports the error; the next change, or a retry, copies it again.
          const placed = await placementOf(tenantId, { fresh: true });
          if (placed !== HOME_DATABASE) await mirror(home, named(placed, tenantId), tenantId);
        }
        return result;
      }
      if (single) {
        // No other database to go to: a fence here means the tenant's rows are moving out through a process
        // configured with more databases than this one. Refused, as during any cutover.
        return home.transaction(context, work).catch((error: unknown) => {
          throw tenantFenced(error) ? new TenantMoving(tenantId) : error;
        });
      }
      const placed = await placementOf(tenantId, { fresh: false });
      try {
        return await named(placed, tenantId).transaction(context, work);
      } catch (error) {
        if (!tenantFenced(error)) throw error;
        const now = await placementOf(tenantId, { fresh: true });
        if (now === placed) throw new TenantMoving(tenantId);
        try {
          return await named(now, tenantId).transaction(context, work);
        } catch (again) {
          if (tenantFenced(again)) throw new TenantMoving(tenantId);
          throw again;
        }
      }
    },
    async ping() {
      await Promise.all([...databases.values()].map((db) => db.ping()));
    },
    poolStats: home.poolStats ? () => home.poolStats!() : undefined,
    async close() {
      await Promise.all([...databases.values()].map((db) => db.close()));
    },
  };
}
