import type { Queryable } from "../db/database.js";
import { effectiveLimits } from "../plans.js";
import { cursorColumn, toPage, type After, type Page } from "./page.js";

export interface User {
  readonly id: string;
  readonly email: string;
  readonly displayName: string;
  readonly role: "admin" | "member";
  readonly status: "active" | "disabled";
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const COLUMNS = "id, email, display_name, role, status, created_at, updated_at";

const toUser = (r: Record<string, unknown>): User => ({
  id: r.id as string,
  email: r.email as string,
  displayName: r.display_name as string,
  role: r.role as User["role"],
  status: r.status as User["status"],
  createdAt: r.created_at as Date,
  updatedAt: r.updated_at as Date,
});

/** One tenant's platform.users: every statement names the tenant, so Citus routes it to the tenant's shard. */
export class UserRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  /**
   * The tenant's user limit (its override, else its plan's), read with its row locked until the transaction ends:
   * concurrent creations then cannot both pass the quota check.
   */
  async lockMaxUsers(): Promise<number | undefined> {
    const { rows } = await this.db.query<{ plan: string; max_users: number | null }>("SELECT plan, max_users FROM platform.tenants WHERE id = $1 FOR UPDATE", [this.tenantId]);
    const row = rows[0];
    return row && effectiveLimits({ plan: row.plan, overrides: { maxUsers: row.max_users, maxStorageGb: null, requestsPerMinute: null, concurrentRequests: null } }).maxUsers;
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [this.tenantId]);
    return rows[0]?.n ?? 0;
  }

  async create(u: { email: string; displayName: string; role: User["role"] }): Promise<User> {
    const { rows } = await this.db.query(
      `INSERT INTO platform.users (tenant_id, email, display_name, role) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
      [this.tenantId, u.email, u.displayName, u.role],
    );
    return toUser(rows[0]!);
  }

  /**
   * The user with this email, created with these values where the tenant has none (case-insensitively, as the unique
   * index): `created` says which. A rerun after a crash finds the row the first run committed.
   */
  async ensure(u: { email: string; displayName: string; role: User["role"] }): Promise<{ user: User; created: boolean }> {
    const inserted = await this.db.query(
      `INSERT INTO platform.users (tenant_id, email, display_name, role) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, lower(email)) DO NOTHING RETURNING ${COLUMNS}`,
      [this.tenantId, u.email, u.displayName, u.role],
    );
    if (inserted.rows[0]) return { user: toUser(inserted.rows[0]), created: true };
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.users WHERE tenant_id = $1 AND lower(email) = lower($2)`, [this.tenantId, u.email]);
    return { user: toUser(rows[0]!), created: false };
  }

  async list(options: { limit: number; after?: After }): Promise<Page<User>> {
    const { limit, after } = options;
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, ${cursorColumn("created_at")} FROM platform.users WHERE tenant_id = $1
         ${after ? "AND (created_at, id) < ($3::timestamptz, $4::uuid)" : ""}
       ORDER BY created_at DESC, id DESC LIMIT $2`,
      after ? [this.tenantId, limit + 1, after.createdAt, after.id] : [this.tenantId, limit + 1],
    );
    return toPage(rows, limit, toUser);
  }

  async find(id: string): Promise<User | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.users WHERE tenant_id = $1 AND id = $2`, [this.tenantId, id]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.db.query("SELECT 1 FROM platform.users WHERE tenant_id = $1 AND id = $2", [this.tenantId, id.toLowerCase()])).rows.length > 0;
  }

  async update(id: string, c: { displayName?: string; role?: User["role"]; status?: User["status"] }): Promise<User | undefined> {
    const { rows } = await this.db.query(
      `UPDATE platform.users SET display_name = COALESCE($3, display_name), role = COALESCE($4, role), status = COALESCE($5, status), updated_at = now()
        WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [this.tenantId, id, c.displayName ?? null, c.role ?? null, c.status ?? null],
    );
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  /** True when there was such a user. */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query("DELETE FROM platform.users WHERE tenant_id = $1 AND id = $2", [this.tenantId, id]);
    return rowCount > 0;
  }
}
