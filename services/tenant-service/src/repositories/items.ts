import type { Queryable } from "../db/database.js";
import { cursorColumn, toPage, type After, type Page } from "./page.js";

export interface Item {
  readonly id: string;
  readonly ownerId: string;
  readonly title: string;
  readonly body: string;
  readonly tags: string[];
  readonly sizeBytes: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const COLUMNS = "id, owner_id, title, body, tags, size_bytes, created_at, updated_at";

const toItem = (r: Record<string, unknown>): Item => ({
  id: r.id as string,
  ownerId: r.owner_id as string,
  title: r.title as string,
  body: r.body as string,
  tags: r.tags as string[],
  sizeBytes: Number(r.size_bytes),
  createdAt: r.created_at as Date,
  updatedAt: r.updated_at as Date,
});

/** One tenant's platform.items: every statement names the tenant, so Citus routes it to the tenant's shard. */
export class ItemRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  async create(i: { ownerId: string; title: string; body: string; tags: string[] }): Promise<Item> {
    const { rows } = await this.db.query(
      `INSERT INTO platform.items (tenant_id, owner_id, title, body, tags) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [this.tenantId, i.ownerId.toLowerCase(), i.title, i.body, i.tags],
    );
    return toItem(rows[0]!);
  }

  /** Newest first; `q` is full-text (the `simple` configuration, as the search column is built). */
  async list(options: { limit: number; after?: After; ownerId?: string; q?: string }): Promise<Page<Item>> {
    const params: unknown[] = [this.tenantId, options.limit + 1];
    const where = ["tenant_id = $1"];
    if (options.ownerId) {
      params.push(options.ownerId.toLowerCase());
      where.push(`owner_id = $${params.length}`);
    }
    if (options.q) {
      params.push(options.q);
      where.push(`search @@ plainto_tsquery('simple', $${params.length})`);
    }
    if (options.after) {
      params.push(options.after.createdAt, options.after.id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    const { rows } = await this.db.query(`SELECT ${COLUMNS}, ${cursorColumn("created_at")} FROM platform.items WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT $2`, params);
    return toPage(rows, options.limit, toItem);
  }

  async find(id: string): Promise<Item | undefined> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM platform.items WHERE tenant_id = $1 AND id = $2`, [this.tenantId, id]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async countOwnedBy(ownerId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1 AND owner_id = $2", [this.tenantId, ownerId]);
    return rows[0]?.n ?? 0;
  }

  async update(id: string, c: { ownerId?: string; title?: string; body?: string; tags?: string[] }): Promise<Item | undefined> {
    const { rows } = await this.db.query(
      `UPDATE platform.items SET owner_id = COALESCE($3, owner_id), title = COALESCE($4, title), body = COALESCE($5, body),
              tags = COALESCE($6, tags), updated_at = now()
        WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [this.tenantId, id, c.ownerId?.toLowerCase() ?? null, c.title ?? null, c.body ?? null, c.tags ?? null],
    );
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  /** True when there was such an item. */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query("DELETE FROM platform.items WHERE tenant_id = $1 AND id = $2", [this.tenantId, id]);
    return rowCount > 0;
  }
}
