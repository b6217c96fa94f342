import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

if (unavailable) console.warn(`skipping tenant isolation tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("tenant isolation on PostgreSQL 15", () => {
  let stack: Stack;
  let a: TenantFixture;
  let b: TenantFixture;
  let snapshot: () => Promise<string>;
  /** snapshot() and tenant B's rows of more tables, each as the superuser reads them, ordered by the column given. */
  const snapshotWith = async (...tables: [table: string, orderBy: string][]): Promise<string> => {
    const rows: Record<string, unknown> = {};
    for (const [table, orderBy] of tables) {
      rows[table] = (await stack.admin.query(`SELECT json_agg(t ORDER BY ${orderBy}) AS rows FROM platform.${table} t WHERE tenant_id = $1`, [b.id])).rows[0].rows;
    }
    return JSON.stringify(rows) + (await snapshot());
  };

  beforeAll(async () => {
    stack = await startStack();
    const platform = await token({ scope: "platform:admin" });
    a = await createTenant(stack, "alpha", platform);
    b = await createTenant(stack, "bravo", platform);
    // Everything a request could change, read as the superuser (no RLS): tenant B's state must never move.
    snapshot = async () =>
      JSON.stringify(
        (
          await stack.admin.query(
            `SELECT (SELECT json_agg(u ORDER BY id) FROM platform.users u WHERE tenant_id = $1) AS users,
                    (SELECT json_agg(i ORDER BY id) FROM platform.items i WHERE tenant_id = $1) AS items,
                    (SELECT count(*) FROM platform.audit_log WHERE tenant_id = $1) AS audit,
                    (SELECT row_to_json(t) FROM platform.tenants t WHERE id = $1) AS tenant`,
            [b.id],
          )
        ).rows[0],
      );
  }, 120_000);
  afterAll(async () => stack?.close());

  // Every tenant-scoped route and verb, with B's objects.
  const routes = () => [
    { method: "GET", path: "" },
    { method: "PATCH", path: "", payload: { name: "pwned" } },
    { method: "PATCH", path: "", payload: { requestsPerMinute: 1, concurrentRequests: 1, plan: "free" } },
    { method: "PATCH", path: "", payload: { maxUsers: null } },
    { method: "GET", path: "/users" },
    { method: "POST", path: "/users", payload: { email: "intruder@alpha.test" } },
    { method: "GET", path: `/users/${b.userId}` },
    { method: "PATCH", path: `/users/${b.userId}`, payload: { displayName: "pwned" } },
    { method: "DELETE", path: `/users/${b.userId}` },
    { method: "GET", path: "/items" },
    { method: "POST", path: "/items", payload: { ownerId: b.userId, title: "planted" } },
    { method: "GET", path: `/items/${b.itemId}` },
    { method: "PATCH", path: `/items/${b.itemId}`, payload: { title: "pwned" } },
    { method: "DELETE", path: `/items/${b.itemId}` },
    { method: "GET", path: "/audit-log" },
    { method: "GET", path: "/usage" },
  ];

  it.each(["id", "code"] as const)("refuses tenant A's token on tenant B's objects named by path (%s) for every route and verb", async (by) => {
    const before = await snapshot();
    for (const route of routes()) {
      const ref = by === "id" ? b.id : b.code;
      const res = await stack.request({ method: route.method as "GET", url: `/v1/tenants/${ref}${route.path}`, token: a.admin, payload: route.payload });
      expect(res.statusCode, `${route.method} ${route.path}: ${res.body}`).toBe(403);
      expect(res.body).not.toContain(b.itemId);
    }
    expect(await snapshot()).toBe(before);
  });

  it.each([
    ["X-Tenant-ID header (id)", () => ({ "x-tenant-id": b.id })],
    ["X-Tenant-ID header (code)", () => ({ "x-tenant-id": b.code })],
    ["subdomain", () => ({ host: `${b.code}.app.test` })],
  ])("refuses tenant A's token on tenant B named by the %s for every route and verb", async (_label, headers) => {
    const before = await snapshot();
    for (const route of routes().filter((r) => r.path !== "")) {
      const res = await stack.request({ method: route.method as "GET", url: `/v1${route.path}`, token: a.admin, headers: headers(), payload: route.payload });
      expect(res.statusCode, `${route.method} ${route.path}: ${res.body}`).toBe(403);
    }
    expect(await snapshot()).toBe(before);
  });

  it("refuses tenant A's token on the list of tenants however it names B (query, header, subdomain, body): nothing read", async () => {
    const before = await snapshot();
    for (const [query, headers] of [
      ["", {}],
      [`?q=${b.code}`, {}],
      [`?q=${b.code}`, { "x-tenant-id": b.id }],
      ["", { "x-tenant-id": b.code }],
      ["", { host: `${b.code}.app.test` }],
    ] as const) {
      for (const t of [a.admin, a.member]) {
        const res = await stack.request({ method: "GET", url: `/v1/tenants${query}`, token: t, headers });
        expect(res.statusCode, `${query} ${JSON.stringify(headers)}: ${res.body}`).toBe(403);
        expect(res.body).not.toContain(b.id);
        expect(res.body).not.toContain(`"${b.code}"`);
      }
    }
    // A body is no way in either: the list takes none, and creating a tenant is the platform's.
    const res = await stack.request({ method: "POST", url: "/v1/tenants", token: a.admin, payload: { code: "bravo-2", name: "B", tenant_id: b.id } });
    expect(res.statusCode).toBe(403);
    expect(await snapshot()).toBe(before);
  });

  it("keeps one tenant's limits its own: A spending its requests a minute and its places in flight leaves B's untouched", async () => {
    const platform = await token({ scope: "platform:admin" });
    const limited = await stack.request({ method: "PATCH", url: `/v1/tenants/${a.id}`, token: platform, payload: { requestsPerMinute: 2 } });
    expect(limited.statusCode).toBe(200);
    const statuses = await Promise.all(Array.from({ length: 6 }, () => stack.request({ method: "GET", url: "/v1/items", token: a.member })));
    expect(statuses.every((r) => r.statusCode === 429)).toBe(true);
    const own = await stack.request({ method: "GET", url: "/v1/items", token: b.member });
    expect(own.statusCode).toBe(200);
    expect(own.headers["ratelimit-limit"]).toBe("600");
    await stack.request({ method: "PATCH", url: `/v1/tenants/${a.id}`, token: platform, payload: { requestsPerMinute: null } });
  });

  it("refuses tenant A's token to erase B, cancel B's erasure or read its record, however B is named: nothing changes", async () => {
    const erasures = async () => JSON.stringify((await stack.admin.query("SELECT * FROM platform.tenant_erasures WHERE tenant_id = $1", [b.id])).rows);
    const before = await snapshot();
    const recordsBefore = await erasures();
    for (const t of [a.admin, a.member]) {
      for (const ref of [b.id, b.code]) {
        for (const [method, path] of [["DELETE", ""], ["POST", "/erasure/cancel"]] as const) {
          const res = await stack.request({ method, url: `/v1/tenants/${ref}${path}`, token: t });
          expect(res.statusCode, `${method} ${ref}${path}: ${res.body}`).toBe(403);
        }
      }
      // A's own path with B named by the header or the subdomain: every reference must be the token's tenant.
      for (const headers of [{ "x-tenant-id": b.id }, { "x-tenant-id": b.code }, { host: `${b.code}.app.test` }]) {
        for (const [method, path] of [["DELETE", ""], ["POST", "/erasure/cancel"]] as const) {
          const res = await stack.request({ method, url: `/v1/tenants/${a.id}${path}`, token: t, headers });
          expect(res.statusCode, `${method} ${path} ${JSON.stringify(headers)}: ${res.body}`).toBe(403);
        }
      }
      const record = await stack.request({ method: "GET", url: `/v1/erasures/${b.id}`, token: t });
      expect(record.statusCode).toBe(403);
      // Nor its own tenant: erasure is the platform's.
      expect((await stack.request({ method: "DELETE", url: `/v1/tenants/${a.id}`, token: t })).statusCode).toBe(403);
    }
    expect(await snapshot()).toBe(before);
    expect(await erasures()).toBe(recordsBefore);
    expect((await stack.admin.query("SELECT status FROM platform.tenants WHERE id = $1", [a.id])).rows[0].status).toBe("active");
  });

  it("refuses tenant A's token on B's exports and imports by path, header, subdomain and body: nothing read, nothing changed", async () => {
    const { rows } = await stack.admin.query(
      `INSERT INTO platform.exports (tenant_id, requested_by, store, status, finished_at, expires_at, tables)
       VALUES ($1, 'bravo-admin', 'local', 'done', now(), now() + interval '1 day', '{"users": {"rows": 1, "bytes": 10, "key": "x"}}') RETURNING id`,
      [b.id],
    );
    const exportId = rows[0].id as string;
    const state = () => snapshotWith(["exports", "id"], ["import_rows", "kind, import_key"]);
    const before = await state();
    const line = JSON.stringify({ type: "user", key: "intruder", email: "intruder@bravo.test", tenantId: b.id, tenant_id: b.id }) + "\n";
    const calls = [
      { method: "POST", path: "/exports" },
      { method: "GET", path: "/exports" },
      { method: "GET", path: "/exports?limit=100" },
      { method: "GET", path: `/exports/${exportId}` },
      { method: "GET", path: `/exports/${exportId}/tables/users` },
      { method: "POST", path: "/imports", payload: line, headers: { "content-type": "application/x-ndjson" } },
      { method: "POST", path: "/imports", payload: "type,key,email\nuser,intruder,intruder@bravo.test\n", headers: { "content-type": "text/csv" } },
    ] as const;
    for (const t of [a.admin, a.member]) {
      for (const call of calls) {
        const ways = [
          { url: `/v1/tenants/${b.id}${call.path}`, headers: {} },
          { url: `/v1/tenants/${b.code}${call.path}`, headers: {} },
          { url: `/v1${call.path}`, headers: { "x-tenant-id": b.id } },
          { url: `/v1${call.path}`, headers: { "x-tenant-id": b.code } },
          { url: `/v1${call.path}`, headers: { host: `${b.code}.app.test` } },
        ];
        for (const way of ways) {
          const res = await stack.request({ method: call.method, url: way.url, token: t, payload: "payload" in call ? call.payload : undefined, headers: { ...("headers" in call ? call.headers : {}), ...way.headers } });
          expect(res.statusCode, `${call.method} ${way.url} ${JSON.stringify(way.headers)}: ${res.body}`).toBe(403);
          expect(res.body).not.toContain(exportId);
        }
      }
    }
    // By body: a tenant id in the rows is no way in; the row lands in A, under A's key space.
    const own = await stack.request({ method: "POST", url: "/v1/imports", token: a.admin, payload: line, headers: { "content-type": "application/x-ndjson" } });
    expect(own.statusCode, own.body).toBe(200);
    expect((await stack.admin.query("SELECT tenant_id FROM platform.users WHERE email = 'intruder@bravo.test'")).rows).toEqual([{ tenant_id: a.id }]);
    // A's own path cannot name B's export id: scoped by the tenant predicate and RLS, it is not found.
    expect((await stack.request({ method: "GET", url: `/v1/exports/${exportId}`, token: a.admin })).statusCode).toBe(404);
    // Nor does A's own list of exports hold it.
    const list = await stack.request({ method: "GET", url: "/v1/exports?limit=100", token: a.admin });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.body).not.toContain(exportId);
    expect(await state()).toBe(before);
  });

  it("refuses a path naming A when a header names B (every reference must be the token's tenant)", async () => {
    const res = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/items`, token: a.member, headers: { "x-tenant-id": b.id } });
    expect(res.statusCode).toBe(403);
  });

  it("ignores a tenant_id in the body: the row lands in the token's tenant", async () => {
    const before = await snapshot();
    const res = await stack.request({ method: "POST", url: "/v1/items", token: a.member, payload: { ownerId: a.userId, title: "mine", tenant_id: b.id, tenantId: b.id } });
    expect(res.statusCode, res.body).toBe(201);
    const row = await stack.admin.query("SELECT tenant_id FROM platform.items WHERE id = $1", [res.json().id]);
    expect(row.rows[0].tenant_id).toBe(a.id);
    expect(await snapshot()).toBe(before);
  });

  it("cannot reach B's objects through A's own routes either (ids are scoped by the tenant predicate and RLS)", async () => {
    for (const url of [`/v1/items/${b.itemId}`, `/v1/users/${b.userId}`]) {
      expect((await stack.request({ method: "GET", url, token: a.admin })).statusCode).toBe(404);
      expect((await stack.request({ method: "DELETE", url, token: a.admin })).statusCode).toBe(404);
    }
    const res = await stack.request({ method: "POST", url: "/v1/items", token: a.member, payload: { ownerId: b.userId, title: "borrowed owner" } });
    expect(res.statusCode).toBe(400);
  });

  it("lets a platform admin act on any tenant, by path, header or subdomain", async () => {
    const platform = await token({ scope: "platform:admin" });
    for (const [url, headers] of [
      [`/v1/tenants/${b.code}/items/${b.itemId}`, {}],
      [`/v1/items/${b.itemId}`, { "x-tenant-id": b.id }],
      [`/v1/items/${b.itemId}`, { host: `${b.code}.app.test` }],
    ] as const) {
      expect((await stack.request({ method: "GET", url, token: platform, headers })).statusCode).toBe(200);
    }
    const conflicting = await stack.request({ method: "GET", url: `/v1/tenants/${a.id}/items`, token: platform, headers: { "x-tenant-id": b.id } });
    expect(conflicting.statusCode).toBe(400);
    expect(conflicting.json().error.code).toBe("conflicting_tenant_references");
  });

  it("without a tenant context the service role sees no rows at all", async () => {
    const { Client } = await import("pg");
    const client = new Client({ connectionString: stack.pg.urlFor("platform_app", "app") });
    await client.connect();
    try {
      for (const table of ["tenants", "users", "items", "audit_log", "tenant_metrics", "tenant_erasures", "exports", "import_rows"]) {
        expect((await client.query(`SELECT count(*)::int AS n FROM platform.${table}`)).rows[0].n, table).toBe(0);
      }
    } finally {
      await client.end();
    }
  });

  it("never leaks a tenant context between requests on one pooled connection, including after errors", async () => {
    const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 1 });
    const app = await buildApp({ config: stack.config, db });
    try {
      const req = (t: string, url: string, payload?: unknown) =>
        app.inject({ method: payload ? "POST" : "GET", url, headers: { authorization: `Bearer ${t}` }, payload: payload as object });
      const listA = await req(a.member, "/v1/items");
      expect(listA.json().data.every((i: { ownerId: string }) => i.ownerId === a.userId)).toBe(true);
      // Errors in between: a validation failure, a database error (foreign owner), a 403, a unique violation.
      expect((await req(a.member, "/v1/items", { title: "" })).statusCode).toBe(400);
      expect((await req(a.member, "/v1/items", { ownerId: b.userId, title: "x" })).statusCode).toBe(400);
      expect((await req(a.member, `/v1/tenants/${b.id}/items`)).statusCode).toBe(403);
      expect((await req(a.admin, "/v1/users", { email: "owner@alpha.test" })).statusCode).toBe(409);
      const listB = await req(b.member, "/v1/items");
      expect(listB.statusCode).toBe(200);
      const ids = listB.json().data.map((i: { id: string }) => i.id);
      expect(ids).toContain(b.itemId);
      const owners = new Set(listB.json().data.map((i: { ownerId: string }) => i.ownerId));
      expect([...owners]).toEqual([b.userId]);
      // And the one connection, between requests, carries no tenant.
      const client = await db.pool.connect();
      try {
        expect((await client.query("SELECT current_setting('app.tenant_id', true) AS t")).rows[0].t ?? "").toBe("");
      } finally {
        client.release();
      }
    } finally {
      await app.close();
      await db.close();
    }
  });

  it("refuses tenant A's token on B's webhooks and their deliveries by path, header, subdomain and body: nothing read, nothing changed", async () => {
    // A public address written as one: subscribing resolves nothing, and no worker runs here to send anything.
    const created = await stack.request({ method: "POST", url: `/v1/tenants/${b.id}/webhooks`, token: b.admin, payload: { url: "https://93.184.215.14/bravo", events: ["item.created"] } });
    expect(created.statusCode, created.body).toBe(201);
    const { id: hookId, secret } = created.json() as { id: string; secret: string };
    // By body: naming B there is no way in; the webhook is A's.
    const own = await stack.request({ method: "POST", url: "/v1/webhooks", token: a.admin, payload: { url: "https://93.184.215.14/alpha", events: ["item.created"], tenant_id: b.id, tenantId: b.id } });
    expect(own.statusCode, own.body).toBe(201);
    expect((await stack.admin.query("SELECT tenant_id FROM platform.webhooks WHERE id = $1", [own.json().id])).rows).toEqual([{ tenant_id: a.id }]);
    // B's event: a delivery in B's log, none in A's.
    expect((await stack.request({ method: "POST", url: "/v1/items", token: b.member, payload: { ownerId: b.userId, title: "hooked" } })).statusCode).toBe(201);
    const state = () => snapshotWith(["webhooks", "id"], ["webhook_deliveries", "id"]);
    const before = await state();
    expect(before).toContain('"event_type":"item.created"');
    const calls = [
      { method: "GET", path: "/webhooks" },
      { method: "POST", path: "/webhooks", payload: { url: "https://93.184.215.14/planted", events: ["item.created"] } },
      { method: "GET", path: `/webhooks/${hookId}` },
      { method: "DELETE", path: `/webhooks/${hookId}` },
      { method: "GET", path: `/webhooks/${hookId}/deliveries` },
    ] as const;
    for (const t of [a.admin, a.member]) {
      for (const call of calls) {
        for (const way of [
          { url: `/v1/tenants/${b.id}${call.path}`, headers: {} },
          { url: `/v1/tenants/${b.code}${call.path}`, headers: {} },
          { url: `/v1${call.path}`, headers: { "x-tenant-id": b.id } },
          { url: `/v1${call.path}`, headers: { "x-tenant-id": b.code } },
          { url: `/v1${call.path}`, headers: { host: `${b.code}.app.test` } },
        ]) {
          const res = await stack.request({ method: call.method, url: way.url, token: t, headers: way.headers, payload: "payload" in call ? call.payload : undefined });
          expect(res.statusCode, `${call.method} ${way.url} ${JSON.stringify(way.headers)}: ${res.body}`).toBe(403);
          expect(res.body).not.toContain(hookId);
          expect(res.body).not.toContain(secret);
        }
      }
    }
    // A's own routes cannot name B's webhook either (the tenant predicate and RLS): not found.
    for (const [method, url] of [["GET", `/v1/webhooks/${hookId}`], ["DELETE", `/v1/webhooks/${hookId}`], ["GET", `/v1/webhooks/${hookId}/deliveries`]] as const) {
      expect((await stack.request({ method, url, token: a.admin })).statusCode, `${method} ${url}`).toBe(404);
    }
    const mine = await stack.request({ method: "GET", url: `/v1/webhooks/${own.json().id}/deliveries`, token: a.admin });
    expect(mine.json().data).toEqual([]);
    expect(await state()).toBe(before);
    // Without a tenant context the service role sees neither table's rows.
    const { Client } = await import("pg");
    const client = new Client({ connectionString: stack.pg.urlFor("platform_app", "app") });
    await client.connect();
    try {
      for (const table of ["webhooks", "webhook_deliveries"]) expect((await client.query(`SELECT count(*)::int AS n FROM platform.${table}`)).rows[0].n, table).toBe(0);
    } finally {
      await client.end();
    }
    await stack.request({ method: "DELETE", url: `/v1/webhooks/${own.json().id}`, token: a.admin });
  });
});
