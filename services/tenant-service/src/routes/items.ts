/** A tenant's items: any member creates, reads, changes and deletes them. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Queryable } from "../db/database.js";
import { AppError, notFound } from "../errors.js";
import { decodeCursor } from "../cursor.js";
import { ItemRepository } from "../repositories/items.js";
import { UserRepository } from "../repositories/users.js";
import { IdParam, ListQuery, NoContent, Timestamp, clampLimit, errorResponses, pageOf } from "../schemas.js";
import { audit, inTenant, tenantRequest, type RouteOptions } from "./context.js";
import { recordEvent } from "./webhooks.js";

const tagList = z.array(z.string().trim().min(1).max(64)).max(50);

export const CreateItemBody = z.object({
  ownerId: z.uuid("must be the uuid of a user of this tenant"),
  title: z.string().trim().min(1).max(500),
  body: z.string().max(100_000).optional(),
  tags: tagList.optional(),
});

export const PatchItemBody = z
  .object({
    ownerId: z.uuid("must be the uuid of a user of this tenant").optional(),
    title: z.string().trim().min(1).max(500).optional(),
    body: z.string().max(100_000).optional(),
    tags: tagList.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

export const ListItemsQuery = ListQuery.extend({
  ownerId: z.uuid("must be a uuid").optional(),
  q: z.string().trim().min(1).max(200).optional(),
});

async function requireOwner(tx: Queryable, tenantId: string, ownerId: string): Promise<void> {
  if (!(await new UserRepository(tx, tenantId).exists(ownerId))) throw new AppError(400, "validation_failed", "body.ownerId: is not a user of this tenant");
}

export const Item = z
  .object({
    id: z.uuid(),
    ownerId: z.uuid(),
    title: z.string(),
    body: z.string(),
    tags: z.array(z.string()),
    sizeBytes: z.int().describe("Bytes of title and body, as stored"),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: "Item", description: "The item" });

export const ItemPage = pageOf(Item).meta({ id: "ItemPage", description: "A page of the tenant's items, newest first" });

export const itemRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const scoped = { tenantScoped: true };
  const collection = tenantRequest(options, {});
  const one = tenantRequest(options, IdParam.shape);
  const tags = ["items"];

  app.post("/items", {
      config: scoped,
      schema: { ...collection, body: CreateItemBody, tags, response: { 201: Item, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429) } },
    }, async (request, reply) => {
    const b = request.body;
    const item = await inTenant(services, request, async (tx, tenant) => {
      await requireOwner(tx, tenant.id, b.ownerId);
      const created = await new ItemRepository(tx, tenant.id).create({ ownerId: b.ownerId, title: b.title, body: b.body ?? "", tags: b.tags ?? [] });
      // Sent together (pg's pipeline): the webhook event costs no round trip of its own.
      await Promise.all([audit(tx, request, "item.create", "item", created.id, { title: b.title }), recordEvent(tx, tenant.id, "item.created", created)]);
      return created;
    });
    return reply.code(201).send(item);
  });

  app.get("/items", {
      config: scoped,
      schema: { ...collection, querystring: ListItemsQuery, tags, response: { 200: ItemPage, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => {
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    const { ownerId, q } = request.query;
    return inTenant(services, request, (tx, tenant) => new ItemRepository(tx, tenant.id).list({ limit, after, ownerId, q }));
  });

  app.get("/items/:id", { config: scoped, schema: { ...one, tags, response: { 200: Item, ...errorResponses(400, 401, 403, 404, 429) } } }, async (request) => {
    const item = await inTenant(services, request, (tx, tenant) => new ItemRepository(tx, tenant.id).find(request.params.id));
    if (!item) throw notFound("item");
    return item;
  });

  app.patch("/items/:id", {
      config: scoped,
      schema: { ...one, body: PatchItemBody, tags, response: { 200: Item, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429) } },
    }, async (request) => {
    const b = request.body;
    const item = await inTenant(services, request, async (tx, tenant) => {
      if (b.ownerId) await requireOwner(tx, tenant.id, b.ownerId);
      const updated = await new ItemRepository(tx, tenant.id).update(request.params.id, b);
      if (updated) await Promise.all([audit(tx, request, "item.update", "item", request.params.id, { changed: Object.keys(b) }), recordEvent(tx, tenant.id, "item.updated", updated)]);
      return updated;
    });
    if (!item) throw notFound("item");
    return item;
  });

  app.delete("/items/:id", {
      config: scoped,
      schema: { ...one, tags, response: { 204: NoContent, ...errorResponses(400, 401, 403, 404, 413, 415, 429) } },
    },
    async (request, reply) => {
    const deleted = await inTenant(services, request, async (tx, tenant) => {
      const found = await new ItemRepository(tx, tenant.id).delete(request.params.id);
      if (found) await Promise.all([audit(tx, request, "item.delete", "item", request.params.id), recordEvent(tx, tenant.id, "item.deleted", { id: request.params.id })]);
      return found;
    });
    if (!deleted) throw notFound("item");
    return reply.code(204).send();
  });
};
