import type { Database, Queryable } from "../db/database.js";
import type { LimitOverrides } from "../plans.js";
import { cursorColumn, toPage, type After, type Page } from "./page.js";

/**
 * Every status a tenant can have (migration 0010's CHECK): `deleting` from DELETE /v1/tenants/{t} until the erasure
 * job removes the tenant or a platform administrator cancels it (routes/erasures.ts).
 */
export const TENANT_STATUSES = ["active", "suspended", "deleting"] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

export interface TenantRecord {
  readonly id: string;
  readonly code: string;
  readonly name: string;
  readonly status: TenantStatus;
  readonly plan: string;
  /** The tenant's own limits (null: its plan's); effectiveLimits() in plans.ts combines the two. */
  readonly overrides: LimitOverrides;
  readonly features: Record<string, unknown>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewTenant {
  readonly id: string;
  readonly code: string;
  readonly name: string;
  readonly plan?: string;
  readonly overrides?: Partial<LimitOverrides>;
  readonly features?: Record<string, unknown>;
}

/** What a change sets; in `overrides`, null clears a tenant's own value (its plan's applies) and absent keeps it. */
export interface TenantChanges {
  readonly name?: string;
  readonly status?: TenantStatus;
  readonly plan?: string;
  readonly overrides?: Partial<LimitOverrides>;
  readonly features?: Record<string, unknown>;
}

export interface TenantListFilter {
  readonly status?: TenantStatus;
  readonly plan?: string;
  /** A prefix of the code or of the name (case-insensitive). */
  readonly q?: string;
  readonly limit: number;
  readonly after?: After;
  /** Every status and plan the API knows: the list enumerates the one it is not filtered on (migration 0008). */
  readonly statuses: readonly string[];
  readonly plans: readonly string[];
}

const COLUMNS = "id, code, name, status, plan, max_users, max_storage_gb, requests_per_minute, concurrent_requests, features, created_at, updated_at";

/** The override columns, by the name of the limit each holds. */
const OVERRIDE_COLUMNS = { maxUsers: "max_users", maxStorageGb: "max_storage_gb", requestsPerMinute: "requests_per_minute", concurrentRequests: "concurrent_requests" } as const;

/** A tenants row as the service reads it (exported for the row the entering statement reads, routes/context.ts). */
export function toTenant(row: Record<string, unknown>): TenantRecord {
  return {
    id: row.id as string,
    code: row.code as string,
    name: row.name as string,
    status: row.status as TenantStatus,
    plan: row.plan as string,
    overrides: {
      maxUsers: row.max_users as number | null,
      maxStorageGb: row.max_storage_gb as number | null,
      requestsPerMinute: row.requests_per_minute as number | null,
      concurrentRequests: row.concurrent_requests as number | null,
    },
    features: row.features as Record<string, unknown>,
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
}

/**
 * platform.tenants. Row-level security admits these statements only in a platform administrator's transaction
 * (app.platform_admin), a lookup (app.tenant_lookup) or the tenant's own (tenant_self): see TenantContext in
 * db/database.ts.
 */
export class TenantRepository {
  constructor(private readonly db: Queryable) {}

  async find(by: { id: string } | { code: string }): Promise<TenantRecord | undefined> {
    const [column, value] = "id" in by ? ["id", by.id] : ["code", by.code];
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.tenants WHERE ${column} = $1`, [value]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  /** The row, locked until the transaction ends (FOR UPDATE): a status change is judged on what it will change. */
  async lock(id: string): Promise<TenantRecord | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.tenants WHERE id = $1 FOR UPDATE`, [id]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  /** Sets the status alone (the erasure's request and cancel, routes/erasures.ts). */
  async setStatus(id: string, status: TenantStatus): Promise<TenantRecord | undefined> {
    const { rows } = await this.db.query(`UPDATE platform.tenants SET status = $2, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [id, status]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  async codeTaken(code: string): Promise<boolean> {
    return (await this.db.query("SELECT 1 FROM platform.tenants WHERE code = $1", [code])).rows.length > 0;
  }

  async create(t: NewTenant): Promise<TenantRecord> {
    const o = t.overrides ?? {};
    const { rows } = await this.db.query(
      `INSERT INTO platform.tenants (id, code, name, plan, max_users, max_storage_gb, requests_per_minute, concurrent_requests, features)
       VALUES ($1, $2, $3, COALESCE($4, 'free'), $5, $6, $7, $8, COALESCE($9::jsonb, '{}'::jsonb)) RETURNING ${COLUMNS}`,
      [t.id, t.code, t.name, t.plan ?? null, o.maxUsers ?? null, o.maxStorageGb ?? null, o.requestsPerMinute ?? null, o.concurrentRequests ?? null, t.features ? JSON.stringify(t.features) : null],
    );
    return toTenant(rows[0]!);
  }

  async update(id: string, c: TenantChanges): Promise<TenantRecord> {
    const params: unknown[] = [id, c.name ?? null, c.status ?? null, c.plan ?? null, c.features ? JSON.stringify(c.features) : null];
    // An override present in the change is set, to a value or to null; one absent is left as it is.
    const overrides = Object.entries(c.overrides ?? {}).filter(([, value]) => value !== undefined).map(([limit, value]) => {
      params.push(value);
      return `, ${OVERRIDE_COLUMNS[limit as keyof typeof OVERRIDE_COLUMNS]} = $${params.length}`;
    });
    const { rows } = await this.db.query(
      `UPDATE platform.tenants SET name = COALESCE($2, name), status = COALESCE($3, status), plan = COALESCE($4, plan),
              features = COALESCE($5::jsonb, features)${overrides.join("")}, updated_at = now()
        WHERE id = $1 RETURNING ${COLUMNS}`,
      params,
    );
    return toTenant(rows[0]!);
  }

  /**
   * One page of every tenant, newest first: platform.list_tenants (migration 0008), which only a platform
   * administrator's transaction may call, and which says which index serves each filter.
   */
  async list(f: TenantListFilter): Promise<Page<TenantRecord>> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, ${cursorColumn("created_at")}
         FROM platform.list_tenants($1, $2, $3, $4::timestamptz, $5::uuid, $6, $7::text[], $8::text[])`,
      [f.status ?? null, f.plan ?? null, f.q ?? null, f.after?.createdAt ?? null, f.after?.id ?? null, f.limit + 1, f.statuses, f.plans],
    );
    return toPage(rows, f.limit, toTenant);
  }
}

/**
 * Copies a tenant's registry row (the home database's, which is authoritative) over the copy that went with its rows
 * to another database (issue 25): the copy is what statements there read (a user's limit, the metrics rollup, the
 * erasure's last delete). Run after each registry change to a tenant placed elsewhere (db/placed.ts).
 */
export async function mirrorTenantRow(home: Database, target: Database, tenantId: string): Promise<void> {
  const row = await home.transaction({ tenantLookup: true }, async (tx) => (await tx.query<{ row: unknown }>("SELECT to_jsonb(t) AS row FROM platform.tenants t WHERE id = $1", [tenantId])).rows[0]?.row);
  if (row === undefined) return;
  const columns = COLUMNS.split(", ").filter((c) => c !== "id");
  await target.transaction({ tenantId }, (tx) =>
    tx.query(`UPDATE platform.tenants SET (${columns.join(", ")}) = (SELECT ${columns.join(", ")} FROM jsonb_populate_record(NULL::platform.tenants, $2::jsonb)) WHERE id = $1`, [tenantId, JSON.stringify(row)]),
  );
}
