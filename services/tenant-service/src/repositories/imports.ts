import type { Queryable } from "../db/database.js";

export interface ImportUser {
  readonly line: number;
  readonly key: string;
  readonly email: string;
  readonly displayName: string;
  readonly role: "admin" | "member";
}

export interface ImportItem {
  readonly line: number;
  readonly key: string;
  /** Exactly one of the two: a user of the tenant by id, or by the key an import gave it. */
  readonly ownerId?: string;
  readonly ownerKey?: string;
  readonly title: string;
  readonly body: string;
  readonly tags: string[];
}

export interface LineError {
  readonly line: number;
  readonly reason: string;
}

export interface BatchResult {
  readonly created: number;
  /** Rows whose key an import applied before (this one or an earlier one): nothing done, as asked. */
  readonly skipped: number;
  readonly errors: LineError[];
}

/**
 * One tenant's import keys (platform.import_rows, migration 0016) and the rows they create, a batch at a time in the
 * caller's transaction. Each row's key is claimed first (INSERT ... ON CONFLICT DO NOTHING): a key applied before is
 * skipped, and one being applied by a concurrent import waits for that transaction, then is skipped. A claimed row
 * that cannot be applied (its email taken, the tenant's limit reached) gives its claim back in the same transaction,
 * so the same file, corrected, applies it later. The claim carries the row's id, chosen here, so the row and its key
 * are written with no round trip between them.
 */
