import { randomUUID } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from "fastify";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import { createAuthenticator, type Principal } from "./auth.js";
import type { ServiceConfig } from "./config.js";
import type { Database } from "./db/database.js";
import { AppError } from "./errors.js";
import { createMetrics, type ServiceMetrics } from "./metrics.js";
import { opsRoutes } from "./plugins/ops.js";
import { leasedRedisStore } from "./rate-limit-store.js";
import { tenantDataRoutes } from "./routes/tenant-data.js";
import { tenantRoutes } from "./routes/tenants.js";
import { resolveRequestTenant } from "./tenant-scope.js";
import { TenantDirectory, type TenantRecord } from "./tenants.js";
import { endSpan, tracedDatabase, tracer } from "./tracing.js";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
    tenant?: TenantRecord;
  }
  interface FastifyContextConfig {
    tenantScoped?: boolean;
  }
}

export interface Services {
  readonly db: Database;
  readonly directory: TenantDirectory;
  readonly metrics: ServiceMetrics;
  readonly config: ServiceConfig;
}

export interface BuildOptions {
  readonly config: ServiceConfig;
  readonly db: Database;
  /** Shared rate-limit store; without it the limiter is per process (one replica only). */
  readonly redis?: Redis;
  readonly logger?: FastifyServerOptions["logger"];
}

const PG_ERRORS: Record<string, [number, string, string]> = {
  "23505": [409, "conflict", "a resource with these unique values already exists"],
  "23503": [409, "conflict", "the change refers to something that does not exist or is still in use"],
  "23514": [400, "validation_failed", "a value is outside its allowed range"],
  "22P02": [400, "validation_failed", "a value has the wrong format"],
  "22001": [400, "validation_failed", "a value is too long"],
  "22021": [400, "validation_failed", "a value contains a NUL character or invalid UTF-8"],
  "54000": [400, "validation_failed", "a value is too complex to process (e.g. a search query)"],
};

/** Builds the app without listening: tests inject requests, server.ts listens. */
export async function buildApp(options: BuildOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    // One hop: Kong, which appends the address it saw to X-Forwarded-For. `true` would take the leftmost entry,
    // which the client writes, so a client could choose the address its limit and logs are keyed on.
    trustProxy: (_address: string, hop: number) => hop < 1,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  });
  // The API speaks JSON only: without this, text/plain bodies would be accepted as strings.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const db = tracedDatabase(options.db);
  const metrics = createMetrics(db.poolStats ? () => db.poolStats!() : undefined);
  const directory = new TenantDirectory(db, config.TENANT_CACHE_TTL_MS);
  const services: Services = { db, directory, metrics, config };
  const authenticate = createAuthenticator({
    jwksUrl: config.AUTH_JWKS_URL,
    secret: config.AUTH_JWT_SECRET,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
  });

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    const span = tracer.startSpan(`${request.method} ${request.routeOptions.url ?? "unmatched"}`, {
      attributes: { "http.request.method": request.method, "http.route": request.routeOptions.url ?? "" },
    });
    (request as unknown as { span: typeof span }).span = span;
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.duration.observe(labels, reply.elapsedTime / 1000);
    const span = (request as unknown as { span?: import("@opentelemetry/api").Span }).span;
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      if (request.tenant) span.setAttribute("tenant.id", request.tenant.id);
      endSpan(span);
    }
  });

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
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.code(413).send({ error: { code: "body_too_large", message: `the body is larger than ${config.BODY_LIMIT_BYTES} bytes` } });
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

  await app.register(swagger, {
    openapi: {
      info: { title: "Tenant service", version: "1.0.0", description: "Tenant-isolated API over PostgreSQL/Citus" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  await opsRoutes(app, { db, metrics });

  // ---- authenticated API
  await app.register(async (api) => {
    api.addHook("onRoute", (route) => {
      const creatingTenant = route.method === "POST" && route.url === "/v1/tenants";
      route.config = { ...(route.config ?? {}), tenantScoped: !creatingTenant };
    });
    api.addHook("onRequest", async (request) => {
      request.principal = await authenticate(request.headers.authorization);
      if (request.routeOptions.config.tenantScoped) {
        request.tenant = await resolveRequestTenant(request, request.principal, directory, config.BASE_DOMAIN);
        request.log = request.log.child({ tenantId: request.tenant.id });
      }
    });
    await api.register(rateLimit, {
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      // Leases from Redis when there is one (see rate-limit-store.ts); otherwise the plugin's in-process store.
      store: options.redis ? leasedRedisStore(options.redis, "tenant-service:rate:", { onRenewal: (result) => metrics.rateLimitRenewals.inc({ result }) }) : undefined,
      keyGenerator: (request) => (request.tenant ? `tenant:${request.tenant.id}` : `principal:${request.principal?.subject ?? request.ip}`),
      enableDraftSpec: true,
      // A Redis outage degrades to no limiting rather than to an outage of the API.
      skipOnError: true,
      errorResponseBuilder: (_request, context) =>
        new AppError(429, "rate_limited", `too many requests for this tenant: ${context.max} per ${context.after}; retry after the reset`),
    });
    await tenantRoutes(api, services);
    await api.register((scoped) => tenantDataRoutes(scoped, services), { prefix: "/v1/tenants/:tenant" });
    await api.register((scoped) => tenantDataRoutes(scoped, services), { prefix: "/v1" });
  });

  return app;
}
