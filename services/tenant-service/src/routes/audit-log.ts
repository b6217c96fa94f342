/** A tenant's audit log, newest first: tenant administrators only. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { decodeCursor } from "../cursor.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { ListQuery, clampLimit } from "../schemas.js";
import { inTenant, requireTenantAdmin, type RouteOptions } from "./context.js";

export const AuditLogQuery = ListQuery.extend({ entityId: z.uuid().optional() });

export const auditLogRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get("/audit-log", { config: { tenantScoped: true }, schema: { querystring: AuditLogQuery, tags: ["audit"] } }, async (request) => {
    requireTenantAdmin(request);
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    return inTenant(services, request, (tx, tenant) => new AuditLogRepository(tx, tenant.id).list({ limit, after, entityId: request.query.entityId }));
  });
};
