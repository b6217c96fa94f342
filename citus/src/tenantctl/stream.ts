/**
 * The stream of one tenant's changes from one database into another: a publication filtered to the tenant's rows
 * (PostgreSQL 15 row filters), a logical replication slot decoded with pgoutput through SQL
 * (pg_logical_slot_peek_binary_changes), and tenantctl applying each source transaction to the target with plain SQL,
 * in one target transaction together with its position (platform.tenant_move_progress), then acknowledging it to the
 * slot.
 *
 * Why not CREATE SUBSCRIPTION: a subscription's apply worker writes into the local table it finds by name, and on a
 * Citus coordinator that is the distributed table's empty shell, so the rows never reach the shards (citus issues
 * #7085, #4389); the trigger-on-a-staging-table workaround (#3140) cannot apply an UPDATE or DELETE of a row the
 * staging table never held. Applying through SQL goes through Citus's planner like any write, so one path serves a
 * plain PostgreSQL target and a Citus one, and positions are exact: a run killed between applying and acknowledging
 * resumes after the last transaction the target committed.
 */
import type { ClientBase } from "pg";
import { type Db, TenantctlError, ident, literal, qualified } from "./context.js";
import type { TenantTable } from "./catalog.js";

/** Slot and publication names for a tenant's stream in one direction (at most 63 characters). */
export function streamNames(tenantId: string, direction: "forward" | "reverse"): { slot: string; publication: string } {
  const name = `tenantctl_${tenantId.replace(/-/g, "")}_${direction === "forward" ? "f" : "r"}`;
  return { slot: name, publication: name };
}

/**
 * The one order in which tenantctl names a publication's tables, whichever statement it is: CREATE PUBLICATION and
 * ALTER PUBLICATION ... DROP TABLE each lock the tables they name (SHARE UPDATE EXCLUSIVE, which conflicts with
 * itself) one after another in the order given, and concurrent moves run both on the same database. Named in two
 * orders (the copy's parents-first for one, the catalog's for the other) they deadlocked: 2 tenants of the fresh-clone
 * CI's wave of 9f29343, and 2 in each run of four concurrent create-and-drop lanes (citus/test/tenantctl-stream.test.ts).
 * Sorted here, by code point, not by the database's collation, so both statements agree whatever it is.
 */
export function publicationOrder(names: readonly string[]): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The publication of one tenant's rows: each table filtered to it, partitioned tables published as their root. */
export function createPublicationSql(publication: string, tables: readonly TenantTable[], tenantId: string): string {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const list = publicationOrder([...byName.keys()]).map((name) => byName.get(name)!).map((t) => `${qualified(t.name)} WHERE (${ident(t.key)} = ${literal(tenantId)}::uuid)`).join(", ");
  // No TRUNCATE: it cannot be filtered to a tenant; a truncate on the source would show in verify.
  return `CREATE PUBLICATION ${ident(publication)} FOR TABLE ${list} WITH (publish = 'insert, update, delete', publish_via_partition_root = true)`;
}

export async function ensurePublication(db: Db, publication: string, tables: readonly TenantTable[], tenantId: string): Promise<void> {
  const exists = await db.pool.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication]);
  if (exists.rows.length === 0) await db.pool.query(createPublicationSql(publication, tables, tenantId));
}

/**
 * How long a publication stays empty before it is dropped (dropStream). Long enough that no statement still holds
 * the tables' publication list from before it was emptied; PostgreSQL 15 reads that list and then each publication
 * in it, so a publication dropped between the two fails the statement, a write of any tenant on those tables, with
 * XX000 "cache lookup failed for publication" (the fresh-clone CI of 2f08547 lost a write to it mid-wave).
 */
export const PUBLICATION_EMPTY_MS = 200;

/**
 * Drops the stream: the slot, then the publication in two steps. Its tables are taken out of it first (the
 * statements of other sessions then stop listing it) and only after `emptyMs` is it dropped; dropped at once, it
 * failed about one write in 400 create-and-drop cycles on a busy table (citus/test/tenantctl-stream.test.ts).
 * Each step is idempotent: a run killed between them resumes here.
 */
