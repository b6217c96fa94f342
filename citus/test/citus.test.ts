/**
 * Runs against a real Citus 13 cluster when CITUS_URL points at its coordinator (superuser, workers already added).
 * The suite drops and recreates the `platform` schema in that database, and refuses to when it holds tenants whose
 * code does not start with "test-": point it at a throwaway cluster.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareCitusDatabase } from "../src/testing.js";

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping Citus tests: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

const A = "0a0a0a0a-0000-4000-8000-00000000000a";
const B = "0b0b0b0b-0000-4000-8000-00000000000b";

describe.skipIf(!CITUS_URL)("on a real Citus cluster", () => {
  let admin: pg.Client;
  let app: pg.Client;
  let release: (() => Promise<void>) | undefined;
  const q = async (client: pg.Client, sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: CITUS_URL });
    await admin.connect();
    const prepared = await prepareCitusDatabase(CITUS_URL!);
    release = prepared.release;
    const appUrl = prepared.appUrl;
    app = new pg.Client({ connectionString: appUrl });
    await app.connect();
    await app.query("BEGIN");
    await app.query("SET LOCAL app.platform_admin = 'on'");
    await app.query("INSERT INTO platform.tenants (id, code, name) VALUES ($1, 'test-a', 'A'), ($2, 'test-b', 'B')", [A, B]);
    await app.query("COMMIT");
    for (const [tenant, n] of [[A, 3], [B, 2]] as const) {
      await app.query("BEGIN");
      await app.query(`SET LOCAL app.tenant_id = '${tenant}'`);
      for (let i = 0; i < n; i++) await app.query("INSERT INTO platform.users (tenant_id, email) VALUES ($1, $2)", [tenant, `u${i}@${tenant}.test`]);
      await app.query("COMMIT");
    }
  }, 120_000);

  afterAll(async () => {
    await app?.end();
    await admin?.end();
    await release?.();
  });

  it("makes tenants a reference table and every tenant table distributed by tenant_id in one colocation group", async () => {
    const rows = await q(
      admin,
      `SELECT logicalrelid::text AS t, partmethod, column_to_column_name(logicalrelid, partkey) AS col, colocationid
         FROM pg_dist_partition WHERE logicalrelid::text IN ('platform.tenants','platform.users','platform.items','platform.audit_log','platform.tenant_metrics','platform.exports','platform.import_rows')`,
    );
    const by = Object.fromEntries(rows.map((r) => [r.t, r]));
    expect(by["platform.tenants"].partmethod).toBe("n");
    // exports and import_rows (0016): an export record and a tenant's import keys on its shard group, beside its rows.
    const distributed = ["platform.users", "platform.items", "platform.audit_log", "platform.tenant_metrics", "platform.exports", "platform.import_rows"].map((t) => by[t]);
    for (const d of distributed) expect(d).toMatchObject({ partmethod: "h", col: "tenant_id" });
    expect(new Set(distributed.map((d) => d.colocationid)).size).toBe(1);
  });

  it("routes a query that names the tenant to one shard", async () => {
    await app.query("BEGIN");
    await app.query(`SET LOCAL app.tenant_id = '${A}'`);
    const plan = (await q(app, "EXPLAIN SELECT * FROM platform.users WHERE tenant_id = $1", [A])).map((r) => r["QUERY PLAN"]).join("\n");
    await app.query("COMMIT");
    expect(plan).toMatch(/Task Count: 1/);
  });

  describe("row-level security with SET LOCAL sent as its own statement", () => {
    const inTenant = async <T>(tenant: string, run: () => Promise<T>): Promise<T> => {
      await app.query("BEGIN");
      try {
        await app.query(`SET LOCAL app.tenant_id = '${tenant}'`);
        return await run();
      } finally {
        await app.query("ROLLBACK");
      }
    };

    it("router query: the own tenant's rows, none of another's", async () => {
      expect(await inTenant(A, async () => (await q(app, "SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [A]))[0].n)).toBe(3);
      expect(await inTenant(A, async () => (await q(app, "SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [B]))[0].n)).toBe(0);
    });

    it("multi-shard query: only the own tenant's rows", async () => {
      expect(await inTenant(B, async () => (await q(app, "SELECT count(*)::int AS n FROM platform.users"))[0].n)).toBe(2);
    });

    it("writes into another tenant are refused on the worker (WITH CHECK)", async () => {
      await expect(inTenant(A, () => q(app, "INSERT INTO platform.users (tenant_id, email) VALUES ($1, 'x@b.test')", [B]))).rejects.toThrow(/row-level security/);
      await expect(inTenant(A, () => q(app, "UPDATE platform.users SET tenant_id = $1 WHERE tenant_id = $2", [B, A]))).rejects.toThrow();
    });

    it("no context: nothing, for router and multi-shard queries, and nothing left over after a transaction", async () => {
      expect((await q(app, "SELECT count(*)::int AS n FROM platform.users"))[0].n).toBe(0);
      expect((await q(app, "SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [A]))[0].n).toBe(0);
    });
  });

  describe("why the service does it this way", () => {
    it("set_config() is not propagated: a router query on the worker sees no tenant", async () => {
      await app.query("BEGIN");
      try {
        await app.query("SELECT set_config('app.tenant_id', $1, true)", [A]);
        expect((await q(app, "SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [A]))[0].n).toBe(0);
      } finally {
        await app.query("ROLLBACK");
      }
    });

    it("SET LOCAL in a multi-statement string does not reach the workers intact", async () => {
      await app.query("BEGIN");
      try {
        const outcome = await app.query(`SET LOCAL app.tenant_id = '${A}'; SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = '${A}'`).then(
          (r) => ({ ok: true as const, n: (r as unknown as pg.QueryResult[])[1]?.rows[0]?.n as number }),
          (e: Error) => ({ ok: false as const, error: e.message }),
        );
        // Either the workers reject the forwarded string, or they do not see the setting; never the tenant's rows.
        if (outcome.ok) expect(outcome.n).toBe(0);
        else expect(outcome.error).toMatch(/multiple commands|cannot/);
      } finally {
        await app.query("ROLLBACK");
      }
    });
  });
});
