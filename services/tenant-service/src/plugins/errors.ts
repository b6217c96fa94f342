/**
 * One error format for every answer that is not a success: `{ "error": { "code", "message" } }`. A 4xx says
 * exactly what was wrong; a 5xx says only that it failed and the request id to quote, and is logged in full.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { AppError } from "../errors.js";
import type { ServiceMetrics } from "../metrics.js";
import { shared } from "./shared.js";

/** PostgreSQL errors a client's input can cause (SQLSTATE → status, code, message); any other is ours (500). */
export const PG_ERRORS: Record<string, [number, string, string]> = {
  "23505": [409, "conflict", "a resource with these unique values already exists"],
  "23503": [409, "conflict", "the change refers to something that does not exist or is still in use"],
  "23514": [400, "validation_failed", "a value is outside its allowed range"],
  "22P02": [400, "validation_failed", "a value has the wrong format"],
  "22001": [400, "validation_failed", "a value is too long"],
  "22021": [400, "validation_failed", "a value contains a NUL character or invalid UTF-8"],
  // JSON (features) with \u0000 in a string or key: jsonb cannot store it.
  "22P05": [400, "validation_failed", "a value contains a character the database cannot store (\\u0000)"],
  "54000": [400, "validation_failed", "a value is too complex to process (e.g. a search query)"],
};

/**
 * A database node the request needs is away, for a moment: a Citus worker or the coordinator failing over or
 * restarting (08xxx: the connection to it failed; 57P01-57P03: it is shutting down or starting; 25006: a write reached
 * a primary just demoted), or the service's own connection to the coordinator broke. The client may retry: 503 with
 * Retry-After, a code that names the cause, and a counter (db_unavailable_total) instead of a 500 "internal".
 *
 * 57014 too, the statement timeout: it is how a lost Citus worker first shows, since the service's statement timeout
 * (10 s) ends the request before the coordinator's connection to the worker times out (60 s;
 * test/citus-lost-worker.test.ts). A database too busy to answer in time is the other cause; a retry a few seconds
 * later is right for both, and the counter's cause label tells them from a failover's.
 *
 * And no answer at all within the statement timeout and a margin (no_answer: pg's query_timeout, db/postgres.ts): the
 * server went silent, its VM or the network to it lost; the connection is closed.
 *
 * And no connection within the pool's wait (5 s): the pool's own (pool_exhausted), or the share of it the tenant's
 * Citus node may hold (node_busy, db/node-bulkhead.ts), taken by that node's transactions while it is lost. The
 * request read nothing and changed nothing: a retry is safe.
 */
const DATABASE_UNAVAILABLE = new Set(["08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "25006", "57014"]);
const CONNECTION_LOST = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"]);
/** pg's error when a statement had no answer within query_timeout. */
const NO_ANSWER = "Query read timeout";
/** pg-pool's error when no connection came free within connectionTimeoutMillis. */
const POOL_WAIT_EXCEEDED = "timeout exceeded when trying to connect";
/** Seconds a client waits before retrying: about one Patroni failover loop. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

export function databaseUnavailable(error: { code?: string; message?: string }): string | undefined {
  if (error.code && (DATABASE_UNAVAILABLE.has(error.code) || CONNECTION_LOST.has(error.code))) return error.code;
  if (error.message === "Connection terminated unexpectedly" || error.message?.startsWith("Connection terminated due to connection timeout")) return "connection_lost";
  if (error.code === "NODE_BUSY") return "node_busy";
  if (error.message === POOL_WAIT_EXCEEDED) return "pool_exhausted";
  if (error.message === NO_ANSWER) return "no_answer";
  return undefined;
}

/**
 * The router's own refusals, before any route or hook runs (Fastify's `frameworkErrors`): a path that is not valid
 * percent-encoding, or a path parameter longer than the router's maxParamLength. Answered in the error format like
 * any other invalid value (Fastify's default is its own body, and 414 for the length).
 */
export function routerErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header("x-request-id", request.id);
  const message =
    error.code === "FST_ERR_MAX_PARAM_LENGTH" ? "a path parameter is longer than any valid value" : "the path is not valid percent-encoded UTF-8";
  reply.code(400).send({ error: { code: "validation_failed", message } });
}

export interface ErrorsOptions {
  readonly metrics: ServiceMetrics;
  readonly bodyLimitBytes: number;
}

export const errors = shared<ErrorsOptions>("errors", async (app, { metrics, bodyLimitBytes }) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.statusCode === 403 || error.statusCode === 401) metrics.rejections.inc({ reason: error.code });
      return reply.code(error.statusCode).headers(error.headers).send({ error: { code: error.code, message: error.message } });
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const details = error.validation.map((v) => {
        const field = `${error.validationContext ?? "request"}${v.instancePath.replace(/\//g, ".")}`;
        return `${field}: ${v.message}`;
      });
      return reply.code(400).send({ error: { code: "validation_failed", message: details.join("; ") } });
    }
    const pgCode = (error as { code?: string }).code;
    if (pgCode && PG_ERRORS[pgCode]) {
      const [status, code, message] = PG_ERRORS[pgCode];
      request.log.info({ pgCode, detail: (error as { detail?: string }).detail }, "database rejected the change");
      return reply.code(status).send({ error: { code, message } });
    }
    const unavailable = databaseUnavailable(error as { code?: string; message?: string });
    if (unavailable) {
      metrics.databaseUnavailable.inc({ cause: unavailable });
      request.log.warn({ err: error }, "a database node is unavailable: answered 503");
      return reply
        .code(503)
        .header("retry-after", String(DATABASE_RETRY_AFTER_SECONDS))
        .send({ error: { code: "database_unavailable", message: `a database node this request needs is unavailable for a moment; retry after ${DATABASE_RETRY_AFTER_SECONDS} s` } });
    }
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.code(413).send({ error: { code: "body_too_large", message: `the body is larger than ${bodyLimitBytes} bytes` } });
    }
    if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return reply.code(415).send({ error: { code: "unsupported_media_type", message: "send JSON with Content-Type: application/json" } });
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      const code = ["FST_ERR_CTP_EMPTY_JSON_BODY", "FST_ERR_CTP_INVALID_JSON_BODY"].includes(error.code) || error instanceof SyntaxError ? "invalid_json" : "bad_request";
      return reply.code(error.statusCode).send({ error: { code, message: code === "invalid_json" ? "the body is not valid JSON" : error.message } });
    }
    // Everything else is ours: log it in full, tell the client only that it failed and how to refer to it.
    request.log.error({ err: error }, "request failed");
    return reply.code(500).send({ error: { code: "internal", message: `internal error; quote request id ${request.id}` } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` } }),
  );
});
