import type { Queryable } from "../db/database.js";

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

export interface NewTenant {
  readonly id: string;
  readonly code: string;
  readonly name: string;
  readonly plan?: string;
  readonly maxUsers?: number;
  readonly maxStorageGb?: number;
  readonly features?: Record<string, unknown>;
}

export interface TenantChanges {
  readonly name?: string;
  readonly status?: "active" | "suspended";
  readonly plan?: string;
  readonly maxUsers?: number;
  readonly maxStorageGb?: number;
  readonly features?: Record<string, unknown>;
}

const COLUMNS = "id, code, name, status, plan, max_users, max_storage_gb, features, created_at, updated_at";

function toTenant(row: Record<string, unknown>): TenantRecord {
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

/**
 * platform.tenants. Row-level security admits these statements only in a platform administrator's transaction
 * (app.platform_admin) or a lookup (app.tenant_lookup): see TenantContext in db/database.ts.
 */
export class TenantRepository {
  constructor(private readonly db: Queryable) {}

  async find(by: { id: string } | { code: string }): Promise<TenantRecord | undefined> {
    const [column, value] = "id" in by ? ["id", by.id] : ["code", by.code];
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.tenants WHERE ${column} = $1`, [value]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  async codeTaken(code: string): Promise<boolean> {
    return (await this.db.query("SELECT 1 FROM platform.tenants WHERE code = $1", [code])).rows.length > 0;
  }

  async create(t: NewTenant): Promise<TenantRecord> {
    const { rows } = await this.db.query(
      `INSERT INTO platform.tenants (id, code, name, plan, max_users, max_storage_gb, features)
       VALUES ($1, $2, $3, COALESCE($4, 'free'), COALESCE($5, 10), COALESCE($6, 1), COALESCE($7::jsonb, '{}'::jsonb)) RETURNING ${COLUMNS}`,
      [t.id, t.code, t.name, t.plan ?? null, t.maxUsers ?? null, t.maxStorageGb ?? null, t.features ? JSON.stringify(t.features) : null],
    );
    return toTenant(rows[0]!);
  }

  async update(id: string, c: TenantChanges): Promise<TenantRecord> {
    const { rows } = await this.db.query(
      `UPDATE platform.tenants SET name = COALESCE($2, name), status = COALESCE($3, status), plan = COALESCE($4, plan),
              max_users = COALESCE($5, max_users), max_storage_gb = COALESCE($6, max_storage_gb),
              features = COALESCE($7::jsonb, features), updated_at = now()
        WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, c.name ?? null, c.status ?? null, c.plan ?? null, c.maxUsers ?? null, c.maxStorageGb ?? null, c.features ? JSON.stringify(c.features) : null],
    );
    return toTenant(rows[0]!);
  }
}
