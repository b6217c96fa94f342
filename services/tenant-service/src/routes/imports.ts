/**
 * A tenant's imports (tenant administrators; README "Import"): POST .../imports takes NDJSON or CSV of users and items,
 * streamed, and answers when the body is read with a report: rows created, rows skipped because their key was
 * applied before, and each bad line's number and reason. Synchronous: the rows arrive in the request, so they are
 * written as they arrive, IMPORT_BATCH_ROWS per transaction, each with its audit entry; nothing is staged, and a
 * body cut off midway keeps the batches already committed (sending the file again skips them by their keys).
 */
import { randomUUID } from "node:crypto";
import { Readable, Transform } from "node:stream";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError } from "../errors.js";
import { csvLines, ndjsonLines, type ImportLine } from "../import-records.js";
import { effectiveLimits } from "../plans.js";
import { ImportRepository, type ImportItem, type ImportUser, type LineError } from "../repositories/imports.js";
import { UserRepository } from "../repositories/users.js";
import { errorResponses } from "../schemas.js";
import { audit, inTenant, requireTenantAdmin, tenantRequest, type RouteOptions } from "./context.js";
import { CreateItemBody } from "./items.js";
import { CreateUserBody } from "./users.js";

const ImportKey = z.string().trim().min(1, "must not be empty").max(200);

const ImportUserRow = CreateUserBody.extend({ type: z.literal("user"), key: ImportKey.describe("The client's key: a row whose key an import applied before is skipped") });
const ImportItemRow = CreateItemBody.omit({ ownerId: true })
  .extend({ type: z.literal("item"), key: ImportKey, ownerId: z.uuid("must be the uuid of a user of this tenant").optional(), ownerKey: ImportKey.optional() })
  .refine((r) => (r.ownerId === undefined) !== (r.ownerKey === undefined), { message: "give exactly one of ownerId and ownerKey (the key of an imported user)", path: ["ownerId"] });

/** One line of an import, NDJSON or CSV. */
export const ImportRow = z.discriminatedUnion("type", [ImportUserRow, ImportItemRow], { error: 'type must be "user" or "item"' });

/** The report keeps this many line errors; past it, only their count. */
export const MAX_REPORTED_ERRORS = 1_000;

export const ImportReport = z
  .object({
    importId: z.uuid().describe("Recorded with each row it created (import_rows) and in the audit log"),
    format: z.enum(["ndjson", "csv"]),
    created: z.object({ users: z.int(), items: z.int() }),
    skipped: z.int().describe("Rows whose key was applied before (by this or an earlier import): left as they are"),
    failed: z.int().describe("Bad rows, not applied; the others were"),
    errors: z.array(z.object({ line: z.int(), reason: z.string() })).describe(`The first ${MAX_REPORTED_ERRORS} bad rows by line`),
    errorsTruncated: z.boolean(),
  })
  .meta({ id: "ImportReport", description: "What an import did, line by line for the rows it refused" });

const FORMATS = { "application/x-ndjson": "ndjson", "text/csv": "csv" } as const;

/** Counts the body's bytes and stops it past `limit`: the request's own limit, since this body is never buffered. */
function limited(body: Readable, limit: number): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) done(new AppError(413, "body_too_large", `the import is larger than ${limit} bytes (IMPORT_BODY_LIMIT_BYTES): the rows before were applied; split the file and send the rest`));
      else done(null, chunk);
    },
  });
  body.on("error", (error) => counter.destroy(error));
  return body.pipe(counter);
}

const reasonOf = (error: z.ZodError): string => error.issues.map((i) => `${i.path.join(".") || "row"}: ${i.message}`).join("; ");

