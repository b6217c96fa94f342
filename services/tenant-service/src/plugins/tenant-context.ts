/**
 * Who is asking and for which tenant, before a route runs: the bearer token (auth.ts), then, on a route whose
 * config says `tenantScoped: true`, the one tenant the request acts on (tenant-scope.ts: path, X-Tenant-ID,
 * subdomain or token, all of which must be the token's tenant), then the tenant's limits: its concurrent requests in
 * this replica and its requests a minute (tenant-limits.ts, from its plan or its own values, plans.ts).
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
import { RATE_LIMIT_PREFIX, leasedRedisStore, tenantRateKey } from "../rate-limit-store.js";
import type { TenantDirectory } from "../tenant-directory.js";
import type { TenantLimiter } from "../tenant-limits.js";
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
  readonly limiter: TenantLimiter;
  /** Shared rate-limit store; without it the limiter is per process (one replica only). */
  readonly redis?: Redis;
}

export const tenantContext = shared<TenantContextOptions>("tenant-context", async (api, { config, directory, metrics, limiter, redis }) => {
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
      await limiter.admit(request);
    }
  });
  // The request's database work is over when its answer is ready (an error's too): its place is free. onResponse
  // as well, in case an answer is never sent; releasing twice is a no-op.
  api.addHook("onSend", async (request, reply) => limiter.release(request, reply));
  api.addHook("onResponse", async (request) => limiter.release(request));

  await api.register(rateLimit, {
    // The tenant's own (its plan's, or its override), or RATE_LIMIT_MAX flat for everyone when set.
    max: (request) => limiter.requestsPerWindow(request),
    // A request whose tenant's row is not known yet is charged by limiter.learn() once its transaction reads it.
    allowList: (request) => limiter.rateDeferred(request),
    timeWindow: config.RATE_LIMIT_WINDOW_MS,
    // Leases from Redis when there is one (see rate-limit-store.ts); otherwise the plugin's in-process store.
    store: redis ? leasedRedisStore(redis, RATE_LIMIT_PREFIX, { onRenewal: (result) => metrics.rateLimitRenewals.inc({ result }) }) : undefined,
    // A platform administrator is counted as itself, not against the tenant it acts on (tenant-limits.ts).
    keyGenerator: (request) =>
      request.tenant && !request.principal?.isPlatformAdmin ? tenantRateKey(request.tenant.id) : `principal:${request.principal?.subject ?? request.ip}`,
    enableDraftSpec: true,
    // A Redis outage degrades to no limiting rather than to an outage of the API.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new AppError(429, "rate_limited", `too many requests for this tenant: ${context.max} per window; retry after ${context.after}`),
  });
  limiter.useRateCheck(api.createRateLimit());
});
