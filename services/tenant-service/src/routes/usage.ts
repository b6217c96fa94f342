/** What a tenant uses against its plan's limits: any member. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { UsageRepository } from "../repositories/usage.js";
import { inTenant, type RouteOptions } from "./context.js";

export const usageRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get("/usage", { config: { tenantScoped: true }, schema: { tags: ["usage"] } }, async (request) =>
    inTenant(services, request, async (tx, tenant) => {
      const used = await new UsageRepository(tx, tenant.id).counts();
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
