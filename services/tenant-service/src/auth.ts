import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { AppError } from "./errors.js";

export const SCOPES = { platformAdmin: "platform:admin", tenantAdmin: "tenant:admin" } as const;

export interface Principal {
  readonly subject: string;
  /** The tenant the token belongs to; absent for platform-level tokens. */
  readonly tenantId?: string;
  readonly scopes: ReadonlySet<string>;
  readonly isPlatformAdmin: boolean;
  readonly isTenantAdmin: boolean;
}

export interface AuthOptions {
  readonly jwksUrl?: string;
  readonly secret?: string;
  readonly issuer: string;
  readonly audience: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A tenant's own audience: what a tenant's OAuth2 client may request of Hydra (hydra.ts), and how a client-credentials
 * token, which has no user and so no tenant_id claim, names its tenant. URL-shaped on purpose: Hydra matches a
 * requested audience against the client's list by scheme, host and path prefix (fosite's default strategy), so two
 * values that differ only after a `urn:` scheme would match each other, and one under the service's own audience
 * ("tenant-service/...") would match that. A path of its own per tenant matches only that tenant's.
 */
export const TENANT_AUDIENCE_PREFIX = "https://tenant-service/tenants/";
export const tenantAudience = (tenantId: string): string => `${TENANT_AUDIENCE_PREFIX}${tenantId.toLowerCase()}`;

/** The tenant ids a token's audience names (tenantAudience), lowercased. */
function tenantsInAudience(aud: JWTPayload["aud"]): string[] {
  const values = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  return values
    .filter((a) => a.startsWith(TENANT_AUDIENCE_PREFIX))
    .map((a) => a.slice(TENANT_AUDIENCE_PREFIX.length).toLowerCase());
}

const unauthorized = (message: string) =>
  new AppError(401, "unauthorized", message, { "www-authenticate": 'Bearer realm="tenant-service", error="invalid_token"' });

/**
 * Verifies bearer tokens: Hydra's asymmetric keys in production (JWKS), a shared HS256 secret in development.
 * The accepted algorithms are pinned per mode, so `alg: none` and algorithm confusion fail verification.
 */
export function createAuthenticator(options: AuthOptions): (header: string | undefined) => Promise<Principal> {
  let key: JWTVerifyGetKey | Uint8Array;
  let algorithms: string[];
  if (options.jwksUrl) {
    key = createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    algorithms = ["RS256", "ES256", "EdDSA"];
  } else if (options.secret) {
    key = new TextEncoder().encode(options.secret);
    algorithms = ["HS256"];
  } else {
    throw new Error("authentication needs AUTH_JWKS_URL or AUTH_JWT_SECRET");
  }

  // Verified tokens are remembered until they expire (at most a minute): a client sends the same token on every
  // request, and signature verification was the largest CPU cost per request. A cached entry never outlives `exp`.
  const verified = new Map<string, { principal: Principal; until: number }>();

  return async (header) => {
    if (!header) throw unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'");
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header);
    if (!match) throw unauthorized("the Authorization header must be 'Bearer <JWT>'");
    const cached = verified.get(match[1]!);
    if (cached) {
      if (cached.until > Date.now()) return cached.principal;
      verified.delete(match[1]!);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1]!, key as Uint8Array, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms,
        clockTolerance: 5,
        requiredClaims: ["sub", "exp"],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthorized("the token has expired");
      if (error instanceof joseErrors.JWTClaimValidationFailed) throw unauthorized(`the token's ${error.claim} claim is not accepted`);
      throw unauthorized("the token could not be verified");
    }
    const claimed = payload.tenant_id;
    if (claimed !== undefined && (typeof claimed !== "string" || !UUID.test(claimed))) {
      throw unauthorized("the token's tenant_id claim must be a tenant's uuid");
    }
    // A tenant's OAuth2 client (client_credentials) names its tenant by audience; a user's token by tenant_id. Both
    // at once must agree, and an audience names one tenant at most.
    const audienced = tenantsInAudience(payload.aud);
    if (audienced.length > 1) throw unauthorized("the token's audience names more than one tenant");
    if (audienced.length === 1 && !UUID.test(audienced[0]!)) throw unauthorized("the token's tenant audience must end in a tenant's uuid");
    if (audienced.length === 1 && claimed !== undefined && claimed.toLowerCase() !== audienced[0]) {
      throw unauthorized("the token's tenant_id claim and its tenant audience name different tenants");
    }
    const tenantId = (claimed as string | undefined) ?? audienced[0];
    // Hydra's JWT access tokens carry their scopes as an array in scp (strategies.jwt.scope_claim "list", its
    // default); RFC 9068 and our development tokens as a space-separated string in scope. Either, or both, is read.
    const scopes = new Set([payload.scope, payload.scp].flatMap((claim) => (typeof claim === "string" ? claim.split(" ") : Array.isArray(claim) ? claim.filter((s): s is string => typeof s === "string") : [])).filter(Boolean));
    const isPlatformAdmin = scopes.has(SCOPES.platformAdmin);
    if (!tenantId && !isPlatformAdmin) throw unauthorized(`the token names no tenant (a tenant_id claim, or an audience ${TENANT_AUDIENCE_PREFIX}<tenant id>)`);
    const principal: Principal = {
      subject: String(payload.sub),
      tenantId: tenantId?.toLowerCase(),
      scopes,
      isPlatformAdmin,
      isTenantAdmin: scopes.has(SCOPES.tenantAdmin),
    };
    if (verified.size >= 10_000) verified.clear();
    verified.set(match[1]!, { principal, until: Math.min((payload.exp ?? 0) * 1000, Date.now() + 60_000) });
    return principal;
  };
}
