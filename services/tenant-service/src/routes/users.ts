/** A tenant's users: members read them, tenant administrators manage them. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { conflict, notFound } from "../errors.js";
import { decodeCursor } from "../cursor.js";
import { ItemRepository } from "../repositories/items.js";
import { UserRepository } from "../repositories/users.js";
import { IdParam, ListQuery, clampLimit } from "../schemas.js";
import { audit, inTenant, requireTenantAdmin, type RouteOptions } from "./context.js";

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

export const userRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const scoped = { tenantScoped: true };

  app.post("/users", { config: scoped, schema: { body: CreateUserBody, tags: ["users"] } }, async (request, reply) => {
    requireTenantAdmin(request);
    const created = await inTenant(services, request, async (tx, tenant) => {
      const users = new UserRepository(tx, tenant.id);
      const maxUsers = (await users.lockMaxUsers()) ?? tenant.maxUsers;
      if ((await users.count()) >= maxUsers) {
        throw conflict(`tenant ${tenant.code} already has its maximum of ${maxUsers} users (plan ${tenant.plan})`, "user_quota_exceeded");
      }
      const role = request.body.role ?? "member";
      const user = await users.create({ email: request.body.email, displayName: request.body.displayName ?? "", role });
      await audit(tx, request, "user.create", "user", user.id, { email: request.body.email, role });
      return user;
    });
    return reply.code(201).send(created);
  });

  app.get("/users", { config: scoped, schema: { querystring: ListQuery, tags: ["users"] } }, async (request) => {
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    return inTenant(services, request, (tx, tenant) => new UserRepository(tx, tenant.id).list({ limit, after }));
  });

  app.get("/users/:id", { config: scoped, schema: { params: IdParam.passthrough(), tags: ["users"] } }, async (request) => {
    const user = await inTenant(services, request, (tx, tenant) => new UserRepository(tx, tenant.id).find(request.params.id));
    if (!user) throw notFound("user");
    return user;
  });

  app.patch("/users/:id", { config: scoped, schema: { params: IdParam.passthrough(), body: PatchUserBody, tags: ["users"] } }, async (request) => {
    requireTenantAdmin(request);
    const b = request.body;
    const user = await inTenant(services, request, async (tx, tenant) => {
      const updated = await new UserRepository(tx, tenant.id).update(request.params.id, b);
      if (updated) await audit(tx, request, "user.update", "user", request.params.id, { changed: Object.keys(b) });
      return updated;
    });
    if (!user) throw notFound("user");
    return user;
  });

  app.delete("/users/:id", { config: scoped, schema: { params: IdParam.passthrough(), tags: ["users"] } }, async (request, reply) => {
    requireTenantAdmin(request);
    const deleted = await inTenant(services, request, async (tx, tenant) => {
      const owned = await new ItemRepository(tx, tenant.id).countOwnedBy(request.params.id);
      if (owned > 0) throw conflict(`the user still owns ${owned} items: reassign or delete them first`, "user_owns_items");
      const found = await new UserRepository(tx, tenant.id).delete(request.params.id);
      if (found) await audit(tx, request, "user.delete", "user", request.params.id);
      return found;
    });
    if (!deleted) throw notFound("user");
    return reply.code(204).send();
  });
};
