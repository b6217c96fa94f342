/**
 * The tenant lookup at scale (src/tenant-directory.ts), on a real PostgreSQL migrated as in production: what is
 * cached, what is evicted, how many lookups reach the database, and how late a change made through another replica
 * arrives. The database is counted, not mocked: every lookup is a real transaction under the lookup policy.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../src/db/database.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { TenantDirectory } from "../src/tenant-directory.js";
import { startStack, unavailable, type Stack } from "./harness.js";

if (unavailable) console.warn(`skipping the tenant directory tests: ${unavailable}`);

describe.skipIf(unavailable)("the tenant directory", () => {
  let stack: Stack;
  let db: Database;
  /** The service's database, counting the lookups that reach it. */
  let counted: Database & { lookups: number };
  const ids: string[] = [];

  beforeAll(async () => {
    stack = await startStack();
    // Tenants written as the superuser: the directory is what is tested, not the API that creates them.
    const { rows } = await stack.admin.query<{ id: string }>(
      "INSERT INTO platform.tenants (code, name) SELECT 'tenant-' || i, 'Tenant ' || i FROM generate_series(1, 8) i RETURNING id",
    );
    ids.push(...rows.map((r) => r.id));
    db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 4 });
    counted = Object.assign(Object.create(db) as Database, { lookups: 0 });
    counted.transaction = (context, work) => {
      counted.lookups += 1;
      return db.transaction(context, work);
    };
  });
  afterAll(async () => {
    await db?.close();
    await stack?.close();
  });

  const lookupsDuring = async (work: () => Promise<unknown>) => {
    const before = counted.lookups;
    await work();
    return counted.lookups - before;
  };

  it("keeps the recently used tenants and lets the least recently used one go, not the whole cache", async () => {
    const directory = new TenantDirectory(counted, { ttlMs: 60_000, maxTenants: 3 });
    expect(await lookupsDuring(async () => { for (const id of ids.slice(0, 3)) await directory.resolve(id); })).toBe(3);
    await directory.resolve(ids[0]!); // the first is used again: the second is now the least recent
    expect(await lookupsDuring(() => directory.resolve(ids[3]!))).toBe(1);
    expect(directory.size.tenants).toBe(3);
    expect(await lookupsDuring(async () => { await directory.resolve(ids[0]!); await directory.resolve(ids[2]!); await directory.resolve(ids[3]!); })).toBe(0);
    expect(await lookupsDuring(() => directory.resolve(ids[1]!))).toBe(1);
  });

  it("answers by code from a lookup by id, and the other way round", async () => {
    const directory = new TenantDirectory(counted, { ttlMs: 60_000 });
    const tenant = await directory.resolve(ids[4]!);
    expect(await lookupsDuring(async () => expect((await directory.resolve(tenant!.code.toUpperCase()))?.id).toBe(ids[4]))).toBe(0);
  });

  it("sends one lookup for a burst of requests naming the same uncached tenant", async () => {
    const directory = new TenantDirectory(counted, { ttlMs: 60_000 });
    const lookups = await lookupsDuring(async () => {
      const answers = await Promise.all(Array.from({ length: 50 }, () => directory.resolve(ids[5]!)));
      expect(new Set(answers.map((t) => t?.id))).toEqual(new Set([ids[5]]));
    });
    expect(lookups).toBe(1);
  });

  it("does not let names that exist nowhere push out the tenants that do", async () => {
    const directory = new TenantDirectory(counted, { ttlMs: 60_000, maxTenants: 2, maxUnknown: 5 });
    await directory.resolve(ids[0]!);
    await directory.resolve(ids[1]!);
    for (let i = 0; i < 100; i++) expect(await directory.resolve(`no-such-tenant-${i}`)).toBeUndefined();
    expect(directory.size).toEqual({ tenants: 2, unknown: 5 });
    expect(await lookupsDuring(async () => { await directory.resolve(ids[0]!); await directory.resolve(ids[1]!); })).toBe(0);
    // A name just refused is not asked again at once (a scan costs the database once per name per second at most).
    expect(await lookupsDuring(() => directory.resolve("no-such-tenant-99"))).toBe(0);
  });

  it("brings a suspension made through another replica to this one within its TTL, and a new tenant within a second", async () => {
    const ttlMs = 400;
    const elsewhere = new TenantDirectory(counted, { ttlMs });
    const here = new TenantDirectory(counted, { ttlMs });
    expect((await here.resolve(ids[6]!))?.status).toBe("active");
    expect(await here.resolve("created-later")).toBeUndefined();
    // The change, as another replica makes it: in the database, then invalidated there only.
    await stack.admin.query("UPDATE platform.tenants SET status = 'suspended' WHERE id = $1", [ids[6]]);
    await stack.admin.query("INSERT INTO platform.tenants (code, name) VALUES ('created-later', 'Later')");
    elsewhere.invalidate({ id: ids[6]!, code: "tenant-7" });
    expect((await elsewhere.resolve(ids[6]!))?.status).toBe("suspended");
    const changed = Date.now();
    // Bounded by when a lookup started, not when it returned (its cached entry predates the change): a lookup that
    // starts a TTL after the change must see it, however slowly a loaded machine answers.
    let seen: number | undefined;
    let lastOldStart = -Infinity;
    while (Date.now() - changed < ttlMs * 3 + 10_000) {
      const startedAt = Date.now() - changed;
      if ((await here.resolve(ids[6]!))?.status === "suspended") {
        seen = Date.now() - changed;
        break;
      }
      lastOldStart = startedAt;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen, "the suspension reached the other replica").toBeDefined();
    expect(lastOldStart, "a lookup started over a TTL after the change still saw the old status").toBeLessThanOrEqual(ttlMs);
    expect((await here.resolve("created-later"))?.code).toBe("created-later");
  });

  it("does not cache what a lookup read before an invalidation that overtook it", async () => {
    const directory = new TenantDirectory(counted, { ttlMs: 60_000 });
    const stale = directory.resolve(ids[7]!);
    directory.invalidate({ id: ids[7]!, code: "tenant-8" });
    await stale;
    expect(await lookupsDuring(() => directory.resolve(ids[7]!))).toBe(1);
  });

  it("does not remember a row read in a request's transaction when a change made here overtook it", async () => {
    const directory = new TenantDirectory(counted, { ttlMs: 60_000 });
    const row = await new TenantDirectory(db, { ttlMs: 0 }).resolve(ids[6]!);
    const mark = directory.mark;
    directory.invalidate(row!);
    directory.remember(ids[6]!, row, mark);
    expect(directory.peek(ids[6]!)).toBeUndefined();
    directory.remember(ids[6]!, row, directory.mark);
    expect(directory.peek(ids[6]!)?.id).toBe(ids[6]);
    expect(directory.peek("tenant-7")?.id, "and under its code").toBe(ids[6]);
    const nobody = "00000000-0000-4000-8000-000000000000";
    directory.remember(nobody, undefined, directory.mark);
    expect(directory.peek(nobody), "an id that names no tenant is held apart").toBeNull();
  });
});
