/**
 * The tenant's OAuth2 client in Hydra (issue 24), which the provisioning job creates (worker/provision.ts): its
 * administrator reads what it is and sets a new secret, answered once. The platform never stores the secret.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError, notFound } from "../errors.js";
import { HydraError, type TenantClient } from "../hydra.js";
import { errorResponses } from "../schemas.js";
import { audit, inTenant, requireTenantAdmin, tenantRequest, type RouteOptions } from "./context.js";

export const OAuth2Client = z
  .object({
    clientId: z.string(),
    audience: z.string().describe("What a token request sends as `audience` (space-separated): the service's, and the tenant's own, which names the tenant in the token"),
    grantTypes: z.array(z.string()),
    tokenEndpoint: z.string().describe("Hydra's token endpoint (grant_type=client_credentials, client_secret_basic)"),
  })
  .meta({ id: "OAuth2Client", description: "The tenant's OAuth2 client, for its own systems to get tokens with" });

export const OAuth2ClientSecret = OAuth2Client.extend({
  clientSecret: z.string().describe("The new secret: shown this once, stored nowhere by the platform (Hydra keeps a hash)"),
}).meta({ id: "OAuth2ClientSecret", description: "The tenant's OAuth2 client with its new secret" });

export const oauth2ClientRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, options) => {
  const { services } = options;
  const { config, hydra } = services;
  // A deployment without Hydra's admin API (development; production requires HYDRA_ADMIN_URL) has no OAuth2 clients:
  // the routes are not there (404), and not in its description either.
  if (!hydra) return;
  const tokenEndpoint = new URL("oauth2/token", config.AUTH_ISSUER.endsWith("/") ? config.AUTH_ISSUER : `${config.AUTH_ISSUER}/`).toString();
  const view = (client: TenantClient) => ({ clientId: client.clientId, audience: client.audience.join(" "), grantTypes: [...client.grantTypes], tokenEndpoint });

  /** Hydra's 404 is the tenant's (provisioning has not created the client yet); any other failure is Hydra's. */
  const fromHydra = (error: unknown): never => {
    if (error instanceof HydraError && error.status === 404) throw notFound("the tenant's OAuth2 client (its provisioning has not run yet)");
    if (error instanceof HydraError) throw new AppError(503, "oauth2_unavailable", "Hydra's admin API did not do it; retry", { "retry-after": "5" });
    throw error;
  };

  app.get("/oauth2-client", {
      config: { tenantScoped: true },
      schema: { ...tenantRequest(options, {}), tags: ["oauth2"], response: { 200: OAuth2Client, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request) => {
    requireTenantAdmin(request);
    const tenantId = request.tenant!.id;
    const client = await hydra.find(tenantId).catch(fromHydra);
    if (!client) throw notFound("the tenant's OAuth2 client (its provisioning has not run yet)");
    return view(client);
  });

  /**
   * Rotates the secret and answers the new one: the only time anyone sees it. The audit entry and Hydra's change
   * commit together or the secret is not answered: the transaction stays open across Hydra's call, so a failed call
   * leaves no entry, and a failed commit answers 5xx (the secret was changed: rotate again).
   */
  app.post("/oauth2-client/secret", {
      config: { tenantScoped: true },
      schema: { ...tenantRequest(options, {}), tags: ["oauth2"], response: { 200: OAuth2ClientSecret, ...errorResponses(400, 401, 403, 404, 429) } },
    }, async (request, reply) => {
    requireTenantAdmin(request);
    const rotated = await inTenant(services, request, async (tx, tenant) => {
      const result = await hydra.rotateSecret(tenant.id).catch(fromHydra);
      await audit(tx, request, "oauth2_client.secret_rotate", "oauth2_client", tenant.id, { clientId: result.client.clientId });
      return result;
    });
    // The answer holds a credential: never cached on the way.
    void reply.header("cache-control", "no-store");
    return { ...view(rotated.client), clientSecret: rotated.secret };
  });
};
