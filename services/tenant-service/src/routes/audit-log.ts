/** A tenant's audit log, newest first: tenant administrators only. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { decodeCursor } from "../cursor.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { ListQuery, Timestamp, clampLimit, errorResponses, pageOf } from "../schemas.js";
import { inTenant, requireTenantAdmin, tenantRequest, type RouteOptions } from "./context.js";

export const AuditLogQuery = ListQuery.extend({ entityId: z.uuid().optional() });

export const AuditEvent = z
  .object({
    id: z.uuid(),
    occurredAt: Timestamp,
    actor: z.string().describe("The token's subject, or worker"),
    action: z.string().describe("e.g. item.create, user.delete, tenant.update"),
    entityType: z.string(),
    entityId: z.uuid().nullable(),
    requestId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "AuditEvent", description: "A change recorded in the tenant's audit log" });

export const AuditEventPage = pageOf(AuditEvent).meta({ id: "AuditEventPage", description: "A page of the tenant's audit log, newest first" });

export const auditLogRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const schema = {
    ...tenantRequest(options, {}),
    querystring: AuditLogQuery,
    tags: ["audit"],
    response: { 200: AuditEventPage, ...errorResponses(400, 401, 403, 404, 429) },
  };
  app.get("/audit-log", { config: { tenantScoped: true }, schema }, async (request) => {
    requireTenantAdmin(request);
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    return inTenant(services, request, (tx, tenant) => new AuditLogRepository(tx, tenant.id).list({ limit, after, entityId: request.query.entityId }));
  });
};
