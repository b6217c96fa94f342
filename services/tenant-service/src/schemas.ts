/**
 * Schemas more than one resource's routes use; each resource's own request and response schemas are in its route
 * file. Responses are declared through the zod type provider, so a handler's answer is checked and filtered by its
 * schema before it is sent (an undeclared field never leaves), and /openapi.json describes exactly what is sent.
 */
import { z } from "zod";

/** A tenant id (any uuid, in any case) or code, as tenant-scope.ts accepts them. */
const TENANT_REFERENCE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";

export const TenantParam = z.object({
  tenant: z.string().max(100).regex(new RegExp(`^(?:${TENANT_REFERENCE})$`), "must be a tenant's id or code"),
});

/**
 * X-Tenant-ID, as documented on every tenant-scoped route (plugins/openapi.ts). Not validated by a schema:
 * tenant-scope.ts reads and checks it (with every other place a request names its tenant) before validation runs.
 */
export const TENANT_HEADER = {
  type: "string",
  pattern: `^(?:${TENANT_REFERENCE})?$`,
  description: "The tenant's id or code, where the path names none (or the same one). Empty is the same as absent",
} as const;
export const IdParam = z.object({ id: z.uuid("must be a uuid").transform((v) => v.toLowerCase()) });

export const ListQuery = z.object({
  limit: z.coerce.number().int().optional(),
  cursor: z.string().max(500).optional(),
});

/** Clamped, never rejected: a client asking for 10,000 gets the maximum page. */
export function clampLimit(limit: number | undefined, max = 100, fallback = 20): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(max, Math.max(1, Math.trunc(limit)));
}

/** A timestamp: a Date in the code, an ISO 8601 string in UTC on the wire (what JSON.stringify makes of a Date). */
export const Timestamp = z.codec(z.iso.datetime(), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
});

/** A tenant's effective limits (plans.ts): on the tenant and on its usage. */
export const Limits = z
  .object({
    maxUsers: z.int(),
    maxStorageGb: z.int(),
    requestsPerMinute: z.int().describe("Across every replica"),
    concurrentRequests: z.int().describe("In flight at once on each replica of the service"),
  })
  .meta({ id: "Limits", description: "The limits that apply: the tenant's own where set, else its plan's" });

/** One page of a list, newest first; `nextCursor` is null on the last page. */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() });

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe("Stable, machine-readable: validation_failed, forbidden, not_found, rate_limited, ..."),
      message: z.string().describe("For a person: on a 4xx what was wrong, on a 5xx only the request id to quote"),
    }),
  })
  .meta({ id: "Error" });

const ERRORS = {
  400: "Invalid: a field, the JSON, the cursor or the tenant reference; the message says which",
  401: "No valid bearer token (WWW-Authenticate says why)",
  403: "The token may not do this, or not on this tenant, or the tenant is suspended or being erased",
  404: "No such object in this tenant, or (platform administrators) no such tenant",
  409: "Conflicts with the current state (a taken code or email, a quota, a user still owning items, a tenant being erased)",
  410: "Gone: the object existed and has expired (an export past its retention); request a new one",
  413: "The body is larger than the service's limit (BODY_LIMIT_BYTES)",
  415: "The body is not JSON (send Content-Type: application/json)",
  429: "The tenant's requests a minute are spent, or it has its limit of requests in flight on this replica: retry after the Retry-After seconds",
  503: "A database node this request needs is unavailable (a failover or restart in progress), or the tenant is being cut over to another database (tenant_moving, under 2 s): retry after the Retry-After seconds",
} as const;

export type ErrorStatus = keyof typeof ERRORS;

/** The error answers a route can give, each with the one error body; every route reads the database, so 503 too. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S | 503, z.ZodType> {
  return Object.fromEntries([...statuses, 503 as const].map((status) => [status, ErrorBody.describe(ERRORS[status])])) as unknown as Record<S | 503, z.ZodType>;
}

/** A 204 answer: no body. */
export const NoContent = z.undefined().describe("Done; no body");
