/**
 * The tenant's row read in the request's own transaction (TenantAccess in src/tenant-scope.ts, inTenant in
 * src/routes/context.ts), on a real PostgreSQL: one transaction per request for a tenant this replica has not cached,
 * and a refusal that still holds when the route's first statement went out before the row was judged.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, Transaction as DbTransaction } from "../src/db/database.js";
import { startStack, token, unavailable, type Stack } from "./harness.js";

if (unavailable) console.warn(`skipping the folded tenant lookup tests: ${unavailable}`);

interface Transaction {
  readonly context: object;
  readonly statements: string[];
}

describe.skipIf(unavailable)("the tenant's row read in the request's transaction", () => {
  let stack: Stack;
  let platform: string;
  const transactions: Transaction[] = [];

  /** Every transaction the service opens, with its statements in the order they were sent. */
  const watch = (db: Database): Database => ({
    ...db,
    transaction(context, work) {
      const seen: Transaction = { context, statements: [] };
      transactions.push(seen);
      return db.transaction(context, (tx) =>
        work({
          ...(tx.tenantRow ? { tenantRow: tx.tenantRow } : {}),
          query(sql: string, params?: readonly unknown[]) {
            seen.statements.push(sql);
            return tx.query(sql, params);
          },
        } as DbTransaction),
      );
    },
  });

  const during = async <T>(work: () => Promise<T>): Promise<{ result: T; opened: Transaction[] }> => {
    const before = transactions.length;
    const result = await work();
    return { result, opened: transactions.slice(before) };
  };

  /** A tenant written as the superuser, so that the service has never seen it. */
  const newTenant = async (status = "active"): Promise<string> => {
    const code = `folded-${randomUUID().slice(0, 8)}`;
    const { rows } = await stack.admin.query<{ id: string }>("INSERT INTO platform.tenants (code, name, status) VALUES ($1, $1, $2) RETURNING id", [code, status]);
    return rows[0]!.id;
  };
  const itemsOf = async (tenant: string) =>
    Number((await stack.admin.query<{ n: string }>("SELECT count(*) AS n FROM platform.items WHERE tenant_id = $1", [tenant])).rows[0]!.n);
  /** The row read by the statement that enters the tenant (TenantContext.readTenant), not by one of its own. */
  const readsTenantRow = (t: Transaction) => (t.context as { readTenant?: boolean }).readTenant === true;
  const ownRowStatement = (t: Transaction) => t.statements.some((sql) => /FROM platform\.tenants WHERE id/.test(sql));

  beforeAll(async () => {
    // A cache as in production, so that a second request can be seen to use it.
    stack = await startStack({ env: { TENANT_CACHE_TTL_MS: "60000" }, database: watch });
    platform = await token({ scope: "platform:admin" });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("opens one transaction for a request naming an uncached tenant, reads the row there, and caches it for the next", async () => {
    const tenant = await newTenant();
    const member = await token({ tenant });
    const first = await during(() => stack.request({ method: "GET", url: `/v1/tenants/${tenant}/items`, token: member }));
    expect(first.result.statusCode, first.result.body).toBe(200);
    expect(first.opened).toHaveLength(1);
    expect(first.opened[0]!.context).toEqual({ tenantId: tenant, readTenant: true });
    expect(readsTenantRow(first.opened[0]!), "the row is read in the request's transaction").toBe(true);
    expect(ownRowStatement(first.opened[0]!), "by the statement that enters the tenant, not one of its own").toBe(false);
    // The row read there is now cached: the next request's transaction holds only the route's statement.
    const second = await during(() => stack.request({ method: "GET", url: `/v1/tenants/${tenant}/items`, token: member }));
    expect(second.result.statusCode).toBe(200);
    expect(second.opened).toHaveLength(1);
    expect(readsTenantRow(second.opened[0]!)).toBe(false);
  });

  it("refuses a suspended tenant it had not cached, and keeps nothing of the write that went out beside the read", async () => {
    const tenant = await newTenant("suspended");
    const member = await token({ tenant });
    const { rows } = await stack.admin.query<{ id: string }>(
      `WITH owner AS (INSERT INTO platform.users (tenant_id, email) VALUES ($1, 'owner@suspended.test') RETURNING id)
       INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, id, 'kept' FROM owner RETURNING id`,
      [tenant],
    );
    const { result, opened } = await during(() => stack.request({ method: "DELETE", url: `/v1/tenants/${tenant}/items/${rows[0]!.id}`, token: member }));
    expect(result.statusCode, result.body).toBe(403);
    expect(result.json().error.code).toBe("tenant_suspended");
    expect(opened).toHaveLength(1);
    expect(opened[0]!.statements.some((sql) => /DELETE FROM platform\.items/.test(sql)), "the delete was sent, pipelined with the read").toBe(true);
    expect(await itemsOf(tenant), "the transaction rolled back").toBe(1);
    // A refusal is not cached as a tenant that may be served: the next request is refused too.
    const again = await stack.request({ method: "GET", url: `/v1/tenants/${tenant}/items`, token: member });
    expect(again.statusCode).toBe(403);
  });

  it("answers 404 to a platform administrator for an id that names no tenant, and writes nothing", async () => {
    const missing = randomUUID();
    const created = await stack.request({ method: "POST", url: `/v1/tenants/${missing}/items`, token: platform, payload: { title: "nowhere", ownerId: randomUUID() } });
    expect(created.statusCode, created.body).toBe(404);
    expect(created.json().error.message).toContain(missing);
    expect(await itemsOf(missing)).toBe(0);
    const read = await stack.request({ method: "GET", url: `/v1/tenants/${missing}`, token: platform });
    expect(read.statusCode).toBe(404);
  });

  it("serves a tenant's own usage and user quota from the row read in the transaction", async () => {
    const tenant = await newTenant();
    await stack.admin.query("UPDATE platform.tenants SET max_users = 1 WHERE id = $1", [tenant]);
    const admin = await token({ tenant, scope: "tenant:admin" });
    const usage = await stack.request({ method: "GET", url: `/v1/tenants/${tenant}/usage`, token: admin });
    expect(usage.statusCode, usage.body).toBe(200);
    expect(usage.json().users.max).toBe(1);
    const fresh = await newTenant();
    await stack.admin.query("UPDATE platform.tenants SET max_users = 1 WHERE id = $1", [fresh]);
    await stack.admin.query("INSERT INTO platform.users (tenant_id, email) VALUES ($1, 'first@fresh.test')", [fresh]);
    const freshAdmin = await token({ tenant: fresh, scope: "tenant:admin" });
    const user = await stack.request({ method: "POST", url: `/v1/tenants/${fresh}/users`, token: freshAdmin, payload: { email: "two@too-many.test" } });
    expect(user.statusCode, user.body).toBe(409);
    expect(user.json().error.code).toBe("user_quota_exceeded");
  });
});
