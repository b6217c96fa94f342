import { SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, ISSUER, createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

if (unavailable) console.warn(`skipping auth and limits tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("authentication, limits and hostile input", () => {
  let stack: Stack;
  let platform: string;
  let t: TenantFixture;

  beforeAll(async () => {
    stack = await startStack({ env: { RATE_LIMIT_MAX: "1000", BODY_LIMIT_BYTES: "4096" } });
    platform = await token({ scope: "platform:admin" });
    t = await createTenant(stack, "limits", platform, { maxUsers: 2 });
  }, 120_000);
  afterAll(async () => stack?.close());

  describe("tokens", () => {
    const cases: [string, () => Promise<string | undefined>][] = [
      ["no token", async () => undefined],
      ["expired", () => token({ tenant: t.id, expiresIn: "-1m" })],
      ["wrong issuer", () => token({ tenant: t.id, issuer: "https://evil.example/" })],
      ["wrong audience", () => token({ tenant: t.id, audience: "another-service" })],
      ["bad signature", () => token({ tenant: t.id, secret: "another-secret-another-secret-another-s" })],
      ["alg none", async () => new UnsecuredJWT({ tenant_id: t.id, scope: "platform:admin" }).setSubject("x").setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime("5m").encode()],
      ["no tenant claim and not a platform admin", () => token({})],
      ["a tenant claim that is not a uuid", async () =>
        new SignJWT({ tenant_id: "acme" }).setProtectedHeader({ alg: "HS256" }).setSubject("x").setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime("5m")
          .sign(new TextEncoder().encode("test-secret-test-secret-test-secret-0123"))],
    ];
    it.each(cases)("%s: 401 with an error body, nothing read", async (_label, make) => {
      const res = await stack.request({ method: "GET", url: `/v1/tenants/${t.id}/items`, token: await make() });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe("unauthorized");
      expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
      expect(res.body).not.toContain(t.itemId);
    });
    it("a malformed Authorization header: 401", async () => {
      const res = await stack.request({ method: "GET", url: "/v1/items", headers: { authorization: "Basic dXNlcjpwYXNz" } });
      expect(res.statusCode).toBe(401);
    });
  });

  it("enforces max_users with a clear 409", async () => {
    // The fixture has one user; max is 2.
    expect((await stack.request({ method: "POST", url: "/v1/users", token: t.admin, payload: { email: "two@limits.test" } })).statusCode).toBe(201);
    const res = await stack.request({ method: "POST", url: "/v1/users", token: t.admin, payload: { email: "three@limits.test" } });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toEqual({ code: "user_quota_exceeded", message: expect.stringMatching(/maximum of 2 users/) });
  });

  it("refuses a suspended tenant's requests with 403 until reactivated", async () => {
    const t2 = await createTenant(stack, "sleepy", platform);
    await stack.request({ method: "PATCH", url: `/v1/tenants/${t2.id}`, token: platform, payload: { status: "suspended" } });
    const res = await stack.request({ method: "GET", url: "/v1/items", token: t2.member });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe("tenant_suspended");
    await stack.request({ method: "PATCH", url: `/v1/tenants/${t2.id}`, token: platform, payload: { status: "active" } });
    expect((await stack.request({ method: "GET", url: "/v1/items", token: t2.member })).statusCode).toBe(200);
  });

  describe("hostile input gets 4xx, never 5xx", () => {
    const injections = ["' OR '1'='1", "'; DROP TABLE platform.items; --", "$$; SELECT pg_sleep(10); $$", "\u0000", "../../etc/passwd", "<script>alert(1)</script>"];
    it("malformed JSON: 400 invalid_json", async () => {
      const res = await stack.request({ method: "POST", url: "/v1/items", token: t.member, headers: { "content-type": "application/json" }, payload: '{"title": "x",' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe("invalid_json");
    });
    it("wrong types: 400 naming the field and why", async () => {
      const res = await stack.request({ method: "POST", url: "/v1/items", token: t.member, payload: { ownerId: t.userId, title: 42, tags: "x" } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe("validation_failed");
      expect(res.json().error.message).toMatch(/body\.title: .*string/);
      expect(res.json().error.message).toMatch(/body\.tags/);
    });
    it("a huge body: 413", async () => {
      const res = await stack.request({ method: "POST", url: "/v1/items", token: t.member, payload: { ownerId: t.userId, title: "x", body: "y".repeat(10_000) } });
      expect(res.statusCode).toBe(413);
    });
    it("a non-JSON content type: 415", async () => {
      const res = await stack.request({ method: "POST", url: "/v1/items", token: t.member, headers: { "content-type": "text/plain" }, payload: "hello" });
      expect(res.statusCode).toBe(415);
    });
    it("a body sent to DELETE is parsed too (413, 415), and the description says so", async () => {
      const url = `/v1/items/${t.itemId}`;
      expect((await stack.request({ method: "DELETE", url, token: t.member, headers: { "content-type": "text/plain" }, payload: "hello" })).statusCode).toBe(415);
      expect((await stack.request({ method: "DELETE", url, token: t.member, payload: { body: "y".repeat(10_000) } })).statusCode).toBe(413);
      const doc = (await stack.request({ method: "GET", url: "/openapi.json" })).json();
      expect(Object.keys(doc.paths["/v1/items/{id}"].delete.responses)).toEqual(expect.arrayContaining(["413", "415"]));
    });
    it.each(injections)("injection string %j in params, query, headers and body", async (evil) => {
      const e = encodeURIComponent(evil);
      const responses = await Promise.all([
        stack.request({ method: "GET", url: `/v1/tenants/${e}/items`, token: t.member }),
        stack.request({ method: "GET", url: `/v1/items/${e}`, token: t.member }),
        stack.request({ method: "GET", url: `/v1/items?q=${e}&ownerId=${e}&cursor=${e}&limit=${e}`, token: t.member }),
        stack.request({ method: "GET", url: "/v1/items", token: t.member, headers: { "x-tenant-id": evil.split("\u0000").join("") || "x y" } }),
        stack.request({ method: "POST", url: "/v1/items", token: t.member, payload: { ownerId: t.userId, title: evil, body: evil, tags: [evil] } }),
        stack.request({ method: "GET", url: `/v1/items?q=${e}`, token: t.member }),
      ]);
      for (const res of responses) {
        expect(res.statusCode, res.body).toBeLessThan(500);
        expect(res.body).not.toMatch(/at .*\.ts:\d+|stack/i);
      }
      expect((await stack.admin.query("SELECT to_regclass('platform.items') AS t")).rows[0].t).toBe("platform.items");
    });
    it("a forged cursor: 400 invalid_cursor, whatever date or id it carries", async () => {
      const forged = (createdAt: string, id: string) => Buffer.from(JSON.stringify([createdAt, id])).toString("base64url");
      for (const cursor of [
        forged("-271821-04-20T00:00:00.000Z", t.itemId), // a date JavaScript accepts and PostgreSQL cannot store
        forged("2026-02-30T00:00:00.000Z", t.itemId), // a day the month does not have
        forged("Tue Dec 01 2026", t.itemId), // not the format the API writes
        forged("2026-12-01T00:00:00.000Z", "-".repeat(36)), // not a uuid
      ]) {
        for (const list of ["/v1/items", "/v1/users", "/v1/audit-log"]) {
          const res = await stack.request({ method: "GET", url: `${list}?cursor=${cursor}`, token: t.admin });
          expect(res.statusCode, `${list} ${Buffer.from(cursor, "base64url").toString()}: ${res.body}`).toBe(400);
          expect(res.json().error.code).toBe("invalid_cursor");
        }
      }
    });
    it("unknown routes: 404 in the error format", async () => {
      const res = await stack.request({ method: "GET", url: "/v2/nothing", token: t.member });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe("not_found");
    });
  });
});

describe.skipIf(unavailable !== undefined)("per-tenant rate limiting in Redis", () => {
  let stack: Stack;
  let a: TenantFixture;
  let b: TenantFixture;
  beforeAll(async () => {
    stack = await startStack({ env: { RATE_LIMIT_MAX: "5", RATE_LIMIT_WINDOW_MS: "60000" } });
    const platform = await token({ scope: "platform:admin" });
    a = await createTenant(stack, "chatty", platform);
    b = await createTenant(stack, "quiet", platform);
    // The fixture used the tenant's budget already: start each test from a clean window.
    const { Redis } = await import("ioredis");
    const r = new Redis(stack.redis.url);
    await r.flushall();
    r.disconnect();
  }, 120_000);
  afterAll(async () => stack?.close());

  it("counts per tenant, sends the RateLimit headers, and answers 429 with Retry-After past the limit", async () => {
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 7; i++) {
      last = await stack.request({ method: "GET", url: "/v1/items", token: a.member });
      statuses.push(last.statusCode);
      if (i === 0) {
        expect(last.headers["ratelimit-limit"]).toBe("5");
        expect(last.headers["ratelimit-remaining"]).toBe("4");
      }
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(last!.json().error.code).toBe("rate_limited");
    expect(Number(last!.headers["retry-after"])).toBeGreaterThan(0);
    // Another tenant is unaffected, and the counter lives in Redis (shared by every replica).
    expect((await stack.request({ method: "GET", url: "/v1/items", token: b.member })).statusCode).toBe(200);
    const { Redis } = await import("ioredis");
    const r = new Redis(stack.redis.url);
    const keys = await r.keys("tenant-service:rate:*");
    r.disconnect();
    expect(keys).toEqual(expect.arrayContaining([`tenant-service:rate:tenant:${a.id}`, `tenant-service:rate:tenant:${b.id}`]));
    // The leases asked of Redis are counted for the dashboards: granted ones, and the one that found a window used up.
    const metrics = (await stack.request({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/rate_limit_lease_renewals_total\{result="granted"\} [1-9]/);
    expect(metrics).toMatch(/rate_limit_lease_renewals_total\{result="exhausted"\} 1\b/);
  });
});
