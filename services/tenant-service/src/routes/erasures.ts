/**
 * Tenant erasure (platform administrators): DELETE /v1/tenants/{tenant} marks the tenant `deleting` and schedules the
 * worker's tenant.erase job at the end of the grace period (TENANT_ERASURE_GRACE_SECONDS); until the job starts,
 * POST /v1/tenants/{tenant}/erasure/cancel gives the tenant its status back. The platform's record of each request
 * (platform.tenant_erasures) outlives the tenant: GET /v1/erasures/{tenantId}. The job: worker/erasure.ts.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { conflict, forbidden, notFound } from "../errors.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { ErasureRepository, type ErasureRecord } from "../repositories/erasures.js";
import { TenantRepository } from "../repositories/tenants.js";
import { TenantParam, Timestamp, errorResponses } from "../schemas.js";
import { ERASE_TASK, eraseJobKey } from "../worker/erasure.js";
import { dequeue, enqueue, queueInstalled } from "../worker/queue.js";
import { tenantRecord, type RouteOptions } from "./context.js";

export const Erasure = z
  .object({
    id: z.uuid(),
    tenantId: z.uuid(),
    state: z.enum(["scheduled", "cancelled", "erasing", "erased"]).describe("scheduled: in its grace period, cancellable; erasing: the job has begun; erased: every row is gone"),
    previousStatus: z.enum(["active", "suspended"]).describe("The status a cancellation gives back"),
    requestedBy: z.string().describe("The token subject that asked"),
    requestedAt: Timestamp,
    requestId: z.string().nullable(),
    eraseAfter: Timestamp.describe("The end of the grace period: the job runs from then"),
    cancelledBy: z.string().nullable(),
    cancelledAt: Timestamp.nullable(),
    startedAt: Timestamp.nullable(),
    erasedAt: Timestamp.nullable(),
    rowCounts: z.record(z.string(), z.int()).describe("Rows removed so far, by table"),
  })
  .meta({ id: "Erasure", description: "The platform's record of an erasure request: no tenant data, only its id, who, when and how many rows" });

const ErasureList = z.object({ data: z.array(Erasure) }).meta({ id: "ErasureList", description: "Every erasure request for the tenant id, newest first" });

const erasureView = (e: ErasureRecord): z.output<typeof Erasure> => ({
  id: e.id,
  tenantId: e.tenantId,
  state: e.state,
  previousStatus: e.previousStatus,
  requestedBy: e.requestedBy,
  requestedAt: e.requestedAt,
  requestId: e.requestId,
  eraseAfter: e.eraseAfter,
  cancelledBy: e.cancelledBy,
  cancelledAt: e.cancelledAt,
  startedAt: e.startedAt,
  erasedAt: e.erasedAt,
  rowCounts: e.rowCounts,
});

/** Attempts of the erasure job: graphile-worker backs off exponentially (capped near 6 hours), so about 3 days. */
const ERASE_MAX_ATTEMPTS = 25;

