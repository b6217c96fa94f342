/**
 * Builds the app without listening: tests inject requests, server.ts listens. This file only composes: what each
 * part does is in plugins/ (errors, observability, the OpenAPI description, ops routes, tenant context) and
 * routes/ (one file per resource), over repositories/ (one per table group).
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import type { ServiceConfig } from "./config.js";
import type { Database } from "./db/database.js";
import { errors, routerErrors } from "./plugins/errors.js";
import { observability } from "./plugins/observability.js";
import { openapi } from "./plugins/openapi.js";
import { opsRoutes } from "./plugins/ops.js";
import { tenantContext } from "./plugins/tenant-context.js";
import { auditLogRoutes } from "./routes/audit-log.js";
import { erasureRoutes } from "./routes/erasures.js";
import { exportRoutes } from "./routes/exports.js";
import { importRoutes } from "./routes/imports.js";
import { itemRoutes } from "./routes/items.js";
import { oauth2ClientRoutes } from "./routes/oauth2-client.js";
import { tenantRoutes } from "./routes/tenants.js";
import { usageRoutes } from "./routes/usage.js";
import { userRoutes } from "./routes/users.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { createServices } from "./services.js";
import { fastifyTracing } from "./tracing.js";

export interface BuildOptions {
  readonly config: ServiceConfig;
  readonly db: Database;
  /** Shared rate-limit store; without it the limiter is per process (one replica only). */
  readonly redis?: Redis;
  readonly logger?: FastifyServerOptions["logger"];
}

/** The routes of one tenant's data, each registered twice: under /v1/tenants/:tenant and under /v1. */
const TENANT_DATA_ROUTES = [userRoutes, itemRoutes, auditLogRoutes, usageRoutes, exportRoutes, importRoutes, webhookRoutes, oauth2ClientRoutes];

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
    // A tenant code or id (at most 100 characters) percent-encoded takes at most 900; longer is refused by
    // routerErrors with 400 like any other invalid value.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    frameworkErrors: routerErrors,
  });
  // The API speaks JSON only: without this, text/plain bodies would be accepted as strings.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const services = createServices(config, options.db);
  const { db, metrics, directory, limiter } = services;

  // First: it wraps the hooks and handlers registered after it in spans, and starts the request's span from its
  // traceparent (tracing.ts; inert unless tracing was started).
  await app.register(fastifyTracing.plugin());
  await app.register(observability, { metrics });
  await app.register(errors, { metrics, bodyLimitBytes: config.BODY_LIMIT_BYTES });
  await app.register(openapi);
  await app.register(opsRoutes, { db, metrics });

  // The authenticated API: every route in this scope declares whether it is tenant-scoped (plugins/tenant-context.ts).
  await app.register(async (api) => {
    await api.register(tenantContext, { config, directory, metrics, limiter, redis: options.redis });
    await api.register(tenantRoutes, { services });
    await api.register(erasureRoutes, { services });
    // The tenant named in the path, or else by X-Tenant-ID, the subdomain or the token (tenant-scope.ts).
    for (const [prefix, tenantInPath] of [["/v1/tenants/:tenant", true], ["/v1", false]] as const) {
      await api.register(async (scoped) => {
        for (const routes of TENANT_DATA_ROUTES) await scoped.register(routes, { services, tenantInPath });
      }, { prefix });
    }
  });

  return app;
}
