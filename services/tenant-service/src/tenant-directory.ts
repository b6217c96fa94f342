import type { Database } from "./db/database.js";
import { TenantRepository, type TenantRecord } from "./repositories/tenants.js";

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const CODE_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Resolves a tenant id or code to its record, with a short per-process cache: most requests name a tenant that
 * was just resolved, and the lookup is a reference-table read on every node. Status and limit changes made through
 * this process apply at once; through another replica within the TTL.
 */
export class TenantDirectory {
  private readonly cache = new Map<string, { tenant: TenantRecord | undefined; expires: number }>();

  constructor(
    private readonly db: Database,
    private readonly ttlMs: number,
  ) {}

  async resolve(ref: string): Promise<TenantRecord | undefined> {
    const key = ref.toLowerCase();
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.tenant;
    const byId = UUID_PATTERN.test(key);
    const tenant = await this.db.transaction({ tenantLookup: true }, (tx) => new TenantRepository(tx).find(byId ? { id: key } : { code: key }));
    if (this.ttlMs > 0) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { tenant, expires: Date.now() + this.ttlMs });
      if (tenant) this.cache.set(byId ? tenant.code : tenant.id, { tenant, expires: Date.now() + this.ttlMs });
    }
    return tenant;
  }

  /** Forget a tenant after a change made through this process. */
  invalidate(tenant: Pick<TenantRecord, "id" | "code">): void {
    this.cache.delete(tenant.id);
    this.cache.delete(tenant.code);
  }
}
