/** What a tenant uses against its limits (its own where set, else its plan's: plans.ts): any member. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { effectiveLimits } from "../plans.js";
import { TENANT_STATUSES } from "../repositories/tenants.js";
import { UsageRepository } from "../repositories/usage.js";
import { Limits, errorResponses } from "../schemas.js";
import { inTenant, tenantRequest, type RouteOptions } from "./context.js";

export const Usage = z
  .object({
    tenant: z.object({ id: z.uuid(), code: z.string(), plan: z.string(), status: z.enum(TENANT_STATUSES) }),
    users: z.object({ count: z.int(), max: z.int() }),
    items: z.object({ count: z.int() }),
    storage: z.object({ bytes: z.number(), maxBytes: z.number(), usedRatio: z.number() }),
    limits: Limits,
  })
  .meta({ id: "Usage", description: "What the tenant uses, against its limits (its own where set, else its plan's)" });

export const usageRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const schema = { ...tenantRequest(options, {}), tags: ["usage"], response: { 200: Usage, ...errorResponses(400, 401, 403, 404, 429) } };
  app.get("/usage", { config: { tenantScoped: true }, schema }, async (request) =>
    inTenant(services, request, async (tx, inTx) => {
      const used = await new UsageRepository(tx, inTx.id).counts();
      const tenant = await inTx.record();
      const limits = effectiveLimits(tenant);
      const maxBytes = limits.maxStorageGb * 1024 ** 3;
      return {
        tenant: { id: tenant.id, code: tenant.code, plan: tenant.plan, status: tenant.status },
        users: { count: used.users, max: limits.maxUsers },
        items: { count: used.items },
        storage: { bytes: used.storageBytes, maxBytes, usedRatio: used.storageBytes / maxBytes },
        limits,
      };
    }),
  );
};
