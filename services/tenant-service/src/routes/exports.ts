/**
 * A tenant's exports (tenant administrators and platform administrators; README "Export"): POST queues the worker's
 * tenant.export job (worker/export.ts) with the record and its audit entry, in one transaction; GET says where it
 * stands and, once done, where each table's NDJSON is: a signed URL that expires (gcs) or this service's own path
 * (local), which streams the file. GET .../exports lists them, newest first, without the files' URLs.
 */
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { decodeCursor } from "../cursor.js";
import { AppError, notFound } from "../errors.js";
import { createExportStore } from "../export-store.js";
import type { Queryable } from "../db/database.js";
import { ExportRepository, type ExportRecord } from "../repositories/exports.js";
import { IdParam, ListQuery, Timestamp, clampLimit, errorResponses, pageOf } from "../schemas.js";
import { EXPORT_MAX_ATTEMPTS, EXPORT_TABLES, EXPORT_TASK, NDJSON, exportJobKey } from "../worker/export.js";
import { enqueue, queueInstalled } from "../worker/queue.js";
import { settleExportInProgress, type Settled } from "../stale-exports.js";
import { audit, inTenant, requireTenantAdmin, tenantRequest, type RouteOptions } from "./context.js";

const TABLE_NAMES = EXPORT_TABLES.map((t) => t.table) as [string, ...string[]];

export const ExportFile = z.object({
  table: z.enum(TABLE_NAMES),
  rows: z.int(),
  bytes: z.int(),
  url: z.string().describe("Where the table's NDJSON is: a signed URL (needs no token) or this service's path (needs the token)"),
  urlExpiresAt: Timestamp.nullable().describe("When a signed URL stops working; null for the service's path"),
});

const ExportState = z.object({
  id: z.uuid(),
  status: z.enum(["queued", "running", "done", "failed", "expired"]).describe("expired: done, and its objects are past the retention period"),
  requestedBy: z.string(),
  requestedAt: Timestamp,
  startedAt: Timestamp.nullable().describe("When the attempt that wrote the files began: every row is as it was at some moment between this and finishedAt"),
  finishedAt: Timestamp.nullable(),
  expiresAt: Timestamp.describe("When the objects are deleted (the bucket's lifecycle)"),
  error: z.string().nullable(),
});

export const Export = ExportState.extend({
  files: z.array(ExportFile).describe("One NDJSON file per table, once done; empty before and once expired"),
}).meta({ id: "Export", description: "A tenant export: its state and, once done, its files" });

/**
 * An export in the list: its state without the files. A file's URL is signed per request (with gcs, a call to the
 * IAM Credentials API per file): a page of 100 exports would make 400 of them for URLs nobody asked for yet.
 */
export const ExportSummary = ExportState.meta({ id: "ExportSummary", description: "A tenant export's state; GET .../exports/{id} for its files" });
export const ExportPage = pageOf(ExportSummary).meta({ id: "ExportPage", description: "A page of the tenant's exports, newest first" });

const TableParams = IdParam.extend({ table: z.enum(TABLE_NAMES, "must be one of the exported tables: " + TABLE_NAMES.join(", ")) });

