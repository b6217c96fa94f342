/** What a tenant uses against its plan's limits: any member. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { UsageRepository } from "../repositories/usage.js";
import { errorResponses } from "../schemas.js";
import { inTenant, tenantRequest, type RouteOptions } from "./context.js";

export const Usage = z
  .object({
    tenant: z.object({ id: z.uuid(), code: z.string(), plan: z.string(), status: z.enum(["active", "suspended"]) }),
    users: z.object({ count: z.int(), max: z.int() }),
    items: z.object({ count: z.int() }),
    storage: z.object({ bytes: z.number(), maxBytes: z.number(), usedRatio: z.number() }),
  })
  .meta({ id: "Usage", description: "What the tenant uses, against its plan's limits" });

export const usageRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const schema = { ...tenantRequest(options, {}), tags: ["usage"], response: { 200: Usage, ...errorResponses(400, 401, 403, 404, 429) } };
  app.get("/usage", { config: { tenantScoped: true }, schema }, async (request) =>
    inTenant(services, request, async (tx, inTx) => {
      const used = await new UsageRepository(tx, inTx.id).counts();
      const tenant = await inTx.record();
      const maxBytes = tenant.maxStorageGb * 1024 ** 3;
      return {
        tenant: { id: tenant.id, code: tenant.code, plan: tenant.plan, status: tenant.status },
        users: { count: used.users, max: tenant.maxUsers },
        items: { count: used.items },
        storage: { bytes: used.storageBytes, maxBytes, usedRatio: used.storageBytes / maxBytes },
      };
    }),
  );
};
