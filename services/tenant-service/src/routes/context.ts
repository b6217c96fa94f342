/** What every tenant-scoped route file uses: its options, the tenant's transaction, the audit trail, the admin check. */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { Queryable } from "../db/database.js";
import { forbidden } from "../errors.js";
import { AuditLogRepository } from "../repositories/audit.js";
import type { TenantRecord } from "../repositories/tenants.js";
import { TenantParam } from "../schemas.js";
import type { Services } from "../services.js";

export interface RouteOptions {
  readonly services: Services;
  /** Registered under /v1/tenants/:tenant (true) or /v1 (false): the path then has a {tenant} parameter too. */
  readonly tenantInPath?: boolean;
}

/**
 * A tenant-scoped route's path parameters: its own, and {tenant} when the routes are registered under
 * /v1/tenants/:tenant. (X-Tenant-ID is documented for every tenant-scoped route by plugins/openapi.ts.)
 */
export function tenantRequest<Shape extends z.ZodRawShape>(options: RouteOptions, params: Shape) {
  return { params: options.tenantInPath ? TenantParam.extend(params) : z.object(params) };
}

/**
 * Runs `work` in one transaction in the request's tenant context (set by the tenant-context plugin): row-level
 * security then holds as well as the repositories' tenant predicate.
 */
export function inTenant<T>(services: Services, request: FastifyRequest, work: (tx: Queryable, tenant: TenantRecord) => Promise<T>): Promise<T> {
  const tenant = request.tenant!;
  return services.db.transaction({ tenantId: tenant.id }, (tx) => work(tx, tenant));
}

/** Records a change made for `request` in its tenant's audit log, in the transaction `tx` that makes it. */
export function audit(tx: Queryable, request: FastifyRequest, action: string, entityType: string, entityId: string, details?: Record<string, unknown>): Promise<void> {
  return new AuditLogRepository(tx, request.tenant!.id).record({ actor: request.principal!.subject, action, entityType, entityId, requestId: request.id, details });
}

export function requireTenantAdmin(request: FastifyRequest): void {
  if (!request.principal!.isTenantAdmin && !request.principal!.isPlatformAdmin) {
    throw forbidden("this needs the tenant:admin scope");
  }
}
