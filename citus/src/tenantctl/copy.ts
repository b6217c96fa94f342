/**
 * Copying and removing one tenant's rows, and comparing them on two sides (the VDiff).
 */
import type { PoolClient } from "pg";
import { type Db, ident, qualified } from "./context.js";
import type { TenantTable } from "./catalog.js";

const cols = (t: TenantTable) => t.columns.map(ident).join(", ");
const pkList = (t: TenantTable, alias = "") => t.pk.map((c) => `${alias}${ident(c)}`).join(", ");

/**
 * Copies the tenant's rows of every table, parents first, reading in `snapshot` (exported by the slot, so the stream
 * carries exactly what the copy did not see) or, without one, in a repeatable-read transaction of its own (the
 * re-copy under a fence, when nothing writes). Pages by primary key; each page is one insert on the target. The
 * tenant's own row (platform.tenants) is upserted: a copy may already be there.
 */
export async function copyTenantRows(
  source: Db,
  target: Db,
  tables: readonly TenantTable[],
  tenantId: string,
  options: { snapshot?: string; pageRows?: number; onRows?: (table: string, rows: number) => void | Promise<void> } = {},
): Promise<number> {
  const pageRows = options.pageRows ?? 2000;
  const reader = await source.pool.connect();
  let total = 0;
  try {
    await reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (options.snapshot) await reader.query(`SET TRANSACTION SNAPSHOT '${options.snapshot.replace(/'/g, "")}'`);
    for (const table of tables) {
      let after: string[] | null = null;
      for (;;) {
        const params: unknown[] = [tenantId];
        let where = `${ident(table.key)} = $1::uuid`;
        if (after) {
          where += ` AND (${pkList(table)}) > (${after.map((_, i) => `$${i + 2}`).join(", ")})`;
          params.push(...after);
        }
        const { rows } = await reader.query<Record<string, string>>(
          `SELECT to_json(s)::text AS j, ${table.pk.map((c, i) => `(s.${ident(c)})::text AS k${i}`).join(", ")}
             FROM (SELECT ${cols(table)} FROM ${qualified(table.name)} WHERE ${where} ORDER BY ${pkList(table)} LIMIT ${pageRows}) s
            ORDER BY ${pkList(table, "s.")}`,
          params,
        );
        if (rows.length === 0) break;
        if (table.key === "id") await upsertRegistryRow(reader, target, table, tenantId);
        else {
          await target.pool.query(
            `INSERT INTO ${qualified(table.name)} (${cols(table)}) SELECT ${cols(table)} FROM json_populate_recordset(NULL::${qualified(table.name)}, $1::json)`,
            [`[${rows.map((r) => r.j).join(",")}]`],
          );
        }
        total += rows.length;
        await options.onRows?.(table.name, rows.length);
        const last = rows.at(-1)!;
        after = table.pk.map((_, i) => last[`k${i}`]!);
        if (rows.length < pageRows) break;
      }
    }
    await reader.query("COMMIT");
  } finally {
    await reader.query("ROLLBACK").catch(() => {});
    reader.release();
  }
  return total;
}

/**
 * The tenant's own row (platform.tenants): a copy may already be in the target, so it is upserted, with each column
 * as its text form in a parameter (Citus refuses a function such as json_populate_recordset in ON CONFLICT ... DO
 * UPDATE on a reference table).
 */
async function upsertRegistryRow(reader: PoolClient, target: Db, table: TenantTable, tenantId: string): Promise<void> {
  const { rows } = await reader.query<Record<string, string | null>>(
    `SELECT ${table.columns.map((c, i) => `${ident(c)}::text AS c${i}`).join(", ")} FROM ${qualified(table.name)} WHERE ${ident(table.key)} = $1::uuid`,
    [tenantId],
  );
  if (!rows[0]) return;
  const values = table.columns.map((_, i) => rows[0]![`c${i}`]);
  await target.pool.query(
    `INSERT INTO ${qualified(table.name)} (${cols(table)}) VALUES (${values.map((_, i) => `$${i + 1}`).join(", ")})
     ON CONFLICT (${pkList(table)}) DO UPDATE SET ${table.columns.filter((c) => !table.pk.includes(c)).map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(", ")}`,
    values,
  );
}

