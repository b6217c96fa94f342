/** Tenant management: platform administrators create, list and change tenants; members read their own. */
import { randomUUID } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { conflict, forbidden, notFound } from "../errors.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { TENANT_STATUSES, TenantRepository, type TenantRecord } from "../repositories/tenants.js";
import { decodeCursor } from "../cursor.js";
import { LIMIT_NAMES, PLAN_NAMES, effectiveLimits, type LimitOverrides as LimitOverrideValues } from "../plans.js";
import { Limits, ListQuery, Timestamp, TenantParam, clampLimit, errorResponses, pageOf } from "../schemas.js";
import { PROVISION_TASK, type ProvisionPayload } from "../worker/provision.js";
import { enqueue, queueInstalled } from "../worker/queue.js";
import { tenantRecord, type RouteOptions } from "./context.js";

const plan = z.enum(PLAN_NAMES);
const status = z.enum(TENANT_STATUSES);
/** What a PATCH may set: `deleting` is DELETE's, and leaving it is the erasure's cancel (routes/erasures.ts). */
const settableStatus = z.enum(["active", "suspended"]);

/** Each limit's bounds as a tenant's own value: the service enforces whatever is stored. */
const limitInputs = {
  maxUsers: z.number().int().min(1).max(1_000_000),
  maxStorageGb: z.number().int().min(1).max(100_000),
  requestsPerMinute: z.number().int().min(1).max(10_000_000),
  concurrentRequests: z.number().int().min(1).max(1_000),
};

export const CreateTenantBody = z.object({
  code: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen"),
  name: z.string().trim().min(1).max(200),
  plan: plan.optional(),
  maxUsers: limitInputs.maxUsers.optional(),
  maxStorageGb: limitInputs.maxStorageGb.optional(),
  requestsPerMinute: limitInputs.requestsPerMinute.optional(),
  concurrentRequests: limitInputs.concurrentRequests.optional(),
  features: z.record(z.string(), z.unknown()).optional(),
  adminEmail: z.email("must be an email address").max(320).optional().describe("The tenant's first administrator: the provisioning job creates this user with the admin role"),
});

/** A limit given here becomes the tenant's own; null gives it back its plan's. */
export const PatchTenantBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    status: settableStatus.optional(),
    plan: plan.optional(),
    maxUsers: limitInputs.maxUsers.nullable().optional(),
    maxStorageGb: limitInputs.maxStorageGb.nullable().optional(),
    requestsPerMinute: limitInputs.requestsPerMinute.nullable().optional(),
    concurrentRequests: limitInputs.concurrentRequests.nullable().optional(),
    features: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

export const ListTenantsQuery = ListQuery.extend({
  status: status.optional(),
  plan: plan.optional(),
  q: z.string().trim().min(1).max(100).optional().describe("The start of the tenant's code or name, in any case"),
});

export const LimitOverrides = z
  .object({
    maxUsers: z.int().nullable(),
    maxStorageGb: z.int().nullable(),
    requestsPerMinute: z.int().nullable(),
    concurrentRequests: z.int().nullable(),
  })
  .meta({ id: "LimitOverrides", description: "The tenant's own limits; null: its plan's applies" });

