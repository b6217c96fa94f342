/**
 * The tenant-context plugin (src/plugins/tenant-context.ts): whether a route is tenant-scoped is what its config
 * declares, never its URL, and a route in the API's scope that declares nothing is refused when the app is built.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { loadServiceConfig } from "../src/config.js";
import type { Database } from "../src/db/database.js";
import { errors } from "../src/plugins/errors.js";
import { tenantContext } from "../src/plugins/tenant-context.js";
import { createServices } from "../src/services.js";
import { AUDIENCE, ISSUER, SECRET, token } from "./harness.js";

// No request below reaches the database: a platform admin naming no tenant is refused before any lookup.
const noDatabase: Database = {
  kind: "pglite",
  transaction: async () => {
    throw new Error("these tests never reach the database");
  },
  ping: async () => {},
  close: async () => {},
};

describe("tenant context", () => {
  const config = loadServiceConfig({ AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE });
  const services = createServices(config, noDatabase);
  let app: FastifyInstance | undefined;
  afterEach(async () => app?.close());

  async function build(routes: (api: FastifyInstance) => void): Promise<FastifyInstance> {
    app = Fastify();
    await app.register(errors, { metrics: services.metrics, bodyLimitBytes: config.BODY_LIMIT_BYTES });
    await app.register(async (api) => {
      await api.register(tenantContext, { config, directory: services.directory, metrics: services.metrics, limiter: services.limiter });
      routes(api);
    });
    await app.ready();
    return app;
  }

  it("refuses a route that does not declare config.tenantScoped, naming it", async () => {
    await expect(build((api) => api.get("/v1/undeclared", async () => ({})))).rejects.toThrow(/GET \/v1\/undeclared: declare config.tenantScoped/);
  });

  it("resolves a tenant for a route declared tenant-scoped, and not for one declared otherwise, whatever their URLs", async () => {
    const built = await build((api) => {
      // URLs chosen to mislead a matcher: the scoped one looks like the platform route, and the other way round.
      api.get("/v1/tenants", { config: { tenantScoped: true } }, async (request) => ({ tenant: request.tenant?.id ?? null }));
      api.get("/v1/tenants/:tenant/items", { config: { tenantScoped: false } }, async (request) => ({ tenant: request.tenant?.id ?? null }));
    });
    const platform = `Bearer ${await token({ scope: "platform:admin" })}`;
    const scoped = await built.inject({ method: "GET", url: "/v1/tenants", headers: { authorization: platform } });
    expect(scoped.statusCode).toBe(400);
    expect(scoped.json().error.code).toBe("tenant_required");
    const unscoped = await built.inject({ method: "GET", url: "/v1/tenants/acme/items", headers: { authorization: platform } });
    expect(unscoped.statusCode).toBe(200);
    expect(unscoped.json()).toEqual({ tenant: null });
  });

  it("authenticates every route in its scope, tenant-scoped or not", async () => {
    const built = await build((api) => api.get("/v1/open", { config: { tenantScoped: false } }, async () => ({})));
    const res = await built.inject({ method: "GET", url: "/v1/open" });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("unauthorized");
  });
});
