/**
 * Tenant imports (POST /v1/tenants/{t}/imports) against a real PostgreSQL 15 and Redis: NDJSON and CSV, streamed in
 * batches (IMPORT_BATCH_ROWS is small here, so a file spans several transactions), idempotent by each row's key, bad
 * lines reported by number without stopping the good ones, and the tenant's limits. Rows are read as the superuser.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { ImportRepository } from "../src/repositories/imports.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";

if (unavailable) console.warn(`skipping import tests: ${unavailable}`);

const ndjson = (rows: unknown[]) => rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n";

describe.skipIf(unavailable !== undefined)("tenant imports on PostgreSQL 15", () => {
  let stack: Stack;
  let platform: string;
  let a: TenantFixture;
  let b: TenantFixture;

  const send = (t: TenantFixture, payload: string | Readable, contentType = "application/x-ndjson", as = t.admin) =>
    stack.request({ method: "POST", url: `/v1/tenants/${t.id}/imports`, token: as, headers: { "content-type": contentType }, payload });
  const count = async (table: string, tenantId: string) => (await stack.admin.query(`SELECT count(*)::int AS n FROM platform.${table} WHERE tenant_id = $1`, [tenantId])).rows[0].n as number;

  beforeAll(async () => {
    stack = await startStack({ env: { IMPORT_BATCH_ROWS: "7", IMPORT_BODY_LIMIT_BYTES: String(64 * 1024) } });
    platform = await token({ scope: "platform:admin" });
    a = await createTenant(stack, "alpha", platform, { plan: "business" });
    b = await createTenant(stack, "bravo", platform);
  }, 120_000);
  afterAll(async () => stack?.close());

  it("imports NDJSON users and items (items naming their owner by its import key or id), in batches, each with its audit entry", async () => {
    const rows = [
      ...Array.from({ length: 10 }, (_, i) => ({ type: "user", key: `u${i}`, email: `user${i}@alpha.test`, displayName: `User ${i}`, role: i === 0 ? "admin" : undefined })),
      ...Array.from({ length: 12 }, (_, i) => ({ type: "item", key: `i${i}`, ownerKey: `u${i % 10}`, title: `Imported ${i}`, body: "line\nbreak", tags: ["imported"] })),
      { type: "item", key: "by-id", ownerId: a.userId, title: "owned by the fixture's user" },
    ];
    const before = { users: await count("users", a.id), items: await count("items", a.id) };
    const res = await send(a, ndjson(rows));
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report).toMatchObject({ format: "ndjson", created: { users: 10, items: 13 }, skipped: 0, failed: 0, errors: [], errorsTruncated: false });
    expect(await count("users", a.id)).toBe(before.users + 10);
    expect(await count("items", a.id)).toBe(before.items + 13);
    const owner = await stack.admin.query("SELECT u.email FROM platform.items i JOIN platform.users u ON u.tenant_id = i.tenant_id AND u.id = i.owner_id WHERE i.tenant_id = $1 AND i.title = 'Imported 3'", [a.id]);
    expect(owner.rows).toEqual([{ email: "user3@alpha.test" }]);
    const admin = await stack.admin.query("SELECT role, display_name FROM platform.users WHERE tenant_id = $1 AND email = 'user0@alpha.test'", [a.id]);
    expect(admin.rows).toEqual([{ role: "admin", display_name: "User 0" }]);
    // 23 rows at 7 a batch: 4 transactions, each with its audit entry naming the import.
    const batches = await stack.admin.query("SELECT details FROM platform.audit_log WHERE tenant_id = $1 AND action = 'import.batch' AND entity_id = $2", [a.id, report.importId]);
    expect(batches.rows.length).toBe(4);
    expect(batches.rows.reduce((n, r) => n + r.details.users + r.details.items, 0)).toBe(23);
  });

  it("is idempotent by key: the same file again creates nothing, even after the API changed or deleted a row", async () => {
    const rows = [
      { type: "user", key: "again-u", email: "again@alpha.test" },
      { type: "item", key: "again-i", ownerKey: "again-u", title: "first title" },
      { type: "item", key: "again-j", ownerKey: "again-u", title: "to be deleted" },
    ];
    expect((await send(a, ndjson(rows))).json().created).toEqual({ users: 1, items: 2 });
    const id = (await stack.admin.query("SELECT id FROM platform.items WHERE tenant_id = $1 AND title = 'to be deleted'", [a.id])).rows[0].id;
    await stack.admin.query("DELETE FROM platform.items WHERE id = $1", [id]);
    const before = { users: await count("users", a.id), items: await count("items", a.id) };
    const again = await send(a, ndjson(rows));
    expect(again.json()).toMatchObject({ created: { users: 0, items: 0 }, skipped: 3, failed: 0 });
    expect({ users: await count("users", a.id), items: await count("items", a.id) }).toEqual(before);
    // Two imports of one file at once apply each row once.
    const fresh = Array.from({ length: 20 }, (_, i) => ({ type: "item", key: `race-${i}`, ownerKey: "again-u", title: `race ${i}` }));
    const [one, two] = await Promise.all([send(a, ndjson(fresh)), send(a, ndjson(fresh))]);
    expect(one.json().created.items + two.json().created.items).toBe(20);
    expect(one.json().skipped + two.json().skipped).toBe(20);
    expect((await stack.admin.query("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1 AND title LIKE 'race %'", [a.id])).rows[0].n).toBe(20);
  });

  it("reports each bad line by number and reason, and applies the good ones around it", async () => {
    const lines = [
      JSON.stringify({ type: "user", key: "ok-1", email: "ok1@alpha.test" }), // 1
      "{not json", // 2
      "", // 3: blank, skipped
      JSON.stringify({ type: "user", key: "bad-email", email: "not-an-email" }), // 4
      JSON.stringify({ type: "robot", key: "r" }), // 5
      JSON.stringify({ type: "item", key: "no-owner", title: "x" }), // 6
      JSON.stringify({ type: "item", key: "ghost-owner", ownerKey: "nobody", title: "x" }), // 7
      JSON.stringify({ type: "user", key: "dup-email", email: "user1@alpha.test" }), // 8: taken by the first test
      "[1,2]", // 9
      JSON.stringify({ type: "item", key: "ok-2", ownerKey: "ok-1", title: "fine" }), // 10
    ];
    const res = await send(a, lines.join("\n"));
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.created).toEqual({ users: 1, items: 1 });
    expect(report.failed).toBe(7);
    expect(report.errors.map((e: { line: number }) => e.line)).toEqual([2, 4, 5, 6, 7, 8, 9]);
    const reason = (line: number) => report.errors.find((e: { line: number }) => e.line === line).reason as string;
    expect(reason(2)).toMatch(/^not JSON/);
    expect(reason(4)).toMatch(/^email: must be an email address/);
    expect(reason(5)).toBe('type: type must be "user" or "item"');
    expect(reason(6)).toContain("exactly one of ownerId and ownerKey");
    expect(reason(7)).toContain("ownerKey nobody names no imported user");
    expect(reason(8)).toBe("email user1@alpha.test already belongs to a user of this tenant");
    expect(reason(9)).toBe("not a JSON object");
    // A refused row's key is not kept: the corrected line applies.
    const fixed = await send(a, ndjson([{ type: "user", key: "dup-email", email: "fixed@alpha.test" }]));
    expect(fixed.json().created.users).toBe(1);
  });

  it("imports CSV with a header row, quoted cells over several lines and ;-separated tags, reporting bad records by line", async () => {
    const csv = [
      "type,key,email,displayName,ownerKey,title,body,tags",
      "user,csv-u,csv@alpha.test,CSV user,,,,", // 2
      'item,csv-i,,,csv-u,"Quoted, with comma","two', // 3
      'lines",a;b', // 4: the record above ends here
      "item,csv-bad,,,csv-u,,,", // 5: no title
      "item,too,many,cells,here,x,y,z,extra", // 6
    ].join("\n");
    const res = await send(a, csv, "text/csv; charset=utf-8");
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report).toMatchObject({ format: "csv", created: { users: 1, items: 1 }, failed: 2 });
    expect(report.errors.map((e: { line: number }) => e.line)).toEqual([5, 6]);
    expect(report.errors[0].reason).toMatch(/^title: /);
    const item = await stack.admin.query("SELECT title, body, tags FROM platform.items WHERE tenant_id = $1 AND title LIKE 'Quoted%'", [a.id]);
    expect(item.rows).toEqual([{ title: "Quoted, with comma", body: "two\nlines", tags: ["a", "b"] }]);
    const header = await send(a, "type,key,password\nuser,x,y\n", "text/csv");
    expect(header.statusCode).toBe(400);
    expect(header.json().error.message).toContain('unknown CSV column(s) "password"');
  });

  it("keeps to the tenant's limits: users past its maximum are refused line by line, the rest applied", async () => {
    // The free plan: 10 users; bravo has one.
    const rows = Array.from({ length: 12 }, (_, i) => ({ type: "user", key: `lim-${i}`, email: `lim${i}@bravo.test` }));
    const report = (await send(b, ndjson(rows))).json();
    expect(report.created.users).toBe(9);
    expect(report.failed).toBe(3);
    expect(report.errors.map((e: { line: number; reason: string }) => [e.line, e.reason])).toEqual([10, 11, 12].map((line) => [line, "the tenant has its maximum of 10 users"]));
    expect(await count("users", b.id)).toBe(10);
    // Raised: the refused rows apply on a re-run, the applied ones are skipped.
    expect((await stack.request({ method: "PATCH", url: `/v1/tenants/${b.id}`, token: platform, payload: { maxUsers: 20 } })).statusCode).toBe(200);
    expect((await send(b, ndjson(rows))).json()).toMatchObject({ created: { users: 3 }, skipped: 9, failed: 0 });
    // Storage, at the repository (filling a tenant's smallest limit, 1 GiB, is a test of patience): an item larger than
    // the bytes left is refused, a smaller one after it still fits, and its claim is given back.
    const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 1 });
    try {
      const result = await db.transaction({ tenantId: b.id }, (tx) =>
        new ImportRepository(tx, b.id, randomUUID()).applyItems([
          { line: 1, key: "big", ownerId: b.userId, title: "big", body: "y".repeat(90), tags: [] },
          { line: 2, key: "small", ownerId: b.userId, title: "small", body: "", tags: [] },
        ], 50),
      );
      expect(result).toEqual({ created: 1, skipped: 0, bytes: 5, errors: [{ line: 1, reason: "the tenant's storage limit would be exceeded" }] });
      const keys = await stack.admin.query("SELECT import_key FROM platform.import_rows WHERE tenant_id = $1 AND kind = 'item'", [b.id]);
      expect(keys.rows).toEqual([{ import_key: "small" }]);
    } finally {
      await db.close();
    }
  });

  it("a row refused for its email takes no room from the rows after it", async () => {
    // maxUsers 5 and the owner: room for 4. In one batch (IMPORT_BATCH_ROWS is 7 here), a taken email (in another
    // case) and a repeat within the file come first: both are refused for their email, and the 4 new users still fit.
    const c = await createTenant(stack, "charlie", platform);
    expect((await stack.request({ method: "PATCH", url: `/v1/tenants/${c.id}`, token: platform, payload: { maxUsers: 5 } })).statusCode).toBe(200);
    const rows = [
      { type: "user", key: "taken", email: "OWNER@charlie.test" },
      { type: "user", key: "first", email: "new0@charlie.test" },
      { type: "user", key: "repeat", email: "New0@charlie.test" },
      ...Array.from({ length: 3 }, (_, i) => ({ type: "user", key: `n${i + 1}`, email: `new${i + 1}@charlie.test` })),
    ];
    const report = (await send(c, ndjson(rows))).json();
    expect(report).toMatchObject({ created: { users: 4 }, failed: 2 });
    expect(report.errors).toEqual([
      { line: 1, reason: "email OWNER@charlie.test already belongs to a user of this tenant" },
      { line: 3, reason: "email New0@charlie.test already belongs to a user of this tenant" },
    ]);
    expect(await count("users", c.id)).toBe(5);
  });

  it("streams a large body in constant memory and refuses one past IMPORT_BODY_LIMIT_BYTES with 413", async () => {
    const before = await count("items", a.id);
    const big = Readable.from((function* () {
      for (let i = 0; i < 2_000; i++) yield JSON.stringify({ type: "item", key: `big-${i}`, ownerKey: "again-u", title: `big ${i}` }) + "\n";
    })());
    const res = await send(a, big);
    expect(res.statusCode, res.body).toBe(413);
    expect(res.json().error.message).toContain("IMPORT_BODY_LIMIT_BYTES");
    // The batches read before the limit were applied, and a re-run skips them.
    expect(await count("items", a.id)).toBeGreaterThan(before);
  });

  it("refuses members, other media types and a JSON body", async () => {
    expect((await send(a, ndjson([{ type: "user", key: "m", email: "m@alpha.test" }]), "application/x-ndjson", a.member)).statusCode).toBe(403);
    const json = await stack.request({ method: "POST", url: `/v1/tenants/${a.id}/imports`, token: a.admin, payload: { type: "user" } });
    expect(json.statusCode).toBe(415);
    expect(json.json().error.message).toContain("application/x-ndjson");
    expect((await send(a, "x", "application/xml")).statusCode).toBe(415);
  });
});
