/** Tenant management: platform administrators create and change tenants; members read their own. */
import { randomUUID } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { conflict, forbidden } from "../errors.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { TenantRepository, type TenantRecord } from "../repositories/tenants.js";
import { Timestamp, TenantParam, errorResponses } from "../schemas.js";
import { enqueue, queueInstalled } from "../worker/queue.js";
import { tenantRecord, type RouteOptions } from "./context.js";

const plan = z.enum(["free", "starter", "business", "enterprise"]);

export const CreateTenantBody = z.object({
  code: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen"),
  name: z.string().trim().min(1).max(200),
  plan: plan.optional(),
  maxUsers: z.number().int().min(1).max(1_000_000).optional(),
  maxStorageGb: z.number().int().min(1).max(100_000).optional(),
  features: z.record(z.string(), z.unknown()).optional(),
});

export const PatchTenantBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    status: z.enum(["active", "suspended"]).optional(),
    plan: plan.optional(),
    maxUsers: z.number().int().min(1).max(1_000_000).optional(),
    maxStorageGb: z.number().int().min(1).max(100_000).optional(),
    features: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

export const Tenant = z
  .object({
    id: z.uuid(),
    code: z.string(),
    name: z.string(),
    status: z.enum(["active", "suspended"]),
    plan,
    maxUsers: z.int(),
    maxStorageGb: z.int(),
    features: z.record(z.string(), z.unknown()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: "Tenant", description: "The tenant" });

export const tenantView = (t: TenantRecord): z.output<typeof Tenant> => ({
  id: t.id,
  code: t.code,
  name: t.name,
  status: t.status,
  plan: t.plan as z.output<typeof plan>,
  maxUsers: t.maxUsers,
  maxStorageGb: t.maxStorageGb,
  features: t.features,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});

export const tenantRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const { db, directory } = services;

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
    const tenant = await db.transaction({ platformAdmin: true, tenantId: id }, async (tx) => {
      const tenants = new TenantRepository(tx);
      if (await tenants.codeTaken(b.code)) throw conflict(`tenant code "${b.code}" is taken`, "tenant_code_taken");
      const created = await tenants.create({ id, ...b });
      await new AuditLogRepository(tx, id).record({ actor: request.principal!.subject, action: "tenant.create", entityType: "tenant", entityId: id, requestId: request.id, details: { code: b.code, plan: b.plan ?? "free" } });
      // The follow-ups commit with the tenant or not at all.
      if (await queueInstalled(tx)) await enqueue(tx, "tenant.provision", { tenantId: id }, `tenant.provision:${id}`);
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
      schema: { params: TenantParam, body: PatchTenantBody, tags: ["tenants"], response: { 200: Tenant, ...errorResponses(400, 401, 403, 404, 413, 415, 429) } },
    }, async (request) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("changing a tenant needs the platform:admin scope");
    const b = request.body;
    const current = await tenantRecord(services, request);
    const tenant = await db.transaction({ platformAdmin: true, tenantId: current.id }, async (tx) => {
      const updated = await new TenantRepository(tx).update(current.id, b);
      await new AuditLogRepository(tx, current.id).record({ actor: request.principal!.subject, action: "tenant.update", entityType: "tenant", entityId: current.id, requestId: request.id, details: b });
      return updated;
    });
    directory.invalidate(tenant);
    return tenantView(tenant);
  });
};
