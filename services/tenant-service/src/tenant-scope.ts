import type { FastifyRequest } from "fastify";
import type { Principal } from "./auth.js";
import { AppError, badRequest, forbidden, notFound } from "./errors.js";
import type { TenantRecord } from "./repositories/tenants.js";
import { CODE_PATTERN, UUID_PATTERN, type TenantDirectory } from "./tenant-directory.js";

export interface TenantReference {
  readonly source: "path" | "header" | "subdomain" | "token";
  readonly value: string;
}

/** The subdomain label of `host` under `baseDomain` (acme.app.example.com → acme), if it is exactly one label. */
export function subdomainOf(host: string | undefined, baseDomain: string): string | undefined {
  if (!host) return undefined;
  const name = host.toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");
  const suffix = `.${baseDomain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  return label && !label.includes(".") ? label : undefined;
}

/** Every place the request names a tenant. All of them must agree, and (unless platform admin) match the token. */
export function tenantReferences(request: FastifyRequest, principal: Principal, baseDomain: string): TenantReference[] {
  const refs: TenantReference[] = [];
  const path = (request.params as { tenant?: string } | undefined)?.tenant;
  if (path !== undefined) refs.push({ source: "path", value: path });
  const header = request.headers["x-tenant-id"];
  if (typeof header === "string" && header.trim() !== "") refs.push({ source: "header", value: header.trim() });
  else if (Array.isArray(header)) throw badRequest("send X-Tenant-ID once", "invalid_tenant_reference");
  const sub = subdomainOf(request.headers.host, baseDomain);
  if (sub !== undefined) refs.push({ source: "subdomain", value: sub });
  if (refs.length === 0 && principal.tenantId) refs.push({ source: "token", value: principal.tenantId });
  for (const ref of refs) {
    if (!UUID_PATTERN.test(ref.value) && !CODE_PATTERN.test(ref.value)) {
      throw badRequest(`the tenant named by the ${ref.source} ("${ref.value.slice(0, 80)}") is neither a tenant id nor a tenant code`, "invalid_tenant_reference");
    }
  }
  return refs;
}

/**
 * The tenant a request acts on. Its id is always known before the route runs; its row may not be.
 *
 * When the request names its tenant by id only (a tenant's token, or an id in the path or header) and this process
 * has not cached that tenant, the row is not looked up in a transaction of its own: the route's transaction reads it,
 * pipelined with the route's first statement (routes/context.ts, inTenant), and `admit` judges it there. At a million
 * tenants with uniform access nearly every request misses any cache a replica can afford, and a lookup transaction of
 * its own halved throughput (issue 22). Nothing is answered before `admit` has passed, and the transaction rolls back
 * when it fails, so a suspended or missing tenant is refused as before, and its row-level-security context meanwhile
 * confines the statement to that tenant's id.
 */
export interface TenantAccess {
  readonly id: string;
  /** The row, when it was known before the route ran (cached, or looked up because a code named the tenant). */
  readonly record?: TenantRecord;
  /** Judges the tenant's row (or its absence) for this request: returns it, or throws the error the request gets. */
  admit(record: TenantRecord | undefined): TenantRecord;
}

/**
 * Decides which tenant a request acts on, or refuses. A tenant's token can only ever act on its own tenant, and
 * learns nothing about others: a foreign id or code, existing or not, is 403 before anything is read.
 */
export async function resolveRequestTenant(
  request: FastifyRequest,
  principal: Principal,
  directory: TenantDirectory,
  baseDomain: string,
): Promise<TenantAccess> {
  const refs = tenantReferences(request, principal, baseDomain);
  if (refs.length === 0) {
    throw badRequest("no tenant: name it in the path (/v1/tenants/{tenant}/...), the X-Tenant-ID header or the subdomain", "tenant_required");
  }
  if (!principal.isPlatformAdmin) {
    const own = principal.tenantId!;
    for (const ref of refs) {
      if (UUID_PATTERN.test(ref.value) && ref.value.toLowerCase() !== own) throw forbidden(`the token does not grant access to the tenant named by the ${ref.source}`);
    }
    const admit = (tenant: TenantRecord | undefined): TenantRecord => {
      if (!tenant) throw forbidden("the token's tenant does not exist");
      for (const ref of refs) {
        if (!UUID_PATTERN.test(ref.value) && ref.value !== tenant.code) throw forbidden(`the token does not grant access to the tenant named by the ${ref.source}`);
      }
      if (tenant.status === "suspended") throw forbidden(`tenant ${tenant.code} is suspended`, "tenant_suspended");
      // Being erased: its own tokens are refused like a suspended tenant's; platform administrators still see it and
      // can cancel (routes/erasures.ts).
      if (tenant.status === "deleting") throw forbidden(`tenant ${tenant.code} is being erased`, "tenant_deleting");
      return tenant;
    };
    return accessTo(own, admit, directory, refs.some((ref) => !UUID_PATTERN.test(ref.value)));
  }
  const ids = new Set(refs.filter((ref) => UUID_PATTERN.test(ref.value)).map((ref) => ref.value.toLowerCase()));
  if (ids.size === 1 && ids.size === refs.length) {
    const [id] = ids as unknown as [string];
    const ref = refs[0]!;
    return accessTo(id, (tenant) => {
      if (!tenant) throw notFound(`tenant "${ref.value}" (named by the ${ref.source})`);
      return tenant;
    }, directory, false);
  }
  let resolved: TenantRecord | undefined;
  for (const ref of refs) {
    const tenant = await directory.resolve(ref.value);
    if (!tenant) throw notFound(`tenant "${ref.value}" (named by the ${ref.source})`);
    if (resolved && resolved.id !== tenant.id) {
      throw new AppError(400, "conflicting_tenant_references", `the ${refs[0]!.source} and the ${ref.source} name different tenants`);
    }
    resolved = tenant;
  }
  const record = resolved!;
  return { id: record.id, record, admit: () => record };
}

/**
 * The access for tenant `id`: judged now when this process holds its row or `lookupNow` (a code must be compared
 * with the row), otherwise left to the route's transaction.
 */
async function accessTo(id: string, admit: TenantAccess["admit"], directory: TenantDirectory, lookupNow: boolean): Promise<TenantAccess> {
  const cached = directory.peek(id);
  if (cached !== undefined || lookupNow) {
    const record = admit(cached === undefined ? await directory.resolve(id) : (cached ?? undefined));
    return { id, record, admit };
  }
  return { id, admit };
}
