import type { Queryable } from "../db/database.js";

export interface UsageCounts {
  readonly users: number;
  readonly items: number;
  readonly storageBytes: number;
}

/** What one tenant uses, counted from its rows (the worker's daily rollup is in platform.tenant_metrics). */
export class UsageRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  async counts(): Promise<UsageCounts> {
    const { rows } = await this.db.query<{ users: number; items: number; storage: string }>(
      `SELECT (SELECT count(*)::int FROM platform.users WHERE tenant_id = $1) AS users,
              (SELECT count(*)::int FROM platform.items WHERE tenant_id = $1) AS items,
              (SELECT coalesce(sum(size_bytes), 0)::text FROM platform.items WHERE tenant_id = $1) AS storage`,
      [this.tenantId],
    );
    const u = rows[0]!;
    return { users: u.users, items: u.items, storageBytes: Number(u.storage) };
  }
}
