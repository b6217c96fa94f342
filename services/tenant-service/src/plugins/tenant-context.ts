/**
 * Who is asking and for which tenant, before a route runs: the bearer token (auth.ts), then, on a route whose
 * config says `tenantScoped: true`, the one tenant the request acts on (tenant-scope.ts: path, X-Tenant-ID,
 * subdomain or token, all of which must be the token's tenant), then the per-tenant rate limit.
 *
 * Registered in the API's scope: every route there must declare `config.tenantScoped`, true or false, so whether
 * a route reads tenant data is written next to the route and never guessed from its URL.
 */
import rateLimit from "@fastify/rate-limit";
import type { Redis } from "ioredis";
import { createAuthenticator, type Principal } from "../auth.js";
import type { ServiceConfig } from "../config.js";
import { AppError } from "../errors.js";
import type { ServiceMetrics } from "../metrics.js";
import { leasedRedisStore } from "../rate-limit-store.js";
import type { TenantDirectory } from "../tenant-directory.js";
import { resolveRequestTenant, type TenantAccess } from "../tenant-scope.js";
import { shared } from "./shared.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set for every request in the API's scope (401 otherwise). */
    principal?: Principal;
    /**
     * Set for every request to a tenant-scoped route (400, 403 or 404 otherwise). Its row may still be judged in
     * the route's transaction (TenantAccess): read it through routes/context.ts.
     */
    tenant?: TenantAccess;
  }
  interface FastifyContextConfig {
    /** The route acts on one tenant's data: the request must name a tenant its token may act on. */
    tenantScoped?: boolean;
  }
}

export interface TenantContextOptions {
  readonly config: ServiceConfig;
  readonly directory: TenantDirectory;
  readonly metrics: ServiceMetrics;
  /** Shared rate-limit store; without it the limiter is per process (one replica only). */
  readonly redis?: Redis;
}

export const tenantContext = shared<TenantContextOptions>("tenant-context", async (api, { config, directory, metrics, redis }) => {
  const authenticate = createAuthenticator({
    jwksUrl: config.AUTH_JWKS_URL,
    secret: config.AUTH_JWT_SECRET,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
  });

  api.addHook("onRoute", (route) => {
    if (typeof route.config?.tenantScoped !== "boolean") {
      throw new Error(`${String(route.method)} ${route.url}: declare config.tenantScoped (true when the route acts on one tenant's data)`);
    }
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
    store: redis ? leasedRedisStore(redis, "tenant-service:rate:", { onRenewal: (result) => metrics.rateLimitRenewals.inc({ result }) }) : undefined,
    keyGenerator: (request) => (request.tenant ? `tenant:${request.tenant.id}` : `principal:${request.principal?.subject ?? request.ip}`),
    enableDraftSpec: true,
    // A Redis outage degrades to no limiting rather than to an outage of the API.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new AppError(429, "rate_limited", `too many requests for this tenant: ${context.max} per ${context.after}; retry after the reset`),
  });
});
