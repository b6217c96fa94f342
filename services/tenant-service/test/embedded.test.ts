import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app.js";
import { loadServiceConfig } from "../src/config.js";
import { createEmbeddedDatabase } from "../src/db/pglite.js";
import type { Database } from "../src/db/database.js";
import { AUDIENCE, ISSUER, SECRET, token } from "./harness.js";

/** No server at all: DATABASE_URL unset means PGlite, migrated on start, with the same isolation. */
describe("embedded database (PGlite)", () => {
  let app: FastifyInstance;
  let db: Database;
  beforeAll(async () => {
    db = await createEmbeddedDatabase();
    app = await buildApp({ config: loadServiceConfig({ AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }), db });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });
  const req = async (t: string, method: string, url: string, payload?: object) =>
    app.inject({ method: method as "GET", url, payload, headers: { authorization: `Bearer ${t}` } });

  it("serves the API after migrating on start", async () => {
    expect((await app.inject({ method: "GET", url: "/ready" })).json()).toEqual({ status: "ready", database: "pglite" });
    const platform = await token({ scope: "platform:admin" });
    const created = await req(platform, "POST", "/v1/tenants", { code: "solo", name: "Solo" });
    expect(created.statusCode).toBe(201);
    const admin = await token({ tenant: created.json().id, scope: "tenant:admin" });
    const user = await req(admin, "POST", "/v1/users", { email: "me@solo.test" });
    expect(user.statusCode).toBe(201);
    const item = await req(admin, "POST", "/v1/items", { ownerId: user.json().id, title: "embedded" });
    expect(item.statusCode).toBe(201);
    expect((await req(admin, "GET", "/v1/items")).json().data.map((i: { title: string }) => i.title)).toEqual(["embedded"]);
  });

  it("runs queries as the service role, so row-level security applies as on a server", async () => {
    const platform = await token({ scope: "platform:admin" });
    const other = await req(platform, "POST", "/v1/tenants", { code: "other", name: "Other" });
    const member = await token({ tenant: other.json().id });
    expect((await req(member, "GET", "/v1/items")).json().data).toEqual([]);
    const probe = await db.transaction({}, async (tx) => (await tx.query<{ u: string; n: number }>("SELECT current_user AS u, (SELECT count(*)::int FROM platform.items) AS n")).rows[0]);
    expect(probe).toEqual({ u: "platform_app", n: 0 });
  });
});
