import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { randomUUID } from "node:crypto";
import { conflict, forbidden } from "../errors.js";
import { TENANT_COLUMNS, toTenant, writeAudit, type TenantRecord } from "../tenants.js";
import type { Services } from "../app.js";
import { CreateTenantBody, PatchTenantBody, TenantParam } from "../schemas.js";
import { enqueue, queueInstalled } from "../worker/queue.js";

export const tenantView = (t: TenantRecord) => ({
  id: t.id,
  code: t.code,
  name: t.name,
  status: t.status,
  plan: t.plan,
  maxUsers: t.maxUsers,
  maxStorageGb: t.maxStorageGb,
  features: t.features,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});

/** Tenant management: platform administrators create and change tenants; members read their own. */
export async function tenantRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { db, directory } = services;

  r.post("/v1/tenants", { schema: { body: CreateTenantBody, tags: ["tenants"] } }, async (request, reply) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("creating tenants needs the platform:admin scope");
    const b = request.body;
    const id = randomUUID();
    const row = await db.transaction({ platformAdmin: true, tenantId: id }, async (tx) => {
      const existing = await tx.query("SELECT 1 FROM platform.tenants WHERE code = $1", [b.code]);
      if (existing.rows.length > 0) throw conflict(`tenant code "${b.code}" is taken`, "tenant_code_taken");
      const { rows } = await tx.query(
        `INSERT INTO platform.tenants (id, code, name, plan, max_users, max_storage_gb, features)
         VALUES ($1, $2, $3, COALESCE($4, 'free'), COALESCE($5, 10), COALESCE($6, 1), COALESCE($7::jsonb, '{}'::jsonb)) RETURNING ${TENANT_COLUMNS}`,
        [id, b.code, b.name, b.plan ?? null, b.maxUsers ?? null, b.maxStorageGb ?? null, b.features ? JSON.stringify(b.features) : null],
      );
      await writeAudit(tx, { tenantId: id, actor: request.principal!.subject, action: "tenant.create", entityType: "tenant", entityId: id, requestId: request.id, details: { code: b.code, plan: b.plan ?? "free" } });
      // The follow-ups commit with the tenant or not at all.
      if (await queueInstalled(tx)) await enqueue(tx, "tenant.provision", { tenantId: id }, `tenant.provision:${id}`);
      else request.log.warn({ tenantId: id }, "queue not installed (worker --install-queue): provisioning follow-ups skipped");
      return rows[0]!;
    });
    const tenant = toTenant(row);
    directory.invalidate(tenant);
    return reply.code(201).header("location", `/v1/tenants/${tenant.id}`).send(tenantView(tenant));
  });

  r.get("/v1/tenants/:tenant", { schema: { params: TenantParam, tags: ["tenants"] } }, async (request) => tenantView(request.tenant!));

  r.patch("/v1/tenants/:tenant", { schema: { params: TenantParam, body: PatchTenantBody, tags: ["tenants"] } }, async (request) => {
    if (!request.principal!.isPlatformAdmin) throw forbidden("changing a tenant needs the platform:admin scope");
    const b = request.body;
    const current = request.tenant!;
    const row = await db.transaction({ platformAdmin: true, tenantId: current.id }, async (tx) => {
      const { rows } = await tx.query(
        `UPDATE platform.tenants SET name = COALESCE($2, name), status = COALESCE($3, status), plan = COALESCE($4, plan),
                max_users = COALESCE($5, max_users), max_storage_gb = COALESCE($6, max_storage_gb),
                features = COALESCE($7::jsonb, features), updated_at = now()
          WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
        [current.id, b.name ?? null, b.status ?? null, b.plan ?? null, b.maxUsers ?? null, b.maxStorageGb ?? null, b.features ? JSON.stringify(b.features) : null],
      );
      await writeAudit(tx, { tenantId: current.id, actor: request.principal!.subject, action: "tenant.update", entityType: "tenant", entityId: current.id, requestId: request.id, details: b });
      return rows[0]!;
    });
    const tenant = toTenant(row);
    directory.invalidate(tenant);
    return tenantView(tenant);
  });
}