export const importRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const { config } = services;

  // The body is handed on as the request's stream, unread: the route reads it a record at a time.
  app.addContentTypeParser(Object.keys(FORMATS), (_request, payload, done) => done(null, payload));

  app.post("/imports", {
      config: { tenantScoped: true },
      schema: {
        ...tenantRequest(options, {}),
        tags: ["imports"],
        description:
          "Imports users and items from NDJSON (Content-Type: application/x-ndjson, one object a line) or CSV (text/csv, a header row). " +
          "Each row has a type (user or item) and a key; see the README for the fields. Tenant administrators.",
        response: { 200: ImportReport, ...errorResponses(400, 401, 403, 404, 413, 415, 429) },
      },
    }, async (request) => {
    requireTenantAdmin(request);
    const mediaType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() as keyof typeof FORMATS;
    const format = FORMATS[mediaType];
    if (!format || !(request.body instanceof Readable)) {
      throw new AppError(415, "unsupported_media_type", "send NDJSON (Content-Type: application/x-ndjson) or CSV (Content-Type: text/csv)");
    }
    const declared = Number(request.headers["content-length"] ?? 0);
    if (declared > config.IMPORT_BODY_LIMIT_BYTES) throw new AppError(413, "body_too_large", `the import is larger than ${config.IMPORT_BODY_LIMIT_BYTES} bytes (IMPORT_BODY_LIMIT_BYTES): split the file`);

    const importId = randomUUID();
    const report = { importId, format, created: { users: 0, items: 0 }, skipped: 0, failed: 0, errors: [] as LineError[], errorsTruncated: false };
    const fail = (e: LineError) => {
      report.failed++;
      if (report.errors.length < MAX_REPORTED_ERRORS) report.errors.push(e);
      else report.errorsTruncated = true;
    };
    let storageUsed: number | undefined;
    let users: ImportUser[] = [];
    let items: ImportItem[] = [];

    const flush = async () => {
      if (users.length + items.length === 0) return;
      const [u, i] = [users, items];
      users = [];
      items = [];
      await inTenant(services, request, async (tx, inTx) => {
        const tenant = await inTx.record();
        const repo = new ImportRepository(tx, inTx.id, importId);
        // The tenant's row stays locked until the batch commits: concurrent imports and creations count in turn.
        const maxUsers = (await new UserRepository(tx, inTx.id).lockMaxUsers()) ?? effectiveLimits(tenant).maxUsers;
        storageUsed ??= await repo.storageBytes();
        const storageLimit = effectiveLimits(tenant).maxStorageGb * 1024 ** 3;
        const userResult = await repo.applyUsers(u, maxUsers);
        const itemResult = await repo.applyItems(i, Math.max(0, storageLimit - storageUsed));
        storageUsed += itemResult.bytes;
        const errors = [...userResult.errors, ...itemResult.errors];
        await audit(tx, request, "import.batch", "import", importId, {
          format, firstLine: Math.min(...[...u, ...i].map((r) => r.line)), lastLine: Math.max(...[...u, ...i].map((r) => r.line)),
          users: userResult.created, items: itemResult.created, skipped: userResult.skipped + itemResult.skipped, failed: errors.length,
        });
        return { userResult, itemResult, errors };
      }).then(({ userResult, itemResult, errors }) => {
        report.created.users += userResult.created;
        report.created.items += itemResult.created;
        report.skipped += userResult.skipped + itemResult.skipped;
        for (const e of errors.sort((a, b) => a.line - b.line)) fail(e);
      });
    };

    const lines: AsyncIterable<ImportLine> = format === "csv" ? csvLines(limited(request.body, config.IMPORT_BODY_LIMIT_BYTES)) : ndjsonLines(limited(request.body, config.IMPORT_BODY_LIMIT_BYTES));
    let flushing = false;
    try {
      for await (const entry of lines) {
        if ("error" in entry) {
          fail({ line: entry.line, reason: entry.error });
          continue;
        }
        const parsed = ImportRow.safeParse(entry.record);
        if (!parsed.success) {
          fail({ line: entry.line, reason: reasonOf(parsed.error) });
          continue;
        }
        const row = parsed.data;
        if (row.type === "user") users.push({ line: entry.line, key: row.key, email: row.email, displayName: row.displayName ?? "", role: row.role ?? "member" });
        else items.push({ line: entry.line, key: row.key, ownerId: row.ownerId, ownerKey: row.ownerKey, title: row.title, body: row.body ?? "", tags: row.tags ?? [] });
        if (users.length + items.length >= config.IMPORT_BATCH_ROWS) {
          flushing = true;
          await flush();
          flushing = false;
        }
      }
    } catch (error) {
      if (error instanceof AppError || flushing) throw error;
      // The CSV parser stops on a header it cannot use; say why, and what was applied before.
      const applied = report.created.users + report.created.items;
      throw new AppError(400, "invalid_import", `${(error as Error).message}${applied > 0 ? ` (${applied} rows before were applied)` : ""}`);
    }
    await flush();
    report.errors.sort((a, b) => a.line - b.line);
    return report;
  });
};
