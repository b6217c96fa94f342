import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { NodeBusy } from "../src/db/node-bulkhead.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

if (unavailable) console.warn(`skipping tenant-service API tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("tenant service API on PostgreSQL 15 and Redis", () => {
  let stack: Stack;
  let platform: string;
  let acme: TenantFixture;

  beforeAll(async () => {
    stack = await startStack();
    platform = await token({ scope: "platform:admin", sub: "ops" });
    acme = await createTenant(stack, "acme", platform, { maxUsers: 5, plan: "starter" });
  }, 120_000);
  afterAll(async () => stack?.close());

  describe("operations", () => {
    it("GET /health answers without a database round trip", async () => {
      const res = await stack.request({ method: "GET", url: "/health" });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: "ok" });
    });
    it("GET /ready checks the database", async () => {
      expect((await stack.request({ method: "GET", url: "/ready" })).json()).toEqual({ status: "ready", database: "postgres" });
    });
    it("GET /metrics exposes request counters by route template, never by tenant id", async () => {
      const res = await stack.request({ method: "GET", url: "/metrics" });
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/http_requests_total\{method="POST",route="\/v1\/tenants\/:tenant\/items",status="201"\} \d+/);
      expect(res.body).not.toContain(acme.id);
      // The names monitoring/src/catalog.ts promises to the alert rules and dashboards.
      for (const name of ["db_pool_connections{state=\"in_use\"}", "db_pool_waiting_clients", "db_pool_max_connections 20", "db_pool_nodes_quarantined 0", "# TYPE db_unavailable_total counter", "nodejs_eventloop_lag_p99_seconds", "http_request_duration_seconds_bucket"]) {
        expect(res.body).toContain(name);
      }
    });
    it("GET /openapi.json documents the API", async () => {
      const doc = (await stack.request({ method: "GET", url: "/openapi.json" })).json();
      expect(doc.openapi).toMatch(/^3\./);
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/tenants", "/v1/tenants/{tenant}/items", "/v1/items/{id}"]));
    });
    it("GET /ready refuses traffic while row-level security does not apply to the service's role (a member of the owner)", async () => {
      // A fresh replica: readiness, once it has held, is not asked again.
      const replica = async () => {
        const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
        const app = await buildApp({ config: stack.config, db });
        try {
          return await app.inject({ method: "GET", url: "/ready" });
        } finally {
          await app.close();
          await db.close();
        }
      };
      await stack.admin.query("GRANT platform_migrator TO platform_app");
      try {
        const refused = await replica();
        expect(refused.statusCode).toBe(503);
        expect(refused.json().error.code).toBe("row_security_bypassed");
      } finally {
        await stack.admin.query("REVOKE platform_migrator FROM platform_app");
      }
      expect((await replica()).statusCode).toBe(200);
    });
    it("keys requests on the address Kong saw (the last X-Forwarded-For entry), not one the client wrote", async () => {
      const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 1 });
      const app = await buildApp({ config: stack.config, db });
      app.get("/test-client-address", async (request) => ({ ip: request.ip }));
      try {
        const res = await app.inject({ method: "GET", url: "/test-client-address", remoteAddress: "10.8.0.7", headers: { "x-forwarded-for": "203.0.113.66, 198.51.100.20" } });
        // 203.0.113.66 is what the client sent; Kong appended 198.51.100.20, the peer it accepted the connection from.
        expect(res.json()).toEqual({ ip: "198.51.100.20" });
      } finally {
        await app.close();
        await db.close();
      }
    });
    it("answers 503 with Retry-After while a database node is away, counts it, and serves again when it is back", async () => {
      // The errors a real failover sends through the coordinator (seen in infra/test/patroni-citus.test.ts): the
      // worker's connection failing (08006), the node shutting down (57P01), the service's own connection lost; and
      // the statement timeout, which is how a lost Citus worker shows first (test/citus-lost-worker.test.ts).
      const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
      let away: Error | undefined;
      const failing = { ...db, transaction: <T>(context: Parameters<typeof db.transaction>[0], work: Parameters<typeof db.transaction<T>>[1]) => (away ? Promise.reject(away) : db.transaction(context, work)) };
      const app = await buildApp({ config: stack.config, db: failing });
      try {
        const read = () => app.inject({ method: "GET", url: `/v1/tenants/${acme.id}/items`, headers: { authorization: `Bearer ${acme.member}` } });
        for (const [code, message] of [["08006", "connection to the remote node platform_app@worker-3:5432 failed"], ["57P01", "terminating connection due to administrator command"], ["57014", "canceling statement due to statement timeout"], [undefined, "Connection terminated unexpectedly"], [undefined, "timeout exceeded when trying to connect"], ["NODE_BUSY", ""]] as const) {
          // The last two: no connection within the pool's wait (pg-pool's own error), or the tenant's node's share of it.
          away = code === "NODE_BUSY" ? new NodeBusy(1, 3, 5_000) : Object.assign(new Error(message), code ? { code } : {});
          const res = await read();
          expect(res.statusCode, `${code ?? message}: ${res.body}`).toBe(503);
          expect(res.headers["retry-after"]).toBe("5");
          expect(res.json().error.code).toBe("database_unavailable");
        }
        const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
        expect(metrics).toMatch(/db_unavailable_total\{cause="08006"\} 1/);
        expect(metrics).toMatch(/db_unavailable_total\{cause="57014"\} 1/);
        expect(metrics).toMatch(/db_unavailable_total\{cause="connection_lost"\} 1/);
        expect(metrics).toMatch(/db_unavailable_total\{cause="pool_exhausted"\} 1/);
        expect(metrics).toMatch(/db_unavailable_total\{cause="node_busy"\} 1/);
        away = undefined;
        expect((await read()).statusCode).toBe(200);
        // Anything else of ours is still a 500: only an absent node is worth retrying.
        away = Object.assign(new Error("syntax error at or near"), { code: "42601" });
        expect((await read()).statusCode).toBe(500);
      } finally {
        await app.close();
        await db.close();
      }
    });
    it("echoes or assigns a request id", async () => {
      const res = await stack.request({ method: "GET", url: "/health", headers: { "x-request-id": "abc-123" } });
      expect(res.headers["x-request-id"]).toBe("abc-123");
    });
  });

  describe("tenants", () => {
    it("POST /v1/tenants creates a tenant (201, id, Location) and refuses a taken code with 409", async () => {
      const res = await stack.request({ method: "POST", url: "/v1/tenants", token: platform, payload: { code: "initech", name: "Initech" } });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ code: "initech", name: "Initech", status: "active", plan: "free", maxUsers: 10 });
      expect(res.headers.location).toBe(`/v1/tenants/${res.json().id}`);
      const again = await stack.request({ method: "POST", url: "/v1/tenants", token: platform, payload: { code: "initech", name: "Other" } });
      expect(again.statusCode).toBe(409);
      expect(again.json().error.code).toBe("tenant_code_taken");
    });
    it("GET /v1/tenants/{tenant} by id or code, for its members and platform admins", async () => {
      for (const ref of [acme.id, acme.code]) {
        const res = await stack.request({ method: "GET", url: `/v1/tenants/${ref}`, token: acme.member });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ id: acme.id, code: "acme", plan: "starter", maxUsers: 5 });
      }
      expect((await stack.request({ method: "GET", url: `/v1/tenants/${acme.code}`, token: platform })).statusCode).toBe(200);
      expect((await stack.request({ method: "GET", url: "/v1/tenants/nobody-here", token: platform })).statusCode).toBe(404);
    });
    it("PATCH /v1/tenants/{tenant} changes limits for platform admins only", async () => {
      const denied = await stack.request({ method: "PATCH", url: `/v1/tenants/${acme.id}`, token: acme.admin, payload: { maxUsers: 1000 } });
      expect(denied.statusCode).toBe(403);
      const res = await stack.request({ method: "PATCH", url: `/v1/tenants/${acme.id}`, token: platform, payload: { maxUsers: 6, name: "Acme Corp" } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ maxUsers: 6, name: "Acme Corp" });
    });
  });

  describe("users", () => {
    let userId: string;
    it("POST creates (tenant admin), GET lists and reads", async () => {
      const res = await stack.request({ method: "POST", url: `/v1/tenants/${acme.id}/users`, token: acme.admin, payload: { email: "Jane@Acme.test", displayName: "Jane", role: "admin" } });
      expect(res.statusCode).toBe(201);
      userId = res.json().id;
      expect(res.json()).toMatchObject({ email: "Jane@Acme.test", displayName: "Jane", role: "admin", status: "active" });
      const list = await stack.request({ method: "GET", url: `/v1/tenants/${acme.id}/users`, token: acme.member });
      expect(list.json().data.map((u: { id: string }) => u.id)).toContain(userId);
      expect((await stack.request({ method: "GET", url: `/v1/tenants/${acme.id}/users/${userId}`, token: acme.member })).json().id).toBe(userId);
    });
    it("emails are unique per tenant, case-insensitively", async () => {
      const res = await stack.request({ method: "POST", url: `/v1/tenants/${acme.id}/users`, token: acme.admin, payload: { email: "jane@acme.TEST" } });
      expect(res.statusCode).toBe(409);
    });
    it("members cannot manage users", async () => {
      const res = await stack.request({ method: "POST", url: `/v1/tenants/${acme.id}/users`, token: acme.member, payload: { email: "x@acme.test" } });
      expect(res.statusCode).toBe(403);
    });
    it("PATCH changes and DELETE removes a user (404 afterwards); a user owning items cannot be deleted", async () => {
      const patched = await stack.request({ method: "PATCH", url: `/v1/tenants/${acme.id}/users/${userId}`, token: acme.admin, payload: { status: "disabled" } });
      expect(patched.json().status).toBe("disabled");
      const owner = await stack.request({ method: "DELETE", url: `/v1/tenants/${acme.id}/users/${acme.userId}`, token: acme.admin });
      expect(owner.statusCode).toBe(409);
      expect(owner.json().error.code).toBe("user_owns_items");
      expect((await stack.request({ method: "DELETE", url: `/v1/tenants/${acme.id}/users/${userId}`, token: acme.admin })).statusCode).toBe(204);
      expect((await stack.request({ method: "GET", url: `/v1/tenants/${acme.id}/users/${userId}`, token: acme.admin })).statusCode).toBe(404);
    });
  });

  describe("items", () => {
    it("POST, GET, PATCH, DELETE one item", async () => {
      const created = await stack.request({ method: "POST", url: `/v1/tenants/${acme.id}/items`, token: acme.member, payload: { ownerId: acme.userId, title: "Quarterly report", body: "revenue grew", tags: ["finance"] } });
      expect(created.statusCode).toBe(201);
      const id = created.json().id;
      expect(created.json()).toMatchObject({ ownerId: acme.userId, title: "Quarterly report", tags: ["finance"], sizeBytes: "Quarterly report".length + "revenue grew".length });
      const patched = await stack.request({ method: "PATCH", url: `/v1/items/${id}`, token: acme.member, payload: { title: "Q3 report" } });
      expect(patched.json().title).toBe("Q3 report");
      expect((await stack.request({ method: "GET", url: `/v1/items/${id}`, token: acme.member })).json().title).toBe("Q3 report");
      expect((await stack.request({ method: "DELETE", url: `/v1/items/${id}`, token: acme.member })).statusCode).toBe(204);
      expect((await stack.request({ method: "GET", url: `/v1/items/${id}`, token: acme.member })).statusCode).toBe(404);
    });
    it("refuses an owner who is not a user of the tenant", async () => {
      const res = await stack.request({ method: "POST", url: "/v1/items", token: acme.member, payload: { ownerId: "00000000-0000-4000-8000-000000000000", title: "x" } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/ownerId/);
    });
    it("lists newest first with an opaque cursor, filters by owner and full-text q, clamps limit", async () => {
      for (let i = 0; i < 5; i++) {
        await stack.request({ method: "POST", url: "/v1/items", token: acme.member, payload: { ownerId: acme.userId, title: `bulk ${i}`, body: i === 3 ? "contains zebra" : "plain" } });
      }
      const first = (await stack.request({ method: "GET", url: "/v1/items?limit=2", token: acme.member })).json();
      expect(first.data.map((i: { title: string }) => i.title)).toEqual(["bulk 4", "bulk 3"]);
      const second = (await stack.request({ method: "GET", url: `/v1/items?limit=2&cursor=${first.nextCursor}`, token: acme.member })).json();
      expect(second.data.map((i: { title: string }) => i.title)).toEqual(["bulk 2", "bulk 1"]);
      const search = (await stack.request({ method: "GET", url: "/v1/items?q=zebra", token: acme.member })).json();
      expect(search.data.map((i: { title: string }) => i.title)).toEqual(["bulk 3"]);
      const byOwner = (await stack.request({ method: "GET", url: `/v1/items?ownerId=${acme.userId}&limit=100000`, token: acme.member })).json();
      expect(byOwner.data.length).toBe(6);
      const bad = await stack.request({ method: "GET", url: "/v1/items?cursor=not-a-cursor", token: acme.member });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe("invalid_cursor");
    });
  });

  it("pages through rows that share a millisecond without skipping any (the cursor keeps microseconds)", async () => {
    const code = "same-ms";
    const tenant = await createTenant(stack, code, platform);
    // Three items created within one millisecond, as a busy tenant's can be: only the microseconds differ.
    await stack.admin.query(
      `INSERT INTO platform.items (tenant_id, owner_id, title, created_at)
       SELECT $1, $2, 'same ms ' || n, '2026-01-01 00:00:00.123456+00'::timestamptz - n * interval '1 microsecond' FROM generate_series(1, 3) AS n`,
      [tenant.id, tenant.userId],
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { data: { title: string }[]; nextCursor: string | null } = (
        await stack.request({ method: "GET", url: `/v1/items?limit=1${cursor ? `&cursor=${cursor}` : ""}`, token: tenant.member })
      ).json();
      seen.push(...page.data.map((i) => i.title));
      cursor = page.nextCursor;
    } while (cursor && seen.length < 10);
    expect(seen).toEqual([`${code} first item`, "same ms 1", "same ms 2", "same ms 3"]);
  });

  describe("audit log and usage", () => {
    it("records every write with actor, action and request id, readable by tenant admins", async () => {
      const created = await stack.request({ method: "POST", url: "/v1/items", token: acme.member, headers: { "x-request-id": "req-audit-1" }, payload: { ownerId: acme.userId, title: "audited" } });
      const log = await stack.request({ method: "GET", url: `/v1/tenants/${acme.code}/audit-log?entityId=${created.json().id}`, token: acme.admin });
      expect(log.statusCode).toBe(200);
      expect(log.json().data).toEqual([expect.objectContaining({ action: "item.create", actor: "acme-member", requestId: "req-audit-1", entityType: "item" })]);
      expect((await stack.request({ method: "GET", url: "/v1/audit-log", token: acme.member })).statusCode).toBe(403);
    });
    it("GET /usage reports counts, storage and the effective limits (acme's own max users, the rest its plan's)", async () => {
      const usage = (await stack.request({ method: "GET", url: "/v1/usage", token: acme.member })).json();
      expect(usage.users).toEqual({ count: 1, max: 6 });
      expect(usage.items.count).toBeGreaterThan(0);
      expect(usage.limits).toEqual({ maxUsers: 6, maxStorageGb: 10, requestsPerMinute: 3_000, concurrentRequests: 6 });
      expect(usage.storage.maxBytes).toBe(10 * 1024 ** 3);
      expect(usage.storage.bytes).toBeGreaterThan(0);
    });
  });
});