export async function dropStream(db: Db, slot: string | null, publication: string | null, options: { emptyMs?: number } = {}): Promise<void> {
  if (slot) await db.pool.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot]);
  if (!publication) return;
  const { rows } = await db.pool.query<{ name: string }>(
    "SELECT r.prrelid::regclass::text AS name FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = $1",
    [publication],
  );
  if (rows.length > 0) {
    // In publicationOrder, as CREATE PUBLICATION names them: in another order the two deadlock.
    await db.pool.query(`ALTER PUBLICATION ${ident(publication)} DROP TABLE ${publicationOrder(rows.map((r) => r.name)).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, options.emptyMs ?? PUBLICATION_EMPTY_MS));
  }
  await db.pool.query(`DROP PUBLICATION IF EXISTS ${ident(publication)}`);
}

/** Bytes of WAL the slot has not acknowledged, or null when it does not exist. */
export async function slotLag(db: Db, slot: string): Promise<number | null> {
  const { rows } = await db.pool.query<{ lag: string | null }>(
    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  return rows[0] ? Number(rows[0].lag ?? 0) : null;
}

// --- pgoutput, protocol version 1 -------------------------------------------------------------------------------

interface Relation {
  readonly schema: string;
  readonly name: string;
  readonly columns: { name: string; key: boolean }[];
}
/** A column's text value; null is SQL NULL; undefined is an unchanged TOASTed value the message left out. */
type Tuple = (string | null | undefined)[];
interface Change {
  readonly kind: "insert" | "update" | "delete";
  readonly relation: Relation;
  readonly tuple?: Tuple;
  readonly key?: Tuple;
}
export interface DecodedTransaction {
  readonly endLsn: string;
  readonly changes: Change[];
}

const lsnText = (buf: Buffer, at: number) => `${buf.readUInt32BE(at).toString(16).toUpperCase()}/${buf.readUInt32BE(at + 4).toString(16).toUpperCase()}`;

/** LSN text to a number, exact up to 2^53: enough to compare positions. */
export const lsnValue = (lsn: string) => {
  const [hi, lo] = lsn.split("/");
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
};

class Reader {
  at = 0;
  constructor(readonly buf: Buffer) {}
  byte() {
    return this.buf[this.at++]!;
  }
  int16() {
    const v = this.buf.readInt16BE(this.at);
    this.at += 2;
    return v;
  }
  int32() {
    const v = this.buf.readInt32BE(this.at);
    this.at += 4;
    return v;
  }
  string() {
    const end = this.buf.indexOf(0, this.at);
    const v = this.buf.toString("utf8", this.at, end);
    this.at = end + 1;
    return v;
  }
  tuple(): Tuple {
    const n = this.int16();
    const values: Tuple = [];
    for (let i = 0; i < n; i++) {
      const kind = String.fromCharCode(this.byte());
      if (kind === "n") values.push(null);
      else if (kind === "u") values.push(undefined);
      else if (kind === "t") {
        const len = this.int32();
        values.push(this.buf.toString("utf8", this.at, this.at + len));
        this.at += len;
      } else throw new TenantctlError(`pgoutput: unexpected tuple column kind "${kind}"`, 4);
    }
    return values;
  }
}

/** Decodes pgoutput messages into whole transactions; relations are remembered across calls. */
export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();
  private current: Change[] | null = null;

  /** Feeds one message; returns the transaction it completes, if it is a commit. */
  message(data: Buffer): DecodedTransaction | null {
    const r = new Reader(data);
    const type = String.fromCharCode(r.byte());
    switch (type) {
      case "B":
        this.current = [];
        return null;
      case "C": {
        // flags (1), commit LSN (8), end LSN (8), timestamp (8)
        const endLsn = lsnText(data, 10);
        const changes = this.current ?? [];
        this.current = null;
        return { endLsn, changes };
      }
      case "R": {
        const id = r.int32();
        const schema = r.string();
        const name = r.string();
        r.byte(); // replica identity
        const n = r.int16();
        const columns: Relation["columns"] = [];
        for (let i = 0; i < n; i++) {
          const flags = r.byte();
          const column = r.string();
          r.int32(); // type
          r.int32(); // typmod
          columns.push({ name: column, key: (flags & 1) === 1 });
        }
        this.relations.set(id, { schema, name, columns });
        return null;
      }
      case "I":
      case "U":
      case "D": {
        const relation = this.relations.get(r.int32());
        if (!relation || !this.current) throw new TenantctlError("pgoutput: a change before its relation or transaction", 4);
        let key: Tuple | undefined;
        let tuple: Tuple | undefined;
        for (;;) {
          const part = String.fromCharCode(r.byte());
          if (part === "K" || part === "O") key = r.tuple();
          else if (part === "N") {
            tuple = r.tuple();
            break;
          }
          if (type === "D") break;
        }
        this.current.push({ kind: type === "I" ? "insert" : type === "U" ? "update" : "delete", relation, ...(tuple ? { tuple } : {}), ...(key ? { key } : {}) });
        return null;
      }
      case "T":
        throw new TenantctlError("the source truncated a table this tenant's stream carries: a TRUNCATE cannot be applied to one tenant; verify, then move again", 4);
      default:
        // Y (type), O (origin), M (message): nothing to apply.
        return null;
    }
  }
}

/** Applies one decoded change with plain SQL; an update or delete that finds no row means the sides diverged. */
async function applyChange(client: ClientBase, change: Change, tables: ReadonlyMap<string, TenantTable>): Promise<void> {
  const name = `${change.relation.schema}.${change.relation.name}`;
  if (!tables.has(name)) throw new TenantctlError(`the stream carried a change to ${name}, which is not one of the tenant's tables`, 4);
  const cols = change.relation.columns;
  const table = qualified(name);
  if (change.kind === "insert") {
    const present = cols.map((c, i) => ({ c, v: change.tuple![i] })).filter((x) => x.v !== undefined);
    await client.query(`INSERT INTO ${table} (${present.map((x) => ident(x.c.name)).join(", ")}) VALUES (${present.map((_, i) => `$${i + 1}`).join(", ")})`, present.map((x) => x.v));
    return;
  }
  const keySource = change.key ?? change.tuple!;
  const keys = cols.map((c, i) => ({ c, v: keySource[i] })).filter((x) => x.c.key);
  if (change.kind === "update") {
    // The row filter holds every change to one tenant, so tenant_id never changes, and Citus refuses an UPDATE that
    // sets the distribution column even to its own value; the other key columns are set only when the key changed.
    const set = cols
      .map((c, i) => ({ c, v: change.tuple![i] }))
      .filter((x) => x.v !== undefined && x.c.name !== "tenant_id" && (change.key !== undefined || !x.c.key));
    // Nothing to set (only unchanged values): the row must still be there.
    if (set.length === 0) set.push(...keys.slice(0, 1).filter((x) => x.c.name !== "tenant_id"));
    const params = [...set.map((x) => x.v), ...keys.map((x) => x.v)];
    const result = await client.query(
      `UPDATE ${table} SET ${set.map((x, i) => `${ident(x.c.name)} = $${i + 1}`).join(", ")} WHERE ${keys.map((x, i) => `${ident(x.c.name)} = $${set.length + i + 1}`).join(" AND ")}`,
      params,
    );
    if (result.rowCount !== 1) throw new TenantctlError(`the stream updated a row of ${name} that the target does not hold (${keys.map((x) => `${x.c.name}=${x.v}`).join(", ")}): the sides diverged; run tenantctl verify`, 4);
    return;
  }
  const result = await client.query(`DELETE FROM ${table} WHERE ${keys.map((x, i) => `${ident(x.c.name)} = $${i + 1}`).join(" AND ")}`, keys.map((x) => x.v));
  if (result.rowCount !== 1) throw new TenantctlError(`the stream deleted a row of ${name} that the target does not hold (${keys.map((x) => `${x.c.name}=${x.v}`).join(", ")}): the sides diverged; run tenantctl verify`, 4);
}

export interface DrainResult {
  readonly transactions: number;
  readonly changes: number;
}

/**
 * One tenant's stream: reads whole source transactions from the slot and applies each exactly once to the target.
 * `skipUpTo`: transactions ending at or before it are acknowledged without being applied (the reverse stream's
 * slot, created before the cutover, also saw the forward stream's own writes).
 */
export class TenantStream {
  private readonly decoder = new PgoutputDecoder();
  private readonly tables: ReadonlyMap<string, TenantTable>;
  private applied: string | null | undefined;

  constructor(
    readonly source: Db,
    readonly target: Db,
    readonly slot: string,
    readonly publication: string,
    tables: readonly TenantTable[],
    private readonly skipUpTo: string | null = null,
    private readonly batchChanges = 2000,
  ) {
    this.tables = new Map(tables.map((t) => [t.name, t]));
  }

  /** The end LSN of the last source transaction the target committed, from the target itself. */
  private async appliedLsn(): Promise<string | null> {
    if (this.applied === undefined) {
      const { rows } = await this.target.pool.query<{ lsn: string }>("SELECT lsn::text FROM platform.tenant_move_progress WHERE slot = $1", [this.slot]);
      this.applied = rows[0]?.lsn ?? null;
    }
    return this.applied;
  }

  /**
   * Applies everything committed in the source before `upto` (default: what the source has flushed now), in batches.
   * Returns what was applied. After it, the slot has acknowledged everything before `upto`.
   */
  async drain(upto?: string): Promise<DrainResult> {
    let transactions = 0;
    let changes = 0;
    const until = upto ?? (await this.source.pool.query<{ lsn: string }>("SELECT pg_current_wal_flush_lsn()::text AS lsn")).rows[0]!.lsn;
    // Decoding reads only flushed WAL and stops there without a word: wait until `until` is flushed, or a commit
    // acknowledged before it (synchronous_commit = off) would be missed.
    for (let waited = 0; ; waited += 10) {
      const { rows } = await this.source.pool.query<{ flushed: boolean }>("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS flushed", [until]);
      if (rows[0]!.flushed) break;
      if (waited > 30_000) throw new TenantctlError(`${this.source.name} has not flushed its WAL to ${until} within 30 s`, 4);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (;;) {
      const { rows } = await this.source.pool.query<{ data: Buffer }>(
        "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3, 'proto_version', '1', 'publication_names', $4)",
        [this.slot, until, this.batchChanges, this.publication],
      );
      const batch: DecodedTransaction[] = [];
      for (const row of rows) {
        const txn = this.decoder.message(row.data);
        if (txn) batch.push(txn);
      }
      const applied = await this.appliedLsn();
      const skip = [applied, this.skipUpTo].filter((l): l is string => l !== null).map(lsnValue);
      const floor = skip.length ? Math.max(...skip) : -1;
      const todo = batch.filter((t) => lsnValue(t.endLsn) > floor && t.changes.length > 0);
      const last = batch.at(-1)?.endLsn;
      if (todo.length > 0) {
        const client = await this.target.pool.connect();
        try {
          await client.query("BEGIN");
          for (const txn of todo) for (const change of txn.changes) await applyChange(client, change, this.tables);
          const position = todo.at(-1)!.endLsn;
          await client.query(
            `INSERT INTO platform.tenant_move_progress (slot, lsn) VALUES ($1, $2::pg_lsn)
             ON CONFLICT (slot) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = EXCLUDED.updated_at`,
            [this.slot, position],
          );
          await client.query("COMMIT");
          this.applied = position;
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          throw error;
        } finally {
          client.release();
        }
        transactions += todo.length;
        changes += todo.reduce((n, t) => n + t.changes.length, 0);
      }
      // The limit is checked after each whole transaction: fewer rows than it means decoding reached `until`.
      const reachedEnd = rows.length < this.batchChanges;
      const acknowledge = reachedEnd ? until : last;
      if (acknowledge) {
        await this.source.pool.query(
          "SELECT pg_replication_slot_advance($1, $2::pg_lsn) FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn",
          [this.slot, acknowledge],
        );
      }
      if (reachedEnd) return { transactions, changes };
    }
  }
}

/**
 * Creates the slot through a replication connection and returns it open, with the snapshot it exported: reading in
 * that snapshot sees exactly what the slot will not stream. The snapshot lives while the connection stays idle.
 */
export async function createSlotWithSnapshot(db: Db, slot: string): Promise<{ consistentLsn: string; snapshot: string; close(): Promise<void> }> {
  const replication = await db.client({ replication: true });
  try {
    const { rows } = await replication.query<{ consistent_point: string; snapshot_name: string }>(`CREATE_REPLICATION_SLOT ${ident(slot)} LOGICAL pgoutput (SNAPSHOT 'export')`);
    return { consistentLsn: rows[0]!.consistent_point, snapshot: rows[0]!.snapshot_name, close: () => replication.end().catch(() => {}) };
  } catch (error) {
    await replication.end().catch(() => {});
    const message = (error as Error).message;
    if (/permission|must be superuser or replication/i.test(message)) {
      throw new TenantctlError(`${db.name}: creating a replication slot needs the REPLICATION attribute on tenantctl's role (ALTER ROLE ... REPLICATION): ${message}`, 3);
    }
    throw new TenantctlError(`${db.name}: cannot create replication slot ${slot}: ${message}`, 4);
  }
}

/** A slot with no snapshot (the reverse stream's, created while the tenant is fenced there). */
export async function ensureSlot(db: Db, slot: string): Promise<void> {
  await db.pool.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", [slot]);
}
