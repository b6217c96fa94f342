/**
 * A tenant's webhooks: tenant administrators subscribe HTTPS URLs to the tenant's item and user events, and read each
 * webhook's delivery log. The worker sends (worker/webhooks.ts); README "Webhooks".
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Queryable } from "../db/database.js";
import { decodeCursor } from "../cursor.js";
import { AppError, conflict, notFound } from "../errors.js";
import { WEBHOOK_EVENTS, WebhookRepository, newSigningSecret, type WebhookEvent } from "../repositories/webhooks.js";
import { IdParam, ListQuery, NoContent, Timestamp, clampLimit, errorResponses, pageOf } from "../schemas.js";
import { TargetRefused, checkTarget, parseAllowedRanges } from "../webhook-targets.js";
import { enqueueDeliveries } from "../worker/webhooks.js";
import { audit, inTenant, requireTenantAdmin, tenantRequest, type RouteOptions } from "./context.js";

/** Webhooks one tenant may have: each can hold one of the worker's delivery slots at a time (worker/webhooks.ts). */
export const MAX_WEBHOOKS_PER_TENANT = 10;

const EventName = z.enum(WEBHOOK_EVENTS, { error: `must be one of ${WEBHOOK_EVENTS.join(", ")}` });

export const CreateWebhookBody = z.object({
  url: z.string().max(2000).describe("https:// and a public address: private, loopback and link-local targets are refused"),
  events: z.array(EventName).min(1, "subscribe to at least one event").max(WEBHOOK_EVENTS.length).refine((e) => new Set(e).size === e.length, "list each event once"),
  description: z.string().trim().max(200).optional(),
});

export const Webhook = z
  .object({
    id: z.uuid(),
    url: z.string(),
    events: z.array(EventName),
    description: z.string(),
    createdAt: Timestamp,
    consecutiveFailures: z.int().describe("Failed attempts in a row; 0 after a success"),
    pausedUntil: Timestamp.nullable().describe("While ahead, deliveries wait for it (the receiver kept failing)"),
  })
  .meta({ id: "Webhook", description: "A subscription of a URL to the tenant's events" });

export const CreatedWebhook = Webhook.extend({
  secret: z.string().describe("Signs every delivery (Webhook-Signature). Shown in this answer only: keep it now"),
}).meta({ id: "CreatedWebhook", description: "The new webhook and its signing secret, shown this once" });

export const WebhookPage = pageOf(Webhook).meta({ id: "WebhookPage", description: "A page of the tenant's webhooks, newest first" });

export const WebhookDelivery = z
  .object({
    id: z.uuid().describe("Sent as Webhook-Id, the same on every attempt"),
    webhookId: z.uuid(),
    eventId: z.uuid().describe("The event's id, the same in every webhook's delivery of it"),
    eventType: EventName,
    status: z.enum(["pending", "delivered", "failed"]),
    attempts: z.int(),
    nextAttemptAt: Timestamp.nullable(),
    lastAttemptAt: Timestamp.nullable(),
    responseStatus: z.int().nullable().describe("The receiver's status code on the last attempt; null if none came"),
    lastError: z.string().nullable(),
    attemptLog: z.array(z.object({ at: z.string(), durationMs: z.int(), responseStatus: z.int().nullable(), error: z.string().nullable() })),
    createdAt: Timestamp,
    deliveredAt: Timestamp.nullable(),
  })
  .meta({ id: "WebhookDelivery", description: "One event sent to one webhook: its attempts and outcome" });

export const WebhookDeliveryPage = pageOf(WebhookDelivery).meta({ id: "WebhookDeliveryPage", description: "A page of a webhook's deliveries, newest first" });

/**
 * Records an event of the tenant's in the transaction `tx` that makes the change, for every webhook subscribed to it,
 * and queues their jobs: routes send it beside their audit entry, so on PostgreSQL it shares that round trip.
 */
