/** A tenant's users: members read them, tenant administrators manage them. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { conflict, notFound } from "../errors.js";
import { decodeCursor } from "../cursor.js";
import { ItemRepository } from "../repositories/items.js";
import { UserRepository } from "../repositories/users.js";
import { effectiveLimits } from "../plans.js";
import { IdParam, ListQuery, NoContent, Timestamp, clampLimit, errorResponses, pageOf } from "../schemas.js";
import { audit, inTenant, tenantRequest, requireTenantAdmin, type RouteOptions } from "./context.js";
import { recordEvent } from "./webhooks.js";

export const CreateUserBody = z.object({
  email: z.email("must be an email address").max(320),
  displayName: z.string().trim().max(200).optional(),
  role: z.enum(["admin", "member"]).optional(),
});

export const PatchUserBody = z
  .object({
    displayName: z.string().trim().max(200).optional(),
    role: z.enum(["admin", "member"]).optional(),
    status: z.enum(["active", "disabled"]).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

export const User = z
  .object({
    id: z.uuid(),
    email: z.string(),
    displayName: z.string(),
    role: z.enum(["admin", "member"]),
    status: z.enum(["active", "disabled"]),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: "User", description: "The user" });

export const UserPage = pageOf(User).meta({ id: "UserPage", description: "A page of the tenant's users, newest first" });

export const userRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const scoped = { tenantScoped: true };
  const collection = tenantRequest(options, {});
  const one = tenantRequest(options, IdParam.shape);
  const tags = ["users"];

  app.post("/users", {
      config: scoped,
      schema: { ...collection, body: CreateUserBody, tags, response: { 201: User, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429) } },
    }, async (request, reply) => {
    requireTenantAdmin(request);
    const created = await inTenant(services, request, async (tx, inTx) => {
      const users = new UserRepository(tx, inTx.id);
      const locked = await users.lockMaxUsers();
      const tenant = await inTx.record();
      const maxUsers = locked ?? effectiveLimits(tenant).maxUsers;
      if ((await users.count()) >= maxUsers) {
        throw conflict(`tenant ${tenant.code} already has its maximum of ${maxUsers} users (plan ${tenant.plan})`, "user_quota_exceeded");
      }
      const role = request.body.role ?? "member";
      const user = await users.create({ email: request.body.email, displayName: request.body.displayName ?? "", role });
      await Promise.all([audit(tx, request, "user.create", "user", user.id, { email: request.body.email, role }), recordEvent(tx, inTx.id, "user.created", user)]);
      return user;
    });
    return reply.code(201).send(created);
  });

  app.get("/users", {
      config: scoped,
      schema: { ...collection, querystring: ListQuery, tags, response: { 200: UserPage, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => {
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    return inTenant(services, request, (tx, tenant) => new UserRepository(tx, tenant.id).list({ limit, after }));
  });

  app.get("/users/:id", { config: scoped, schema: { ...one, tags, response: { 200: User, ...errorResponses(400, 401, 403, 404, 429) } } }, async (request) => {
    const user = await inTenant(services, request, (tx, tenant) => new UserRepository(tx, tenant.id).find(request.params.id));
    if (!user) throw notFound("user");
    return user;
  });

  app.patch("/users/:id", {
      config: scoped,
      schema: { ...one, body: PatchUserBody, tags, response: { 200: User, ...errorResponses(400, 401, 403, 404, 413, 415, 429) } },
    }, async (request) => {
    requireTenantAdmin(request);
    const b = request.body;
    const user = await inTenant(services, request, async (tx, tenant) => {
      const updated = await new UserRepository(tx, tenant.id).update(request.params.id, b);
      if (updated) await Promise.all([audit(tx, request, "user.update", "user", request.params.id, { changed: Object.keys(b) }), recordEvent(tx, tenant.id, "user.updated", updated)]);
      return updated;
    });
    if (!user) throw notFound("user");
    return user;
  });

  app.delete("/users/:id", {
      config: scoped,
      schema: { ...one, tags, response: { 204: NoContent, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429) } },
    },
    async (request, reply) => {
    requireTenantAdmin(request);
    const deleted = await inTenant(services, request, async (tx, tenant) => {
      const owned = await new ItemRepository(tx, tenant.id).countOwnedBy(request.params.id);
      if (owned > 0) throw conflict(`the user still owns ${owned} items: reassign or delete them first`, "user_owns_items");
      const found = await new UserRepository(tx, tenant.id).delete(request.params.id);
      if (found) await Promise.all([audit(tx, request, "user.delete", "user", request.params.id), recordEvent(tx, tenant.id, "user.deleted", { id: request.params.id })]);
      return found;
    });
    if (!deleted) throw notFound("user");
    return reply.code(204).send();
  });
};
