/**
 * The pipelined transaction of the pg database (db/postgres.ts) on a real PostgreSQL 15: BEGIN, the SET LOCALs
 * and the first statement leave in one write, the statement runs inside the transaction and under the context,
 * and a failure anywhere leaves a connection that carries nothing into the next transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "node:net";
import pg from "pg";
import { postgresUnavailable, startPostgres, type PostgresServer } from "@platform/testing";
import { createPostgresDatabase } from "../src/db/postgres.js";

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping pipelined transaction tests: ${unavailable}`);

const TENANT = "0b7c3a52-6f0e-4d4e-9a53-2f1f4a3c9e11";
const OTHER = "5d2e8f61-1c3b-4a7d-8e9f-0a1b2c3d4e5f";

describe.skipIf(unavailable)("pipelined tenant transactions", () => {
  let server: PostgresServer;
  let db: ReturnType<typeof createPostgresDatabase>;

  beforeAll(async () => {
    server = await startPostgres();
    // Every tenant transaction enters its tenant first (migration 0012): the transport is what is tested here, so a
    // stand-in that sets the tenant and admits every one.
    const setup = new pg.Client({ connectionString: server.url });
    await setup.connect();
    await setup.query("CREATE SCHEMA platform; CREATE FUNCTION platform.enter_tenant(t uuid) RETURNS void LANGUAGE plpgsql AS 'BEGIN PERFORM set_config(''app.tenant_id'', t::text, true); END'");
    await setup.end();
    // One connection: every transaction below runs on the same session, so any leak would show.
    db = createPostgresDatabase({ url: server.url, poolSize: 1 });
    // The pool asks once whether the server is a Citus coordinator (db/postgres.ts): ask now, so that the writes
    // counted below are the transaction's own.
    await db.transaction({ tenantId: TENANT }, async () => {});
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    server?.stop();
  });

  type WriteFn = (this: Socket, ...args: unknown[]) => unknown;
  /** Counts the writes the pool's one connection makes while `run` runs. */
  async function writesDuring(run: () => Promise<unknown>): Promise<number> {
    const client = await db.pool.connect();
    const stream = (client as unknown as { connection: { stream: Socket & { _write: WriteFn; _writev: WriteFn } } }).connection.stream;
    client.release();
    const { _write, _writev } = stream;
    let writes = 0;
    stream._write = function (this: Socket, ...args: unknown[]) {
      writes++;
      return _write.apply(this, args);
    };
    stream._writev = function (this: Socket, ...args: unknown[]) {
      writes++;
      return _writev.apply(this, args);
    };
    try {
      await run();
    } finally {
      stream._write = _write;
      stream._writev = _writev;
    }
    return writes;
  }

  it("sends BEGIN, the tenant's context and the first statement in one write, COMMIT in a second", async () => {
    let seen: unknown;
    const writes = await writesDuring(() =>
      db.transaction({ tenantId: TENANT }, async (tx) => {
        seen = (await tx.query("SELECT current_setting('app.tenant_id') AS tenant")).rows[0];
      }),
    );
    // SET LOCAL outside a transaction block does nothing: the value being there means BEGIN ran before it.
    expect(seen).toEqual({ tenant: TENANT });
    expect(writes).toBe(2);
  });

  it("runs every statement of the work in the same transaction and context, and commits", async () => {
    await db.transaction({}, async (tx) => {
      await tx.query("CREATE TABLE IF NOT EXISTS probe (tenant text, txid bigint)");
    });
    const txids = await db.transaction({ tenantId: OTHER }, async (tx) => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { rows } = await tx.query<{ txid: string }>("INSERT INTO probe SELECT current_setting('app.tenant_id'), txid_current() RETURNING txid");
        ids.push(rows[0]!.txid);
      }
      return ids;
    });
    expect(new Set(txids).size).toBe(1);
    const { rows } = await db.pool.query("SELECT DISTINCT tenant FROM probe");
    expect(rows).toEqual([{ tenant: OTHER }]);
  });

  it("reports the failing statement's error, rolls back, and the next transaction starts clean", async () => {
    await expect(
      db.transaction({ tenantId: TENANT }, async (tx) => {
        await tx.query("INSERT INTO probe VALUES ('should not stay', 0)");
        await tx.query("SELECT 1/0");
      }),
    ).rejects.toThrow(/division by zero/);
    const after = await db.transaction({}, async (tx) => {
      const { rows } = await tx.query("SELECT current_setting('app.tenant_id', true) AS tenant, (SELECT count(*)::int FROM probe WHERE txid = 0) AS kept");
      return rows[0];
    });
    expect(after).toEqual({ tenant: "", kept: 0 });
  });

  it("a failing first statement (sent in the same write as BEGIN) still rolls back", async () => {
    await expect(db.transaction({ tenantId: TENANT }, (tx) => tx.query("SELECT * FROM no_such_table"))).rejects.toThrow(/no_such_table/);
    const status = await db.transaction({ tenantId: OTHER }, async (tx) => (await tx.query("SELECT current_setting('app.tenant_id') AS tenant")).rows[0]);
    expect(status).toEqual({ tenant: OTHER });
  });

  it("a work that sends nothing still commits (the held writes are flushed)", async () => {
    await expect(db.transaction({ tenantId: TENANT }, async () => "nothing sent")).resolves.toBe("nothing sent");
    const { rows } = await db.pool.query("SELECT 1 AS ok");
    expect(rows).toEqual([{ ok: 1 }]);
  });

  it("a work that waits before its first statement is not held up by the cork", async () => {
    const result = await db.transaction({ tenantId: TENANT }, async (tx) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return (await tx.query("SELECT current_setting('app.tenant_id') AS tenant")).rows[0];
    });
    expect(result).toEqual({ tenant: TENANT });
  });
});
