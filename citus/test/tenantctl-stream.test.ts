/**
 * A tenant's stream dropped while every tenant writes, on a real PostgreSQL 15: PostgreSQL reads a table's
 * publications as a list and then each publication in it, so a publication dropped between the two fails the
 * statement of whichever session was writing to that table, any tenant's, with XX000 "cache lookup failed for
 * publication" (the fresh-clone CI of 2f08547 lost a write of the 100-tenant wave to it). tenantctl empties the
 * publication first and drops it a moment later (stream.ts, dropStream).
 *
 * And the streams of concurrent moves (`--concurrency`) created and dropped on one database at once: CREATE
 * PUBLICATION and ALTER PUBLICATION ... DROP TABLE lock the tables one by one in the order they are named, so they
 * must name them in one order (publicationOrder); in two (the copy's parents-first and the catalog's) they
 * deadlocked, 2 tenants of the fresh-clone CI's wave of 9f29343.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { postgresUnavailable, startPostgres, waitFor } from "@platform/testing";
import { type TenantTable, tenantTables } from "../src/tenantctl/catalog.js";
import type { Db } from "../src/tenantctl/context.js";
import { createPublicationSql, dropStream, streamNames } from "../src/tenantctl/stream.js";

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the stream drop under writes: ${unavailable}`);

const CYCLES = 100;
const WRITERS = 6;
/** Concurrent moves' streams, as `tenantctl move --batch --concurrency 4`, and the cycles each makes. */
const LANES = 4;
const LANE_CYCLES = 60;

/**
 * `WRITERS` clients each running `transaction` (BEGIN and COMMIT around it here) back to back until `work` has run:
 * the writes made, and each failure counted by its code and message (digits as N, so one race counts as one kind).
 * Writing is under way (`warmup` transactions) before `work` starts: the races are a statement of theirs meeting DDL.
 */
async function besideWriters(url: string, transaction: (client: pg.Client) => Promise<void>, warmup: number, work: () => Promise<void>): Promise<{ writes: number; failed: Record<string, number>; ms: number }> {
  let stop = false;
  let writes = 0;
  const failed: Record<string, number> = {};
  const writer = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (let n = 0; !stop && n < 1_000_000; n++) {
        try {
          await client.query("BEGIN");
          await transaction(client);
          await client.query("COMMIT");
          writes++;
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          const key = `${(error as { code?: string }).code} ${(error as Error).message.replace(/\d+/g, "N")}`;
          failed[key] = (failed[key] ?? 0) + 1;
        }
      }
    } finally {
      await client.end();
    }
  };
  const running = Array.from({ length: WRITERS }, writer);
  try {
    await waitFor(`${warmup} writes before the work starts`, () => writes >= warmup, { intervalMs: 10, detail: () => `${writes} writes, failures ${JSON.stringify(failed)}` });
    const started = performance.now();
    await work();
    return { writes, failed, ms: performance.now() - started };
  } finally {
    stop = true;
    await Promise.all(running);
  }
}