export class ImportRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
    private readonly importId: string,
  ) {}

  /** Claims the keys not applied before; returns each claimed key's new entity id. */
  private async claim(kind: "user" | "item", rows: readonly { key: string; line: number }[]): Promise<Map<string, string>> {
    if (rows.length === 0) return new Map();
    const { rows: claimed } = await this.db.query<{ import_key: string; entity_id: string }>(
      `INSERT INTO platform.import_rows (tenant_id, kind, import_key, entity_id, import_id, line)
       SELECT $1, $2, x.key, gen_random_uuid(), $3, x.line FROM jsonb_to_recordset($4::jsonb) AS x(key text, line int)
       ON CONFLICT DO NOTHING RETURNING import_key, entity_id`,
      [this.tenantId, kind, this.importId, JSON.stringify(rows.map((r) => ({ key: r.key, line: r.line })))],
    );
    return new Map(claimed.map((r) => [r.import_key, r.entity_id]));
  }

  private async release(kind: "user" | "item", keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.db.query("DELETE FROM platform.import_rows WHERE tenant_id = $1 AND kind = $2 AND import_key = ANY($3::text[])", [this.tenantId, kind, keys]);
  }

  /** Users, within `maxUsers` (the tenant's row is locked by the caller, so concurrent imports count in turn). */
  async applyUsers(rows: readonly ImportUser[], maxUsers: number): Promise<BatchResult> {
    const claimed = await this.claim("user", rows);
    const errors: LineError[] = [];
    const refused: string[] = [];
    const { rows: counted } = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [this.tenantId]);
    let room = maxUsers - counted[0]!.n;
    // Emails the tenant's users have (the unique index is on lower(email)), so that a row refused for its email never
    // takes the room of one after it; ON CONFLICT below still covers a user created meanwhile.
    const emails = [...new Set(rows.filter((r) => claimed.has(r.key)).map((r) => r.email.toLowerCase()))];
    const taken = new Set<string>();
    if (emails.length > 0) {
      const { rows: found } = await this.db.query<{ email: string }>(
        "SELECT lower(email) AS email FROM platform.users WHERE tenant_id = $1 AND lower(email) = ANY($2::text[])",
        [this.tenantId, emails],
      );
      for (const r of found) taken.add(r.email);
    }
    const toInsert: (ImportUser & { id: string })[] = [];
    for (const row of rows) {
      const id = claimed.get(row.key);
      if (!id || toInsert.some((r) => r.key === row.key)) continue;
      if (taken.has(row.email.toLowerCase())) {
        errors.push({ line: row.line, reason: `email ${row.email} already belongs to a user of this tenant` });
        refused.push(row.key);
        continue;
      }
      if (room <= 0) {
        errors.push({ line: row.line, reason: `the tenant has its maximum of ${maxUsers} users` });
        refused.push(row.key);
        continue;
      }
      room--;
      taken.add(row.email.toLowerCase());
      toInsert.push({ ...row, id });
    }
    const inserted = new Set<string>();
    if (toInsert.length > 0) {
      // An email already taken (by a user of the tenant, or earlier in this batch) is skipped by the unique index.
      const { rows: created } = await this.db.query<{ id: string }>(
        `INSERT INTO platform.users (tenant_id, id, email, display_name, role)
         SELECT $1, x.id, x.email, x.display_name, x.role FROM jsonb_to_recordset($2::jsonb) AS x(id uuid, email text, display_name text, role text)
         ON CONFLICT DO NOTHING RETURNING id`,
        [this.tenantId, JSON.stringify(toInsert.map((u) => ({ id: u.id, email: u.email, display_name: u.displayName, role: u.role })))],
      );
      for (const r of created) inserted.add(r.id);
    }
    for (const row of toInsert) {
      if (inserted.has(row.id)) continue;
      errors.push({ line: row.line, reason: `email ${row.email} already belongs to a user of this tenant` });
      refused.push(row.key);
    }
    await this.release("user", refused);
    return { created: inserted.size, skipped: rows.length - claimed.size, errors };
  }

  /**
   * Items, within `storageLeft` bytes of title and body (the tenant's storage limit less what it holds, counted by
   * the caller). Returns the bytes it added too.
   */
  async applyItems(rows: readonly ImportItem[], storageLeft: number): Promise<BatchResult & { bytes: number }> {
    const errors: LineError[] = [];
    // Owners: by key, the users imported under those keys; by id or key, a user of this tenant now.
    const ownerKeys = [...new Set(rows.flatMap((r) => (r.ownerKey ? [r.ownerKey] : [])))];
    const byKey = new Map<string, string>();
    if (ownerKeys.length > 0) {
      const { rows: found } = await this.db.query<{ import_key: string; entity_id: string }>(
        "SELECT import_key, entity_id FROM platform.import_rows WHERE tenant_id = $1 AND kind = 'user' AND import_key = ANY($2::text[])",
        [this.tenantId, ownerKeys],
      );
      for (const r of found) byKey.set(r.import_key, r.entity_id);
    }
    const ownerOf = (r: ImportItem) => (r.ownerId ? r.ownerId.toLowerCase() : byKey.get(r.ownerKey!));
    const candidates = [...new Set(rows.flatMap((r) => ownerOf(r) ?? []))];
    const users = new Set<string>();
    if (candidates.length > 0) {
      const { rows: found } = await this.db.query<{ id: string }>("SELECT id FROM platform.users WHERE tenant_id = $1 AND id = ANY($2::uuid[])", [this.tenantId, candidates]);
      for (const r of found) users.add(r.id);
    }
    const owned: (ImportItem & { owner: string })[] = [];
    for (const row of rows) {
      const owner = ownerOf(row);
      if (owner && users.has(owner)) owned.push({ ...row, owner });
      else errors.push({ line: row.line, reason: row.ownerId ? `ownerId ${row.ownerId} is not a user of this tenant` : `ownerKey ${row.ownerKey} names no imported user of this tenant (import the user first, or in an earlier line)` });
    }

    const claimed = await this.claim("item", owned);
    const refused: string[] = [];
    let left = storageLeft;
    const toInsert: (ImportItem & { owner: string; id: string })[] = [];
    for (const row of owned) {
      const id = claimed.get(row.key);
      if (!id || toInsert.some((r) => r.key === row.key)) continue;
      const size = Buffer.byteLength(row.title) + Buffer.byteLength(row.body);
      if (size > left) {
        errors.push({ line: row.line, reason: "the tenant's storage limit would be exceeded" });
        refused.push(row.key);
        continue;
      }
      left -= size;
      toInsert.push({ ...row, id });
    }
    if (toInsert.length > 0) {
      // A multi-row VALUES, not INSERT ... SELECT: Citus runs an INSERT ... SELECT without ON CONFLICT as a COPY into
      // the shards, which PostgreSQL refuses under row-level security ("COPY FROM not supported with row-level
      // security", Citus 13.2.2). At IMPORT_BATCH_ROWS' maximum (5,000) that is 25,001 parameters, under the 65,535.
      const params: unknown[] = [this.tenantId];
      const values = toInsert.map((i) => {
        params.push(i.id, i.owner, i.title, i.body, i.tags);
        const n = params.length;
        return `($1, $${n - 4}::uuid, $${n - 3}::uuid, $${n - 2}, $${n - 1}, $${n}::text[])`;
      });
      await this.db.query(`INSERT INTO platform.items (tenant_id, id, owner_id, title, body, tags) VALUES ${values.join(", ")}`, params);
    }
    await this.release("item", refused);
    return { created: toInsert.length, skipped: owned.length - claimed.size, errors, bytes: storageLeft - left };
  }

  /** Bytes of title and body the tenant's items hold now (what the storage limit counts). */
  async storageBytes(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>("SELECT COALESCE(sum(size_bytes), 0)::text AS n FROM platform.items WHERE tenant_id = $1", [this.tenantId]);
    return Number(rows[0]!.n);
  }
}
