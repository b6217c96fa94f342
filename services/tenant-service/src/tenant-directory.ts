import { LRUCache } from "lru-cache";
import type { Database } from "./db/database.js";
import { TenantRepository, type TenantRecord } from "./repositories/tenants.js";

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const CODE_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface TenantDirectoryOptions {
  /**
   * How long a resolved tenant is believed. It is the bound on how late a change made through another replica (a
   * suspension, a new limit) reaches this one: every replica re-reads a tenant at most this long after the change.
   * 0 disables the cache (tests that change tenants under the service).
   */
  readonly ttlMs: number;
  /** Tenants held at once: the least recently used leave first. The per-replica memory bound (README). */
  readonly maxTenants: number;
  /** Names that resolved to no tenant, held apart so a burst of them cannot push a known tenant out. */
  readonly maxUnknown: number;
}

export const DEFAULT_DIRECTORY_OPTIONS: TenantDirectoryOptions = { ttlMs: 5_000, maxTenants: 50_000, maxUnknown: 10_000 };

/**
 * Resolves a tenant id or code to its record, with a bounded per-process cache: most requests name a tenant that was
 * just resolved, and the lookup is a reference-table read (a transaction of its own) on every miss.
 *
 * - Least recently used eviction (lru-cache), so at a million tenants the hot ones stay and the cold ones leave,
 *   one at a time; the old cache cleared itself whole at 10,000 entries, so nearly every request paid a lookup.
 * - One lookup in flight per name: a burst of requests for a tenant that is not cached waits on one query.
 * - Names that resolve to nothing live in a cache of their own, smaller and with a shorter life, so scanning
 *   random names (a client's bug, or an attacker) cannot evict the tenants that are working.
 *
 * Changes made through this process apply at once (invalidate); through another replica within `ttlMs`.
 *
 * A request that names its tenant by id does not wait for this lookup on a miss: its own transaction reads the row
 * (TenantAccess in tenant-scope.ts) and hands it back here (remember). resolve() serves the names that must be
 * compared with a row first: codes, in the path, the header or the subdomain.
 */
export class TenantDirectory {
  private readonly known: LRUCache<string, TenantRecord> | undefined;
  private readonly unknown: LRUCache<string, true> | undefined;
  private readonly inFlight = new Map<string, Promise<TenantRecord | undefined>>();
  /** Counts invalidations: a row read before one may be stale, and is not remembered (remember()). */
  private invalidations = 0;

  constructor(
    private readonly db: Database,
    options: Partial<TenantDirectoryOptions> = {},
  ) {
    const o = { ...DEFAULT_DIRECTORY_OPTIONS, ...options };
    if (o.ttlMs > 0) {
      // Each tenant is held under its id and its code: two keys per tenant.
      this.known = new LRUCache({ max: o.maxTenants * 2, ttl: o.ttlMs, ttlAutopurge: false });
      // A name that did not exist may be created any moment (a new tenant's first request): believed for less.
      this.unknown = new LRUCache({ max: o.maxUnknown, ttl: Math.min(o.ttlMs, 1_000), ttlAutopurge: false });
    }
  }

  async resolve(ref: string): Promise<TenantRecord | undefined> {
    const key = ref.toLowerCase();
    const hit = this.known?.get(key);
    if (hit) return hit;
    if (this.unknown?.has(key)) return undefined;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const lookup: Promise<TenantRecord | undefined> = this.lookup(key, () => this.inFlight.get(key) === lookup).finally(() => {
      if (this.inFlight.get(key) === lookup) this.inFlight.delete(key);
    });
    this.inFlight.set(key, lookup);
    return lookup;
  }

  /** What this process holds for `ref`, without a lookup: its row, null if it is known to name no tenant, or undefined. */
  peek(ref: string): TenantRecord | null | undefined {
    const key = ref.toLowerCase();
    return this.known?.get(key) ?? (this.unknown?.has(key) ? null : undefined);
  }

  /** A mark to hand back to remember(): it tells whether an invalidation happened in between. */
  get mark(): number {
    return this.invalidations;
  }

  /**
   * Caches a tenant's row read elsewhere (in a request's own transaction, see routes/context.ts), unless a change
   * made through this process since `mark` may have overtaken that read.
   */
  remember(ref: string, tenant: TenantRecord | undefined, mark: number): void {
    if (mark !== this.invalidations) return;
    if (!tenant) {
      this.unknown?.set(ref.toLowerCase(), true);
      return;
    }
    this.known?.set(tenant.id, tenant);
    this.known?.set(tenant.code, tenant);
    this.unknown?.delete(tenant.id);
    this.unknown?.delete(tenant.code);
  }

  /** `current` says whether this lookup still counts: an invalidate() while it ran means its answer may be stale. */
  private async lookup(key: string, current: () => boolean): Promise<TenantRecord | undefined> {
    const byId = UUID_PATTERN.test(key);
    const tenant = await this.db.transaction({ tenantLookup: true }, (tx) => new TenantRepository(tx).find(byId ? { id: key } : { code: key }));
    if (!current()) return tenant;
    if (tenant) {
      this.known?.set(tenant.id, tenant);
      this.known?.set(tenant.code, tenant);
    } else {
      this.unknown?.set(key, true);
    }
    return tenant;
  }

  /** Forget a tenant after a change made through this process. */
  invalidate(tenant: Pick<TenantRecord, "id" | "code">): void {
    this.invalidations++;
    for (const key of [tenant.id, tenant.code]) {
      this.known?.delete(key);
      this.unknown?.delete(key);
      // A lookup already under way may have read the row before the change: its answer is returned, not cached.
      this.inFlight.delete(key);
    }
  }

  /** What the cache holds now: for the metrics and the benchmark. */
  get size(): { tenants: number; unknown: number } {
    return { tenants: Math.ceil((this.known?.size ?? 0) / 2), unknown: this.unknown?.size ?? 0 };
  }
}
