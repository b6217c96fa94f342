/**
 * Each tenant's OAuth2 client in Ory Hydra (issue 24), through Hydra's admin API: the client a tenant's own systems
 * get tokens with (grant client_credentials at Hydra's public /oauth2/token).
 *
 * One client a tenant, found by a client_id derived from the tenant id (`tenantClientId`), so creating it again after
 * a crash finds the one created before instead of a second. Its secret is never stored by the platform and never
 * logged: Hydra keeps only a hash; the worker creates the client with a secret Hydra generates and drops it unread;
 * the tenant's administrator gets one by rotating it (POST /v1/tenants/{t}/oauth2-client/secret, routes/oauth2-client.ts),
 * which answers the new secret once.
 */
import { randomBytes } from "node:crypto";
import { tenantAudience } from "./auth.js";

/** The client_id of a tenant's client: derived, so every attempt of the job names the same one. */
export const tenantClientId = (tenantId: string): string => `tenant-${tenantId.toLowerCase()}`;

export interface TenantClient {
  readonly clientId: string;
  /** What a token request names in `audience` (space-separated): the service, and the tenant. */
  readonly audience: readonly string[];
  readonly grantTypes: readonly string[];
  readonly metadata: Record<string, unknown>;
}

export class HydraError extends Error {
  override readonly name = "HydraError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface HydraAdminOptions {
  /** Hydra's admin API base URL (HYDRA_ADMIN_URL), e.g. http://hydra-admin.auth.svc.cluster.local:4445 */
  readonly adminUrl: string;
  /** The audience the service accepts (AUTH_AUDIENCE): every tenant client may request it. */
  readonly serviceAudience: string;
  /** One request's bound. @default 10000 */
  readonly timeoutMs?: number;
}

interface HydraClientBody {
  client_id: string;
  client_secret?: string;
  audience?: string[];
  grant_types?: string[];
  metadata?: Record<string, unknown>;
}

/** The admin API calls the provisioning job and the rotate-secret route make; nothing else of Hydra's. */
export class HydraAdmin {
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: HydraAdminOptions) {
    this.base = options.adminUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The tenant's client, or undefined where Hydra has none. */
  async find(tenantId: string): Promise<TenantClient | undefined> {
    const response = await this.call("GET", `/admin/clients/${encodeURIComponent(tenantClientId(tenantId))}`);
    if (response.status === 404) return undefined;
    await this.expect(response, 200, "reading the tenant's OAuth2 client");
    return toTenantClient((await response.json()) as HydraClientBody);
  }

  /**
   * The tenant's client, created if Hydra has none. A crash between Hydra's create and the job's end leaves the
   * client; the rerun finds it here. Two runs at once: the second create is refused (409) and it reads the first's.
   */
  async ensure(tenantId: string): Promise<{ client: TenantClient; created: boolean }> {
    const existing = await this.find(tenantId);
    if (existing) return { client: existing, created: false };
    const response = await this.call("POST", "/admin/clients", {
      client_id: tenantClientId(tenantId),
      client_name: `tenant ${tenantId}`,
      owner: tenantId,
      grant_types: ["client_credentials"],
      response_types: ["token"],
      token_endpoint_auth_method: "client_secret_basic",
      // The service's audience and the tenant's own: a token that names the tenant's audience is that tenant's
      // (auth.ts). Hydra grants only audiences on this list, so another tenant's cannot be requested.
      audience: [this.options.serviceAudience, tenantAudience(tenantId)],
      // No scope of the service's (tenant:admin, platform:admin): a tenant's system acts as a member of the tenant.
      // Hydra fills in its defaults (openid offline), which grant nothing here.
      scope: "",
      metadata: { tenant_id: tenantId },
      // No client_secret: Hydra generates one and answers it once, in this response, which is dropped unread.
    });
    if (response.status === 409) {
      await response.body?.cancel();
      const raced = await this.find(tenantId);
      if (raced) return { client: raced, created: false };
    }
    await this.expect(response, 201, "creating the tenant's OAuth2 client");
    const body = (await response.json()) as HydraClientBody;
    delete body.client_secret;
    return { client: toTenantClient(body), created: true };
  }

  /**
   * Sets a new secret (generated here, 256 bits) and returns it: the only copy the platform ever holds, for the
   * response. Hydra hashes it; the old secret stops working at once.
   */
  async rotateSecret(tenantId: string): Promise<{ client: TenantClient; secret: string }> {
    const secret = randomBytes(32).toString("base64url");
    const response = await this.call("PATCH", `/admin/clients/${encodeURIComponent(tenantClientId(tenantId))}`, [
      { op: "replace", path: "/client_secret", value: secret },
    ]);
    if (response.status === 404) {
      await response.body?.cancel();
      throw new HydraError("the tenant has no OAuth2 client yet", 404);
    }
    await this.expect(response, 200, "rotating the tenant's OAuth2 client secret");
    const body = (await response.json()) as HydraClientBody;
    delete body.client_secret;
    return { client: toTenantClient(body), secret };
  }

  /** Removes the tenant's client (its erasure); absent already is fine. */
  async remove(tenantId: string): Promise<boolean> {
    const response = await this.call("DELETE", `/admin/clients/${encodeURIComponent(tenantClientId(tenantId))}`);
    if (response.status === 404) {
      await response.body?.cancel();
      return false;
    }
    await this.expect(response, 204, "deleting the tenant's OAuth2 client");
    return true;
  }

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new HydraError(`Hydra's admin API at ${this.base} did not answer ${method} ${path}: ${(error as Error).message}`);
    }
  }

  /** Hydra's error body names the problem; it never holds a secret (the requests that carry one succeed or 4xx on shape). */
  private async expect(response: Response, status: number, doing: string): Promise<void> {
    if (response.status === status) return;
    const text = (await response.text()).slice(0, 500);
    let reason = text;
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string; reason?: string } | string; error_description?: string };
      reason = typeof parsed.error === "object" ? [parsed.error.message, parsed.error.reason].filter(Boolean).join(": ") : [parsed.error, parsed.error_description].filter(Boolean).join(": ");
    } catch {
      // not JSON: the text as it is
    }
    throw new HydraError(`${doing}: Hydra answered ${response.status}${reason ? ` (${reason})` : ""}`, response.status);
  }
}

const toTenantClient = (c: HydraClientBody): TenantClient => ({
  clientId: c.client_id,
  audience: c.audience ?? [],
  grantTypes: c.grant_types ?? [],
  metadata: c.metadata ?? {},
});
