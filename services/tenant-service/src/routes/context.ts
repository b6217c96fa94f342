/** What every tenant-scoped route file uses: its options, the tenant's transaction, the audit trail, the admin check. */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { Queryable } from "../db/database.js";
import { forbidden } from "../errors.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { toTenant, type TenantRecord } from "../repositories/tenants.js";
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

/** The request's tenant inside its transaction: the id at once, the row when the work needs it. */
export interface TenantInTransaction {
  readonly id: string;
  record(): Promise<TenantRecord>;
}

/**
 * Runs `work` in one transaction in the request's tenant context (set by the tenant-context plugin): row-level
 * security then holds as well as the repositories' tenant predicate.
 *
 * When the tenant's row was not known before (TenantAccess), the statement that enters the tenant reads it too
 * (TenantContext.readTenant), in the round trip of the work's first statement (the pg pipeline, db/postgres.ts). No statement's answer
 * reaches the work before the row has been admitted, and a refusal rolls the transaction back.
 */
export function inTenant<T>(services: Services, request: FastifyRequest, work: (tx: Queryable, tenant: TenantInTransaction) => Promise<T>): Promise<T> {
  const access = request.tenant!;
  const { db, directory } = services;
  if (access.record) {
    const record = access.record;
    return db.transaction({ tenantId: access.id }, (tx) => work(tx, { id: access.id, record: async () => record }));
  }
  const mark = directory.mark;
  return db.transaction({ tenantId: access.id, readTenant: true }, async (tx) => {
    // The row comes from the statement that enters the tenant (platform.enter_tenant_row), under row-level security
    // (tenant_self: its own row and no other): no statement of its own.
    if (!tx.tenantRow) throw new Error("the database adapter did not return the tenant's row from entering it (TenantContext.readTenant)");
    const admitted = tx.tenantRow.then(async (found) => {
      const row = found ? toTenant(found) : undefined;
      directory.remember(access.id, row, mark);
      const tenant = access.admit(row);
      // The tenant's limits from this row: the rate limit of a request admitted without them is charged here.
      await services.limiter.learn(request, tenant);
      return tenant;
    });
    admitted.catch(() => {}); // awaited below, by every statement and before the commit
    const guarded: Queryable = {
      async query(sql, params) {
        const result = tx.query(sql, params);
        result.catch(() => {}); // a refused tenant is the error to report, not this statement's
        await admitted;
        return result;
      },
    } as Queryable;
    const result = await work(guarded, { id: access.id, record: () => admitted });
    await admitted;
    return result;
  });
}

/** The request's tenant row, outside a transaction: known already, or looked up (and judged) now. */
export async function tenantRecord(services: Services, request: FastifyRequest): Promise<TenantRecord> {
  const access = request.tenant!;
  if (access.record) return access.record;
  const tenant = access.admit(await services.directory.resolve(access.id));
  await services.limiter.learn(request, tenant);
  return tenant;
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
