import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError, conflict, forbidden, notFound } from "../errors.js";
import { decodeCursor, encodeCursor } from "../cursor.js";
import { writeAudit, type TenantRecord } from "../tenants.js";
import type { Queryable } from "../db/database.js";
import type { Services } from "../app.js";
import {
  CreateItemBody,
  CreateUserBody,
  IdParam,
  ListItemsQuery,
  ListQuery,
  PatchItemBody,
  PatchUserBody,
  clampLimit,
} from "../schemas.js";

const USER_COLUMNS = "id, email, display_name, role, status, created_at, updated_at";
const ITEM_COLUMNS = "id, owner_id, title, body, tags, size_bytes, created_at, updated_at";

const user = (r: Record<string, unknown>) => ({
  id: r.id,
  email: r.email,
  displayName: r.display_name,
  role: r.role,
  status: r.status,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const item = (r: Record<string, unknown>) => ({
  id: r.id,
  ownerId: r.owner_id,
  title: r.title,
  body: r.body,
  tags: r.tags,
  sizeBytes: Number(r.size_bytes),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

function requireTenantAdmin(request: FastifyRequest): void {
  if (!request.principal!.isTenantAdmin && !request.principal!.isPlatformAdmin) {
    throw forbidden("this needs the tenant:admin scope");
  }
}

/**
 * The routes of one tenant's data. Registered twice: under /v1/tenants/:tenant and under /v1 (tenant from the
 * X-Tenant-ID header, the subdomain or the token). Every query names the tenant explicitly, so Citus routes it to
 * one shard, and runs in a transaction whose tenant context row-level security enforces as well.
 */
export async function tenantDataRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { db } = services;

  const inTenant = <T>(request: FastifyRequest, work: (tx: Queryable, tenant: TenantRecord) => Promise<T>): Promise<T> => {
    const tenant = request.tenant!;
    return db.transaction({ tenantId: tenant.id }, (tx) => work(tx, tenant));
  };
  const audit = (tx: Queryable, request: FastifyRequest, action: string, entityType: string, entityId: string, details?: Record<string, unknown>) =>
    writeAudit(tx, { tenantId: request.tenant!.id, actor: request.principal!.subject, action, entityType, entityId, requestId: request.id, details });

  // ---- users
  r.post("/users", { schema: { body: CreateUserBody, tags: ["users"] } }, async (request, reply) => {
    requireTenantAdmin(request);
    const created = await inTenant(request, async (tx, tenant) => {
      // Lock the tenant row: concurrent creations cannot both pass the quota check.
      const locked = await tx.query<{ max_users: number }>("SELECT max_users FROM platform.tenants WHERE id = $1 FOR UPDATE", [tenant.id]);
      const { rows: count } = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [tenant.id]);
      const maxUsers = locked.rows[0]?.max_users ?? tenant.maxUsers;
      if ((count[0]?.n ?? 0) >= maxUsers) {
        throw conflict(`tenant ${tenant.code} already has its maximum of ${maxUsers} users (plan ${tenant.plan})`, "user_quota_exceeded");
      }
      const { rows } = await tx.query(
        `INSERT INTO platform.users (tenant_id, email, display_name, role) VALUES ($1, $2, $3, $4) RETURNING ${USER_COLUMNS}`,
        [tenant.id, request.body.email, request.body.displayName ?? "", request.body.role ?? "member"],
      );
      await audit(tx, request, "user.create", "user", rows[0]!.id as string, { email: request.body.email, role: request.body.role ?? "member" });
      return rows[0]!;
    });
    return reply.code(201).send(user(created));
  });

  r.get("/users", { schema: { querystring: ListQuery, tags: ["users"] } }, async (request) => {
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    const rows = await inTenant(request, async (tx, tenant) =>
      (
        await tx.query(
          `SELECT ${USER_COLUMNS} FROM platform.users WHERE tenant_id = $1
             ${after ? "AND (created_at, id) < ($3::timestamptz, $4::uuid)" : ""}
           ORDER BY created_at DESC, id DESC LIMIT $2`,
          after ? [tenant.id, limit + 1, after.createdAt, after.id] : [tenant.id, limit + 1],
        )
      ).rows,
    );
    return page(rows, limit, user);
  });

  r.get("/users/:id", { schema: { params: IdParam.passthrough(), tags: ["users"] } }, async (request) => {
    const row = await inTenant(request, async (tx, tenant) =>
      (await tx.query(`SELECT ${USER_COLUMNS} FROM platform.users WHERE tenant_id = $1 AND id = $2`, [tenant.id, request.params.id])).rows[0],
    );
    if (!row) throw notFound("user");
    return user(row);
  });

  r.patch("/users/:id", { schema: { params: IdParam.passthrough(), body: PatchUserBody, tags: ["users"] } }, async (request) => {
    requireTenantAdmin(request);
    const b = request.body;
    const row = await inTenant(request, async (tx, tenant) => {
      const { rows } = await tx.query(
        `UPDATE platform.users SET display_name = COALESCE($3, display_name), role = COALESCE($4, role), status = COALESCE($5, status), updated_at = now()
          WHERE tenant_id = $1 AND id = $2 RETURNING ${USER_COLUMNS}`,
        [tenant.id, request.params.id, b.displayName ?? null, b.role ?? null, b.status ?? null],
      );
      if (rows[0]) await audit(tx, request, "user.update", "user", request.params.id, { changed: Object.keys(b) });
      return rows[0];
    });
    if (!row) throw notFound("user");
    return user(row);
  });

  r.delete("/users/:id", { schema: { params: IdParam.passthrough(), tags: ["users"] } }, async (request, reply) => {
    requireTenantAdmin(request);
    const deleted = await inTenant(request, async (tx, tenant) => {
      const owned = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1 AND owner_id = $2", [tenant.id, request.params.id]);
      if ((owned.rows[0]?.n ?? 0) > 0) {
        throw conflict(`the user still owns ${owned.rows[0]!.n} items: reassign or delete them first`, "user_owns_items");
      }
      const { rowCount } = await tx.query("DELETE FROM platform.users WHERE tenant_id = $1 AND id = $2", [tenant.id, request.params.id]);
      if (rowCount > 0) await audit(tx, request, "user.delete", "user", request.params.id);
      return rowCount > 0;
    });
    if (!deleted) throw notFound("user");
    return reply.code(204).send();
  });

  // ---- items
  r.post("/items", { schema: { body: CreateItemBody, tags: ["items"] } }, async (request, reply) => {
    const b = request.body;
    const row = await inTenant(request, async (tx, tenant) => {
      await requireOwner(tx, tenant.id, b.ownerId);
      const { rows } = await tx.query(
        `INSERT INTO platform.items (tenant_id, owner_id, title, body, tags) VALUES ($1, $2, $3, $4, $5) RETURNING ${ITEM_COLUMNS}`,
        [tenant.id, b.ownerId.toLowerCase(), b.title, b.body ?? "", b.tags ?? []],
      );
      await audit(tx, request, "item.create", "item", rows[0]!.id as string, { title: b.title });
      return rows[0]!;
    });
    return reply.code(201).send(item(row));
  });

  r.get("/items", { schema: { querystring: ListItemsQuery, tags: ["items"] } }, async (request) => {
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    const rows = await inTenant(request, async (tx, tenant) => {
      const params: unknown[] = [tenant.id, limit + 1];
      const where = ["tenant_id = $1"];
      if (request.query.ownerId) {
        params.push(request.query.ownerId.toLowerCase());
        where.push(`owner_id = $${params.length}`);
      }
      if (request.query.q) {
        params.push(request.query.q);
        where.push(`search @@ plainto_tsquery('simple', $${params.length})`);
      }
      if (after) {
        params.push(after.createdAt, after.id);
        where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
      }
      return (await tx.query(`SELECT ${ITEM_COLUMNS} FROM platform.items WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT $2`, params)).rows;
    });
    return page(rows, limit, item);
  });

  r.get("/items/:id", { schema: { params: IdParam.passthrough(), tags: ["items"] } }, async (request) => {
    const row = await inTenant(request, async (tx, tenant) =>
      (await tx.query(`SELECT ${ITEM_COLUMNS} FROM platform.items WHERE tenant_id = $1 AND id = $2`, [tenant.id, request.params.id])).rows[0],
    );
    if (!row) throw notFound("item");
    return item(row);
  });

  r.patch("/items/:id", { schema: { params: IdParam.passthrough(), body: PatchItemBody, tags: ["items"] } }, async (request) => {
    const b = request.body;
    const row = await inTenant(request, async (tx, tenant) => {
      if (b.ownerId) await requireOwner(tx, tenant.id, b.ownerId);
      const { rows } = await tx.query(
        `UPDATE platform.items SET owner_id = COALESCE($3, owner_id), title = COALESCE($4, title), body = COALESCE($5, body),
                tags = COALESCE($6, tags), updated_at = now()
          WHERE tenant_id = $1 AND id = $2 RETURNING ${ITEM_COLUMNS}`,
        [tenant.id, request.params.id, b.ownerId?.toLowerCase() ?? null, b.title ?? null, b.body ?? null, b.tags ?? null],
      );
      if (rows[0]) await audit(tx, request, "item.update", "item", request.params.id, { changed: Object.keys(b) });
      return rows[0];
    });
    if (!row) throw notFound("item");
    return item(row);
  });

  r.delete("/items/:id", { schema: { params: IdParam.passthrough(), tags: ["items"] } }, async (request, reply) => {
    const deleted = await inTenant(request, async (tx, tenant) => {
      const { rowCount } = await tx.query("DELETE FROM platform.items WHERE tenant_id = $1 AND id = $2", [tenant.id, request.params.id]);
      if (rowCount > 0) await audit(tx, request, "item.delete", "item", request.params.id);
      return rowCount > 0;
    });
    if (!deleted) throw notFound("item");
    return reply.code(204).send();
  });

  // ---- audit log and usage
  r.get(
    "/audit-log",
    { schema: { querystring: ListQuery.extend({ entityId: z.uuid().optional() }), tags: ["audit"] } },
    async (request) => {
      requireTenantAdmin(request);
      const limit = clampLimit(request.query.limit);
      const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
      const rows = await inTenant(request, async (tx, tenant) => {
        const params: unknown[] = [tenant.id, limit + 1];
        const where = ["tenant_id = $1"];
        if (request.query.entityId) {
          params.push(request.query.entityId.toLowerCase());
          where.push(`entity_id = $${params.length}`);
        }
        if (after) {
          params.push(after.createdAt, after.id);
          where.push(`(occurred_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
        }
        return (
          await tx.query(
            `SELECT id, occurred_at AS created_at, actor, action, entity_type, entity_id, request_id, details FROM platform.audit_log
              WHERE ${where.join(" AND ")} ORDER BY occurred_at DESC, id DESC LIMIT $2`,
            params,
          )
        ).rows;
      });
      return page(rows, limit, (e) => ({
        id: e.id,
        occurredAt: e.created_at,
        actor: e.actor,
        action: e.action,
        entityType: e.entity_type,
        entityId: e.entity_id,
        requestId: e.request_id,
        details: e.details,
      }));
    },
  );

  r.get("/usage", { schema: { tags: ["usage"] } }, async (request) => {
    return inTenant(request, async (tx, tenant) => {
      const { rows } = await tx.query<{ users: number; items: number; storage: string }>(
        `SELECT (SELECT count(*)::int FROM platform.users WHERE tenant_id = $1) AS users,
                (SELECT count(*)::int FROM platform.items WHERE tenant_id = $1) AS items,
                (SELECT coalesce(sum(size_bytes), 0)::text FROM platform.items WHERE tenant_id = $1) AS storage`,
        [tenant.id],
      );
      const u = rows[0]!;
      const storageBytes = Number(u.storage);
      return {
        tenant: { id: tenant.id, code: tenant.code, plan: tenant.plan, status: tenant.status },
        users: { count: u.users, max: tenant.maxUsers },
        items: { count: u.items },
        storage: { bytes: storageBytes, maxBytes: tenant.maxStorageGb * 1024 ** 3, usedRatio: storageBytes / (tenant.maxStorageGb * 1024 ** 3) },
      };
    });
  });
}

async function requireOwner(tx: Queryable, tenantId: string, ownerId: string): Promise<void> {
  const { rows } = await tx.query("SELECT 1 FROM platform.users WHERE tenant_id = $1 AND id = $2", [tenantId, ownerId.toLowerCase()]);
  if (rows.length === 0) throw new AppError(400, "validation_failed", "body.ownerId: is not a user of this tenant");
}

function page<T extends Record<string, unknown>, R>(rows: T[], limit: number, map: (row: T) => R): { data: R[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const visible = more ? rows.slice(0, limit) : rows;
  const last = visible.at(-1);
  return { data: visible.map(map), nextCursor: more && last ? encodeCursor(last.created_at as Date, last.id as string) : null };
}