export const exportRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const { config } = services;
  const store = createExportStore(config);
  const scoped = { tenantScoped: true };
  const tags = ["exports"];

  /**
   * The tenant's export in progress, unless it will never end by itself: then given up in this request's transaction
   * (stale-exports.ts), so a poll or the list sees `failed` as soon as the heartbeat is stale, not only the tenant's
   * next POST.
   */
  const settle = (tx: Queryable, request: FastifyRequest, tenantId: string, queue: boolean): Promise<Settled> =>
    settleExportInProgress(tx, tenantId, {
      staleSeconds: config.EXPORT_STALE_SECONDS,
      queue,
      actor: request.principal!.subject,
      requestId: request.id,
      warn: (fields, message) => request.log.warn(fields, message),
    });
  /**
   * Counted by the route once its transaction has committed (ExportsGivenUp, monitoring/src/rules.ts): a give-up rolled
   * back is none, and a transaction run again in a tenant's new database (db/placed.ts) counts once.
   */
  const counted = (settled: Settled | undefined) => {
    if (settled?.givenUp) services.metrics.exportsGivenUp.inc({ reason: settled.givenUp });
  };

  const expired = (e: ExportRecord) => e.status === "done" && e.expiresAt.getTime() <= Date.now();

  const summary = (e: ExportRecord): z.output<typeof ExportSummary> => ({
    id: e.id,
    status: expired(e) ? "expired" : e.status,
    requestedBy: e.requestedBy,
    requestedAt: e.requestedAt,
    startedAt: e.startedAt,
    finishedAt: e.finishedAt,
    expiresAt: e.expiresAt,
    error: e.error,
  });

  const view = async (e: ExportRecord): Promise<z.output<typeof Export>> => {
    const files: z.output<typeof ExportFile>[] = [];
    if (e.status === "done" && !expired(e)) {
      // A signed URL lasts EXPORT_URL_TTL_SECONDS, never past the objects' own expiry.
      const urlExpiresAt = new Date(Math.min(Date.now() + config.EXPORT_URL_TTL_SECONDS * 1000, e.expiresAt.getTime()));
      for (const { table } of EXPORT_TABLES) {
        const t = e.tables[table];
        if (!t) continue;
        const signed = await store.signedUrl(t.key, urlExpiresAt);
        files.push({ table, rows: t.rows, bytes: t.bytes, url: signed ?? `/v1/tenants/${e.tenantId}/exports/${e.id}/tables/${table}`, urlExpiresAt: signed ? urlExpiresAt : null });
      }
    }
    return { ...summary(e), files };
  };

  app.post("/exports", {
      config: scoped,
      schema: {
        ...tenantRequest(options, {}),
        tags,
        description:
          "Queues an export of the tenant's rows (users, items, audit log, daily metrics), one NDJSON file per table. Tenant or platform administrators. " +
          "One at a time per tenant: 409 names the export still queued or running.",
        response: { 202: Export, ...errorResponses(400, 401, 403, 404, 409, 429) },
        responseHeaders: { 202: { location: "The export's path: poll it until status is done" } },
      },
    }, async (request, reply) => {
    requireTenantAdmin(request);
    let settled: Settled | undefined;
    const created = await inTenant(services, request, async (tx, tenant) => {
      const exports = new ExportRepository(tx, tenant.id);
      const queue = await queueInstalled(tx);
      settled = await settle(tx, request, tenant.id, queue);
      const running = settled.running;
      if (running) {
        throw new AppError(
          409,
          "export_in_progress",
          `export ${running.id} of this tenant is ${running.status}: poll GET .../exports/${running.id} and request another once it is done or failed ` +
            `(one that makes no progress for ${config.EXPORT_STALE_SECONDS} s is given up then)`,
        );
      }
      const record = await exports.create({ requestedBy: request.principal!.subject, requestId: request.id, store: store.kind, retentionDays: config.EXPORT_RETENTION_DAYS });
      await audit(tx, request, "export.requested", "export", record.id, { store: store.kind });
      // The job commits with the record or not at all.
      if (queue) await enqueue(tx, EXPORT_TASK, { tenantId: tenant.id, exportId: record.id }, exportJobKey(tenant.id, record.id), { maxAttempts: EXPORT_MAX_ATTEMPTS });
      else request.log.warn({ tenantId: tenant.id }, "queue not installed (worker --install-queue): the export stays queued until a worker runs");
      return record;
    });
    counted(settled);
    return reply.code(202).header("location", `/v1/tenants/${created.tenantId}/exports/${created.id}`).send(await view(created));
  });

  app.get("/exports", {
      config: scoped,
      schema: {
        ...tenantRequest(options, {}),
        querystring: ListQuery,
        tags,
        description: "The tenant's exports, newest first, a page at a time (pass nextCursor as cursor). Tenant or platform administrators.",
        response: { 200: ExportPage, ...errorResponses(400, 401, 403, 404, 429) },
      },
    }, async (request) => {
    requireTenantAdmin(request);
    const limit = clampLimit(request.query.limit);
    const after = request.query.cursor ? decodeCursor(request.query.cursor) : undefined;
    let settled: Settled | undefined;
    const page = await inTenant(services, request, async (tx, tenant) => {
      settled = await settle(tx, request, tenant.id, await queueInstalled(tx));
      return new ExportRepository(tx, tenant.id).list({ limit, after });
    });
    counted(settled);
    return { data: page.data.map(summary), nextCursor: page.nextCursor };
  });

  app.get("/exports/:id", {
      config: scoped,
      schema: { ...tenantRequest(options, IdParam.shape), tags, description: "The export's state and, once done, its files. One whose job stopped making progress (its worker died) is reported failed, with the reason, once it has been silent for EXPORT_STALE_SECONDS.", response: { 200: Export, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => {
    requireTenantAdmin(request);
    let settled: Settled | undefined;
    const record = await inTenant(services, request, async (tx, tenant) => {
      settled = undefined; // the work may run again, in the tenant's new database
      const exports = new ExportRepository(tx, tenant.id);
      const found = await exports.find(request.params.id);
      // Only a poll of an export in progress pays for the check (and may write); a finished one is read as it is.
      if (found?.status !== "queued" && found?.status !== "running") return found;
      settled = await settle(tx, request, tenant.id, await queueInstalled(tx));
      return exports.find(request.params.id);
    });
    counted(settled);
    if (!record) throw notFound("export");
    return view(record);
  });

  app.get("/exports/:id/tables/:table", {
      config: scoped,
      schema: {
        ...tenantRequest(options, TableParams.shape),
        tags,
        description: "One table's NDJSON, streamed (local store), or a redirect to a fresh signed URL (gcs).",
        response: {
          200: z.any().describe("The table's rows, one JSON object a line (application/x-ndjson)"),
          302: z.undefined().describe("To a signed URL of the object"),
          ...errorResponses(400, 401, 403, 404, 409, 410, 429),
        },
      },
    }, async (request, reply) => {
    requireTenantAdmin(request);
    const record = await inTenant(services, request, (tx, tenant) => new ExportRepository(tx, tenant.id).find(request.params.id));
    if (!record) throw notFound("export");
    if (record.status !== "done") throw new AppError(409, "export_not_done", `export ${record.id} is ${record.status}: its files exist once it is done`);
    if (expired(record)) throw new AppError(410, "export_expired", `export ${record.id} expired at ${record.expiresAt.toISOString()}: request a new one`);
    const table = record.tables[request.params.table];
    if (!table) throw notFound(`table ${request.params.table} in export ${record.id}`);
    const signed = await store.signedUrl(table.key, new Date(Math.min(Date.now() + config.EXPORT_URL_TTL_SECONDS * 1000, record.expiresAt.getTime())));
    if (signed) return reply.code(302).header("location", signed).send();
    const body = await store.read(table.key);
    if (!body) throw new AppError(410, "export_expired", `export ${record.id}'s file for ${request.params.table} is gone: request a new export`);
    return reply.header("content-type", NDJSON).header("content-length", String(table.bytes)).send(body);
  });
};