export async function recordEvent(tx: Queryable, tenantId: string, type: WebhookEvent, data: object): Promise<void> {
  await enqueueDeliveries(tx, tenantId, await new WebhookRepository(tx, tenantId).recordEvent(type, data));
}

export const webhookRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const allowed = parseAllowedRanges(services.config.WEBHOOK_ALLOWED_PRIVATE_CIDRS);
  const scoped = { tenantScoped: true };
  const collection = tenantRequest(options, {});
  const one = tenantRequest(options, IdParam.shape);
  const tags = ["webhooks"];

  app.post("/webhooks", {
      config: scoped,
      schema: { ...collection, body: CreateWebhookBody, tags, response: { 201: CreatedWebhook, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429) } },
    }, async (request, reply) => {
    requireTenantAdmin(request);
    const b = request.body;
    // Before the transaction: resolving the name takes as long as DNS does, and holds nothing meanwhile.
    const url = await checkTarget(b.url, allowed).catch((error: unknown) => {
      if (error instanceof TargetRefused) throw new AppError(400, "validation_failed", `body.url: ${error.message}`);
      throw error;
    });
    const secret = newSigningSecret();
    const created = await inTenant(services, request, async (tx, tenant) => {
      const webhooks = new WebhookRepository(tx, tenant.id);
      await webhooks.lockTenant();
      if ((await webhooks.count()) >= MAX_WEBHOOKS_PER_TENANT) {
        throw conflict(`the tenant already has its maximum of ${MAX_WEBHOOKS_PER_TENANT} webhooks: delete one first`, "webhook_quota_exceeded");
      }
      const webhook = await webhooks.create({ url: url.href, events: b.events, description: b.description ?? "", secret, createdBy: request.principal!.subject });
      // The secret never goes into the audit log.
      await audit(tx, request, "webhook.create", "webhook", webhook.id, { url: webhook.url, events: webhook.events });
      return webhook;
    });
    return reply.code(201).send({ ...created, secret });
  });

  app.get("/webhooks", {
      config: scoped,
      schema: { ...collection, querystring: ListQuery, tags, response: { 200: WebhookPage, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => {
    requireTenantAdmin(request);
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    return inTenant(services, request, (tx, tenant) => new WebhookRepository(tx, tenant.id).list({ limit, after }));
  });

  app.get("/webhooks/:id", { config: scoped, schema: { ...one, tags, response: { 200: Webhook, ...errorResponses(400, 401, 403, 404, 429) } } }, async (request) => {
    requireTenantAdmin(request);
    const webhook = await inTenant(services, request, (tx, tenant) => new WebhookRepository(tx, tenant.id).find(request.params.id));
    if (!webhook) throw notFound("webhook");
    return webhook;
  });

  app.delete("/webhooks/:id", {
      config: scoped,
      schema: { ...one, tags, response: { 204: NoContent, ...errorResponses(400, 401, 403, 404, 413, 415, 429) } },
    }, async (request, reply) => {
    requireTenantAdmin(request);
    const deleted = await inTenant(services, request, async (tx, tenant) => {
      const found = await new WebhookRepository(tx, tenant.id).delete(request.params.id);
      if (found) await audit(tx, request, "webhook.delete", "webhook", request.params.id);
      return found;
    });
    if (!deleted) throw notFound("webhook");
    return reply.code(204).send();
  });

  app.get("/webhooks/:id/deliveries", {
      config: scoped,
      schema: { ...one, querystring: ListQuery, tags, response: { 200: WebhookDeliveryPage, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => {
    requireTenantAdmin(request);
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    const page = await inTenant(services, request, async (tx, tenant) => {
      const webhooks = new WebhookRepository(tx, tenant.id);
      const [webhook, deliveries] = await Promise.all([webhooks.find(request.params.id), webhooks.deliveries(request.params.id, { limit, after })]);
      return webhook ? deliveries : undefined;
    });
    if (!page) throw notFound("webhook");
    return page;
  });
};
