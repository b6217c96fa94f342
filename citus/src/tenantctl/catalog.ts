/**
 * Which tables hold a tenant's rows, read from the catalog rather than listed here, so a table a later migration adds
 * moves with the tenant without touching tenantctl: every table in schema `platform` with a `tenant_id` column
 * (partitioned ones by their root), except the platform-level ones below and, on Citus, anything not distributed by
 * hash (reference and local tables are platform-level there). platform.tenants, the tenant's own row, moves with it
 * keyed by `id`.
 */
import type { ClientBase, Pool } from "pg";
import { TenantctlError, type Db } from "./context.js";

/** Platform-level tables that carry a tenant_id but are not the tenant's data. */
export const PLATFORM_LEVEL_TABLES = ["tenant_erasures", "tenant_placements", "tenant_fences", "tenant_moves", "tenant_move_progress"] as const;
export const TENANTS_TABLE = "platform.tenants";

export interface TenantTable {
  /** schema.table as regclass prints it (platform.users) */
  readonly name: string;
  /** The column that names the tenant: tenant_id, or id for platform.tenants. */
  readonly key: string;
  /** Columns a row is written with: not dropped, not generated, in table order. */
  readonly columns: readonly string[];
  /** Primary key columns, in index order (rows are copied and compared in this order). */
  readonly pk: readonly string[];
  /** Columns whose text form depends on the session's time zone: compared in UTC. */
  readonly timestamptz: readonly string[];
}

type Queryable = Pick<Pool | ClientBase, "query">;

async function tenantTableNames(db: Db): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `SELECT c.oid::regclass::text AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'platform' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND c.relname <> ALL ($1::text[])
        AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
        ${db.citus ? "AND EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid AND p.partmethod = 'h')" : ""}
      ORDER BY 1`,
    [PLATFORM_LEVEL_TABLES],
  );
  return rows.map((r) => r.name);
}

async function describe(q: Queryable, name: string, key: string): Promise<TenantTable> {
  const columns = await q.query<{ attname: string; generated: boolean; tz: boolean }>(
    `SELECT attname, attgenerated <> '' AS generated, atttypid = 'timestamptz'::regtype AS tz
       FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [name],
  );
  const pk = await q.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attnum = k.attnum
      WHERE i.indrelid = $1::regclass AND i.indisprimary AND a.attrelid = i.indrelid ORDER BY k.n`,
    [name],
  );
  const keyColumns = pk.rows.map((r) => r.attname);
  if (!keyColumns.includes(key)) {
    throw new TenantctlError(
      `${name}: its primary key (${keyColumns.join(", ") || "none"}) does not include ${key}, so its updates and deletes cannot be streamed per tenant ` +
        `(a publication's row filter may only use replica identity columns): give it a primary key that starts with ${key}`,
      3,
    );
  }
  return {
    name,
    key,
    columns: columns.rows.filter((c) => !c.generated).map((c) => c.attname),
    pk: keyColumns,
    timestamptz: columns.rows.filter((c) => c.tz).map((c) => c.attname),
  };
}

/** Parent before child along the foreign keys between the tables, so a copy never inserts a row before the one it references. */
async function dependencyOrder(q: Queryable, names: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ child: string; parent: string }>(
    `SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent FROM pg_constraint
      WHERE contype = 'f' AND conrelid = ANY ($1::regclass[]) AND confrelid = ANY ($1::regclass[]) AND conrelid <> confrelid`,
    [names],
  );
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (ordered.includes(name) || visiting.has(name)) return;
    visiting.add(name);
    for (const r of rows) if (r.child === name) visit(r.parent);
    ordered.push(name);
  };
  for (const name of names) visit(name);
  return ordered;
}

/**
 * The tables a move of a tenant from `source` to `target` carries, parents first, platform.tenants first of all when
 * `withTenantRow`. Both sides must hold the same tenant tables (on Citus: distributed ones); a difference is refused
 * (exit 3) naming the tables, since a table on one side only would be silently left behind.
 */
export async function tenantTables(source: Db, target: Db, withTenantRow: boolean): Promise<TenantTable[]> {
  const [a, b] = await Promise.all([tenantTableNames(source), tenantTableNames(target)]);
  // A table with tenant_id that is not distributed on the Citus side is platform-level there: not the tenant's data.
  let names: string[];
  if (source.citus !== target.citus) {
    const citusSide = source.citus ? a : b;
    const plainSide = source.citus ? b : a;
    const missing = citusSide.filter((n) => !plainSide.includes(n));
    if (missing.length > 0) throw new TenantctlError(`${missing.join(", ")}: distributed on ${source.citus ? source.name : target.name} but missing on the other side: run the migrations on both`, 3);
    names = citusSide;
  } else {
    const onlyA = a.filter((n) => !b.includes(n));
    const onlyB = b.filter((n) => !a.includes(n));
    if (onlyA.length + onlyB.length > 0) {
      throw new TenantctlError(`the two databases hold different tenant tables (only in ${source.name}: ${onlyA.join(", ") || "none"}; only in ${target.name}: ${onlyB.join(", ") || "none"}): run the migrations on both`, 3);
    }
    names = a;
  }
  const ordered = await dependencyOrder(source.pool, names);
  const tables = await Promise.all(ordered.map((n) => describe(source.pool, n, "tenant_id")));
  // The target must be able to take every column the source writes.
  for (const table of tables) {
    const there = await target.pool.query<{ attname: string }>(
      "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
      [table.name],
    );
    const have = new Set(there.rows.map((r) => r.attname));
    const lacking = table.columns.filter((c) => !have.has(c));
    if (lacking.length > 0) throw new TenantctlError(`${table.name} in ${target.name} lacks the columns ${lacking.join(", ")}: run the migrations there`, 3);
  }
  return withTenantRow ? [await describe(source.pool, TENANTS_TABLE, "id"), ...tables] : tables;
}

/** A tenant id, or its code looked up in the home registry. */
export async function resolveTenant(home: Db, reference: string): Promise<{ id: string; code: string }> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(reference);
  const { rows } = await home.pool.query<{ id: string; code: string }>(
    `SELECT id::text, code FROM platform.tenants WHERE ${isUuid ? "id = $1::uuid" : "code = $1"}`,
    [isUuid ? reference.toLowerCase() : reference],
  );
  if (!rows[0]) throw new TenantctlError(`no tenant "${reference}" in the home registry (give its id or its code)`, 2);
  return rows[0];
}