describe.skipIf(unavailable)("a tenant's stream dropped while every tenant writes (PostgreSQL 15)", () => {
  it(`fails no write: ${CYCLES} tenants' publications created and dropped beside ${WRITERS} writers on the same table`, async () => {
    const server = await startPostgres({ settings: { wal_level: "logical" } });
    const pool = new pg.Pool({ connectionString: server.url, max: 4 });
    try {
      await pool.query("CREATE TABLE public.items (tenant_id uuid, id uuid, title text, PRIMARY KEY (tenant_id, id))");
      const tables: TenantTable[] = [{ name: "public.items", key: "tenant_id", columns: ["tenant_id", "id", "title"], pk: ["tenant_id", "id"], timestamptz: [] }];
      const db = { name: "home", pool, citus: false } as unknown as Db;
      // Writers as the service writes: an insert and an update per transaction, every tenant on the one table.
      const { writes, failed, ms } = await besideWriters(server.url, async (client) => {
        const [tenant, id] = [randomUUID(), randomUUID()];
        await client.query("INSERT INTO public.items VALUES ($1, $2, 'a')", [tenant, id]);
        await client.query("UPDATE public.items SET title = 'b' WHERE tenant_id = $1 AND id = $2", [tenant, id]);
      }, 500, async () => {
        for (let i = 0; i < CYCLES; i++) {
          const { publication } = streamNames(randomUUID(), "forward");
          await pool.query(createPublicationSql(publication, tables, randomUUID()));
          await dropStream(db, null, publication);
        }
      });
      console.log(`${CYCLES} publications created and dropped in ${(ms / 1000).toFixed(1)} s beside ${WRITERS} writers: ${writes} transactions, failures ${JSON.stringify(failed)}`);
      expect(failed).toEqual({});
      expect(writes).toBeGreaterThan(CYCLES);
      expect((await pool.query("SELECT count(*)::int AS n FROM pg_publication")).rows[0].n).toBe(0);
    } finally {
      await pool.end();
      server.stop();
    }
  }, 120_000);

  it(`deadlocks no move: ${LANES} moves' streams at once, ${LANE_CYCLES} each, over tables whose parents-first order is not their names' order, beside ${WRITERS} writers`, async () => {
    const server = await startPostgres({ settings: { wal_level: "logical" } });
    const pool = new pg.Pool({ connectionString: server.url, max: LANES + 2 });
    try {
      // Parents first puts tenants before the rest and users before items: names in their order put them after.
      await pool.query(`CREATE SCHEMA platform;
        CREATE TABLE platform.tenants (id uuid PRIMARY KEY, code text);
        CREATE TABLE platform.users (tenant_id uuid REFERENCES platform.tenants, id uuid, PRIMARY KEY (tenant_id, id));
        CREATE TABLE platform.items (tenant_id uuid, id uuid, owner_id uuid, PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, owner_id) REFERENCES platform.users);
        CREATE TABLE platform.audit_log (tenant_id uuid, id uuid, at timestamptz DEFAULT now(), PRIMARY KEY (tenant_id, id, at)) PARTITION BY RANGE (at);
        CREATE TABLE platform.audit_log_now PARTITION OF platform.audit_log FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');`);
      const db = { name: "home", pool, citus: false } as unknown as Db;
      // The tables and their order exactly as a move takes them from the catalog.
      const tables = await tenantTables(db, db, true);
      expect(tables.map((t) => t.name)).toEqual(["platform.tenants", "platform.audit_log", "platform.users", "platform.items"]);
      // A lane is one move after another: its forward publication created, and dropped as the switch drops it.
      const laneFailures: Record<string, number> = {};
      const lane = async () => {
        for (let i = 0; i < LANE_CYCLES; i++) {
          const tenant = randomUUID();
          const { publication } = streamNames(tenant, "forward");
          try {
            await pool.query(createPublicationSql(publication, tables, tenant));
            await dropStream(db, null, publication);
          } catch (error) {
            const key = `${(error as { code?: string }).code} ${(error as Error).message}`;
            laneFailures[key] = (laneFailures[key] ?? 0) + 1;
            await dropStream(db, null, publication).catch(() => {});
          }
        }
      };
      const { writes, failed, ms } = await besideWriters(server.url, async (client) => {
        const [tenant, user] = [randomUUID(), randomUUID()];
        await client.query("INSERT INTO platform.tenants VALUES ($1, 'c')", [tenant]);
        await client.query("INSERT INTO platform.users VALUES ($1, $2)", [tenant, user]);
        await client.query("INSERT INTO platform.items VALUES ($1, $2, $3)", [tenant, randomUUID(), user]);
        await client.query("INSERT INTO platform.audit_log (tenant_id, id) VALUES ($1, $2)", [tenant, randomUUID()]);
      }, 200, async () => void (await Promise.all(Array.from({ length: LANES }, lane))));
      console.log(`${LANES} lanes of ${LANE_CYCLES} streams created and dropped in ${(ms / 1000).toFixed(1)} s beside ${WRITERS} writers: ${writes} transactions; lanes failed ${JSON.stringify(laneFailures)}, writers failed ${JSON.stringify(failed)}`);
      expect(laneFailures).toEqual({});
      expect(failed).toEqual({});
      expect((await pool.query("SELECT count(*)::int AS n FROM pg_publication")).rows[0].n).toBe(0);
    } finally {
      await pool.end();
      server.stop();
    }
  }, 180_000);
});