export const erasureRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const { db, directory, limiter, config } = services;

  app.delete("/v1/tenants/:tenant", {
      config: { tenantScoped: true },
      schema: {
        params: TenantParam,
        tags: ["erasure"],
        description: "Marks the tenant `deleting` (its own tokens are refused from then on) and erases it after TENANT_ERASURE_GRACE_SECONDS. Asking again returns the pending request unchanged.",
        response: { 202: Erasure, ...errorResponses(400, 401, 403, 404, 429) },
        responseHeaders: { 202: { location: "The erasure record's path: /v1/erasures/{tenantId}" } },
      },
    }, async (request, reply) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("erasing a tenant needs the platform:admin scope");
    const current = await tenantRecord(services, request);
    const { erasure, tenant } = await db.transaction({ platformAdmin: true, tenantId: current.id, registry: true }, async (tx) => {
      const tenants = new TenantRepository(tx);
      const row = await tenants.lock(current.id);
      if (!row) throw notFound(`tenant "${current.id}"`);
      const erasures = new ErasureRepository(tx);
      const pending = await erasures.open(row.id);
      if (pending) return { erasure: pending, tenant: row };
      const erasure = await erasures.request({
        tenantId: row.id,
        previousStatus: row.status === "suspended" ? "suspended" : "active",
        requestedBy: request.principal!.subject,
        requestId: request.id,
        graceSeconds: config.TENANT_ERASURE_GRACE_SECONDS,
      });
      const tenant = (await tenants.setStatus(row.id, "deleting"))!;
      await new AuditLogRepository(tx, row.id).record({ actor: request.principal!.subject, action: "tenant.erasure_requested", entityType: "tenant", entityId: row.id, requestId: request.id, details: { eraseAfter: erasure.eraseAfter.toISOString() } });
      // The job commits with the request or not at all; it runs at the end of the grace period.
      if (await queueInstalled(tx)) await enqueue(tx, ERASE_TASK, { tenantId: row.id }, eraseJobKey(row.id), { runAt: erasure.eraseAfter, maxAttempts: ERASE_MAX_ATTEMPTS });
      else request.log.warn({ tenantId: row.id }, "queue not installed (worker --install-queue): the erasure stays scheduled until a worker runs");
      return { erasure, tenant };
    });
    directory.invalidate(tenant);
    limiter.changed(tenant);
    return reply.code(202).header("location", `/v1/erasures/${tenant.id}`).send(erasureView(erasure));
  });

  app.post("/v1/tenants/:tenant/erasure/cancel", {
      config: { tenantScoped: true },
      schema: {
        params: TenantParam,
        tags: ["erasure"],
        description: "Cancels an erasure in its grace period: the tenant gets its status back. Once the job has begun, 409.",
        response: { 200: Erasure, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    }, async (request) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("cancelling an erasure needs the platform:admin scope");
    const current = await tenantRecord(services, request);
    const { erasure, tenant } = await db.transaction({ platformAdmin: true, tenantId: current.id, registry: true }, async (tx) => {
      const tenants = new TenantRepository(tx);
      if (!(await tenants.lock(current.id))) throw notFound(`tenant "${current.id}"`);
      const erasures = new ErasureRepository(tx);
      const pending = await erasures.open(current.id);
      if (!pending) throw conflict(`tenant ${current.code} has no erasure to cancel`, "no_erasure_pending");
      // The job takes the same row lock when it begins: either it has begun (nothing to cancel) or it never will.
      const erasure = await erasures.cancel(pending.id, request.principal!.subject, request.id);
      if (!erasure) throw conflict(`the erasure of tenant ${current.code} began at ${pending.startedAt?.toISOString()}: it cannot be cancelled`, "erasure_started");
      const tenant = (await tenants.setStatus(current.id, erasure.previousStatus))!;
      await new AuditLogRepository(tx, current.id).record({ actor: request.principal!.subject, action: "tenant.erasure_cancelled", entityType: "tenant", entityId: current.id, requestId: request.id, details: { erasureId: erasure.id } });
      if (await queueInstalled(tx)) await dequeue(tx, eraseJobKey(current.id));
      return { erasure, tenant };
    });
    directory.invalidate(tenant);
    limiter.changed(tenant);
    return erasureView(erasure);
  });

  app.get("/v1/erasures/:tenantId", {
      config: { tenantScoped: false },
      schema: {
        params: z.object({ tenantId: z.uuid("must be a tenant's id (a uuid)").transform((v) => v.toLowerCase()) }),
        tags: ["erasure"],
        description: "Every erasure request for a tenant id, newest first: also after the tenant is gone.",
        response: { 200: ErasureList, ...errorResponses(400, 401, 403, 404, 429) },
      },
    }, async (request) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("erasure records need the platform:admin scope");
    const history = await db.transaction({ platformAdmin: true }, (tx) => new ErasureRepository(tx).history(request.params.tenantId));
    if (history.length === 0) throw notFound(`erasure of tenant "${request.params.tenantId}"`);
    return { data: history.map(erasureView) };
  });
};