/** Deletes the tenant's rows of `tables` in `db`, children first, `batch` rows per transaction. Returns how many. */
export async function deleteTenantRows(db: Db, tables: readonly TenantTable[], tenantId: string, batch = 5000): Promise<number> {
  let total = 0;
  for (const table of [...tables].reverse()) {
    for (;;) {
      const result = await db.pool.query(
        `DELETE FROM ${qualified(table.name)} WHERE ${ident(table.key)} = $1::uuid AND (${pkList(table)}) IN
           (SELECT ${pkList(table)} FROM ${qualified(table.name)} WHERE ${ident(table.key)} = $1::uuid LIMIT ${batch})`,
        [tenantId],
      );
      total += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < batch) break;
    }
  }
  return total;
}

/** A row's text, the same on any server whatever its session time zone. */
const rowText = (t: TenantTable) => `ROW(${t.columns.map((c) => (t.timestamptz.includes(c) ? `(${ident(c)} AT TIME ZONE 'UTC')` : ident(c))).join(", ")})::text`;

export interface TableDiff {
  readonly table: string;
  readonly source: { rows: number; checksum: string };
  readonly target: { rows: number; checksum: string };
  /** Rows that differ, by primary key (at most `limit`), when the checksums differ. */
  readonly differences: string[];
}

async function summary(db: Db | PoolClient, t: TenantTable, tenantId: string) {
  const q = "pool" in db ? db.pool : db;
  const { rows } = await q.query<{ n: string; c: string }>(
    // Order-independent (a sum of each row's hash, 60 bits of its md5): no sort, so it stays short inside the window.
    `SELECT count(*) AS n, CASE WHEN count(*) = 0 THEN '' ELSE lpad(to_hex(count(*)), 8, '0') || sum(('x' || substr(md5(${rowText(t)}), 1, 15))::bit(60)::bigint::numeric)::text END AS c
       FROM ${qualified(t.name)} WHERE ${ident(t.key)} = $1::uuid`,
    [tenantId],
  );
  return { rows: Number(rows[0]!.n), checksum: rows[0]!.c };
}

async function rowHashes(db: Db, t: TenantTable, tenantId: string): Promise<Map<string, string>> {
  const { rows } = await db.pool.query<{ k: string; h: string }>(
    `SELECT ROW(${pkList(t)})::text AS k, md5(${rowText(t)}) AS h FROM ${qualified(t.name)} WHERE ${ident(t.key)} = $1::uuid`,
    [tenantId],
  );
  return new Map(rows.map((r) => [r.k, r.h]));
}

/**
 * Row counts and content checksums of the tenant's rows, table by table, on both sides; where they differ, which
 * rows (by primary key): missing on one side, or different.
 */
export async function diffTenant(source: Db, target: Db, tables: readonly TenantTable[], tenantId: string, limit = 10): Promise<TableDiff[]> {
  const result: TableDiff[] = [];
  const summaries = await Promise.all(tables.map((t) => Promise.all([summary(source, t, tenantId), summary(target, t, tenantId)])));
  for (const [i, t] of tables.entries()) {
    const [a, b] = summaries[i]!;
    const differences: string[] = [];
    if (a.checksum !== b.checksum || a.rows !== b.rows) {
      const [ha, hb] = await Promise.all([rowHashes(source, t, tenantId), rowHashes(target, t, tenantId)]);
      for (const [k, h] of ha) {
        if (differences.length >= limit) break;
        if (!hb.has(k)) differences.push(`${k} missing in ${target.name}`);
        else if (hb.get(k) !== h) differences.push(`${k} differs`);
      }
      for (const k of hb.keys()) {
        if (differences.length >= limit) break;
        if (!ha.has(k)) differences.push(`${k} only in ${target.name}`);
      }
    }
    result.push({ table: t.name, source: a, target: b, differences });
  }
  return result;
}

export const diffClean = (diff: readonly TableDiff[]) => diff.every((d) => d.source.rows === d.target.rows && d.source.checksum === d.target.checksum);
