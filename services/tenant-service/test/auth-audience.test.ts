/**
 * How a token names its tenant (auth.ts): a user's by its tenant_id claim, a tenant's OAuth2 client's
 * (client_credentials at Hydra, issue 24) by its tenant audience. test/provisioning.test.ts gets such tokens from a
 * real Hydra; these are the rules for the combinations Hydra would not issue to our clients.
 */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createAuthenticator, tenantAudience } from "../src/auth.js";
import { AUDIENCE, ISSUER, SECRET } from "./harness.js";

const A = "6f1c7c52-3f4e-4c38-9d5e-0f1f3c0e9a01";
const B = "0b7d0a55-1e7c-4f0a-8a53-5b0e8a2c6d02";
const authenticate = createAuthenticator({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE });
const bearer = async (claims: Record<string, unknown>, audience: string[]) =>
  `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(`tenant-${A}`).setIssuer(ISSUER).setAudience(audience).setIssuedAt().setExpirationTime("5m").sign(new TextEncoder().encode(SECRET))}`;
const refusal = (header: string) => authenticate(header).then(() => "accepted", (error: Error) => error.message);

describe("a token's scopes", () => {
  it("are read from scope (a space-separated string) and from scp (Hydra's array), either or both", async () => {
    expect(await authenticate(await bearer({ scp: ["tenant:admin"] }, [AUDIENCE, tenantAudience(A)]))).toMatchObject({ tenantId: A, isTenantAdmin: true });
    expect(await authenticate(await bearer({ scope: "platform:admin" }, [AUDIENCE]))).toMatchObject({ isPlatformAdmin: true });
    const both = await authenticate(await bearer({ scope: "tenant:admin", scp: ["platform:admin", 7] }, [AUDIENCE]));
    expect([...both.scopes].sort()).toEqual(["platform:admin", "tenant:admin"]);
    expect(await authenticate(await bearer({ scp: "tenant:admin" }, [AUDIENCE, tenantAudience(A)]))).toMatchObject({ isTenantAdmin: true });
  });
});

describe("a token's tenant", () => {
  it("is the tenant its audience names, where it has no tenant_id claim", async () => {
    const principal = await authenticate(await bearer({}, [AUDIENCE, tenantAudience(A)]));
    expect(principal).toMatchObject({ tenantId: A, isTenantAdmin: false, isPlatformAdmin: false });
  });

  it("is refused where its audience names two tenants, or the claim and the audience disagree", async () => {
    expect(await refusal(await bearer({}, [AUDIENCE, tenantAudience(A), tenantAudience(B)]))).toContain("more than one tenant");
    expect(await refusal(await bearer({ tenant_id: B }, [AUDIENCE, tenantAudience(A)]))).toContain("name different tenants");
    expect(await refusal(await bearer({}, [AUDIENCE, `${tenantAudience(A)}/x`]))).toContain("must end in a tenant's uuid");
  });

  it("agrees when both name the same tenant, and needs the service's audience as before", async () => {
    expect(await authenticate(await bearer({ tenant_id: A.toUpperCase() }, [AUDIENCE, tenantAudience(A)]))).toMatchObject({ tenantId: A });
    expect(await refusal(await bearer({}, [tenantAudience(A)]))).toContain("aud claim is not accepted");
    expect(await refusal(await bearer({}, [AUDIENCE]))).toContain("names no tenant");
  });
});