export const Tenant = z
  .object({
    id: z.uuid(),
    code: z.string(),
    name: z.string(),
    status,
    plan,
    maxUsers: z.int().describe("limits.maxUsers"),
    maxStorageGb: z.int().describe("limits.maxStorageGb"),
    limits: Limits,
    overrides: LimitOverrides,
    features: z.record(z.string(), z.unknown()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: "Tenant", description: "The tenant" });

export const TenantPage = pageOf(Tenant).meta({ id: "TenantPage", description: "A page of tenants, newest first" });

export const tenantView = (t: TenantRecord): z.output<typeof Tenant> => {
  const limits = effectiveLimits(t);
  return {
    id: t.id,
    code: t.code,
    name: t.name,
    status: t.status,
    plan: t.plan as z.output<typeof plan>,
    maxUsers: limits.maxUsers,
    maxStorageGb: limits.maxStorageGb,
    limits,
    overrides: t.overrides,
    features: t.features,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
};

/** The limits a request body names, as overrides (absent ones left out). */
function overridesIn(body: Partial<Record<(typeof LIMIT_NAMES)[number], number | null | undefined>>): Partial<LimitOverrideValues> {
  return Object.fromEntries(LIMIT_NAMES.filter((name) => body[name] !== undefined).map((name) => [name, body[name]]));
}

export const tenantRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const { db, directory, limiter } = services;

  app.get("/v1/tenants", {
      config: { tenantScoped: false },
      schema: { querystring: ListTenantsQuery, tags: ["tenants"], response: { 200: TenantPage, ...errorResponses(400, 401, 403, 429) } },
    }, async (request) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("listing tenants needs the platform:admin scope");
    const { status: byStatus, plan: byPlan, q } = request.query;
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    const page = await db.transaction({ platformAdmin: true }, (tx) =>
      new TenantRepository(tx).list({ status: byStatus, plan: byPlan, q, limit, after, statuses: status.options, plans: PLAN_NAMES }),
    );
    return { data: page.data.map(tenantView), nextCursor: page.nextCursor };
  });

  app.post("/v1/tenants", {
      config: { tenantScoped: false },
      schema: {
        body: CreateTenantBody,
        tags: ["tenants"],
        response: { 201: Tenant, ...errorResponses(400, 401, 403, 409, 413, 415, 429) },
        responseHeaders: { 201: { location: "The new tenant's path: /v1/tenants/{id}" } },
      },
    }, async (request, reply) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("creating tenants needs the platform:admin scope");
    const b = request.body;
    const id = randomUUID();
    const tenant = await db.transaction({ platformAdmin: true, tenantId: id, registry: true }, async (tx) => {
      const tenants = new TenantRepository(tx);
      if (await tenants.codeTaken(b.code)) throw conflict(`tenant code "${b.code}" is taken`, "tenant_code_taken");
      const created = await tenants.create({ id, code: b.code, name: b.name, plan: b.plan, overrides: overridesIn(b), features: b.features });
      await new AuditLogRepository(tx, id).record({ actor: request.principal!.subject, action: "tenant.create", entityType: "tenant", entityId: id, requestId: request.id, details: { code: b.code, plan: b.plan ?? "free", overrides: overridesIn(b), ...(b.adminEmail ? { adminEmail: b.adminEmail } : {}) } });
      // The follow-ups commit with the tenant or not at all (worker/provision.ts).
      const provision: ProvisionPayload = { tenantId: id, ...(b.adminEmail ? { adminEmail: b.adminEmail } : {}) };
      if (await queueInstalled(tx)) await enqueue(tx, PROVISION_TASK, { ...provision }, `${PROVISION_TASK}:${id}`);
      else request.log.warn({ tenantId: id }, "queue not installed (worker --install-queue): provisioning follow-ups skipped");
      return created;
    });
    directory.invalidate(tenant);
    return reply.code(201).header("location", `/v1/tenants/${tenant.id}`).send(tenantView(tenant));
  });

  app.get("/v1/tenants/:tenant", {
      config: { tenantScoped: true },
      schema: { params: TenantParam, tags: ["tenants"], response: { 200: Tenant, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => tenantView(await tenantRecord(services, request)));

  app.patch("/v1/tenants/:tenant", {
      config: { tenantScoped: true },
      schema: { params: TenantParam, body: PatchTenantBody, tags: ["tenants"], response: { 200: Tenant, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429) } },
    }, async (request) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("changing a tenant needs the platform:admin scope");
    const b = request.body;
    const current = await tenantRecord(services, request);
    const tenant = await db.transaction({ platformAdmin: true, tenantId: current.id, registry: true }, async (tx) => {
      // Judged on the row as of this transaction: an erasure requested meanwhile is not undone by a PATCH.
      const locked = await new TenantRepository(tx).lock(current.id);
      if (!locked) throw notFound(`tenant "${current.id}"`);
      if (locked?.status === "deleting") throw conflict(`tenant ${current.code} is being erased: cancel the erasure first (POST /v1/tenants/${current.id}/erasure/cancel)`, "tenant_deleting");
      const updated = await new TenantRepository(tx).update(current.id, { name: b.name, status: b.status, plan: b.plan, overrides: overridesIn(b), features: b.features });
      await new AuditLogRepository(tx, current.id).record({ actor: request.principal!.subject, action: "tenant.update", entityType: "tenant", entityId: current.id, requestId: request.id, details: b });
      return updated;
    });
    directory.invalidate(tenant);
    limiter.changed(tenant);
    return tenantView(tenant);
  });
};
