import type { Database, Queryable } from "./db/database.js";

export interface TenantRecord {
  readonly id: string;
  readonly code: string;
  readonly name: string;
  readonly status: "active" | "suspended";
  readonly plan: string;
  readonly maxUsers: number;
  readonly maxStorageGb: number;
  readonly features: Record<string, unknown>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export const TENANT_COLUMNS = "id, code, name, status, plan, max_users, max_storage_gb, features, created_at, updated_at";

export function toTenant(row: Record<string, unknown>): TenantRecord {
  return {
    id: row.id as string,
    code: row.code as string,
    name: row.name as string,
    status: row.status as TenantRecord["status"],
    plan: row.plan as string,
    maxUsers: row.max_users as number,
    maxStorageGb: row.max_storage_gb as number,
    features: row.features as Record<string, unknown>,
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
}

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
    const tenant = await this.db.transaction({ tenantLookup: true }, async (tx) => {
      const { rows } = await tx.query(`SELECT ${TENANT_COLUMNS} FROM platform.tenants WHERE ${byId ? "id" : "code"} = $1`, [key]);
      return rows[0] ? toTenant(rows[0]) : undefined;
    });
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

export interface AuditEntry {
  readonly tenantId: string;
  readonly actor: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId?: string;
  readonly requestId?: string;
  readonly details?: Record<string, unknown>;
}

/** Written in the same transaction as the change it records: both commit or neither does. */
export async function writeAudit(tx: Queryable, entry: AuditEntry): Promise<void> {
  await tx.query(
    "INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id, request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    [entry.tenantId, entry.actor, entry.action, entry.entityType, entry.entityId ?? null, entry.requestId ?? null, JSON.stringify(entry.details ?? {})],
  );
}
