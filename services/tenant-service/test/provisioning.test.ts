/**
 * Tenant provisioning (issue 24) against the engines it meets in production: PostgreSQL 15 (roles and row-level
 * security as the bootstrap creates them), Redis, the worker as its own process (`pnpm worker`'s command line), and
 * a real Ory Hydra at the version the charts pin (scripts/tools/install-hydra.sh builds it from the Go module proxy;
 * where it cannot be had, this file skips and prints why).
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "graphile-worker";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort, installHydra, startHydra, waitFor, type HydraServer } from "@platform/testing";
import { buildApp } from "../src/app.js";
import { tenantAudience } from "../src/auth.js";
import { loadServiceConfig } from "../src/config.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { HydraAdmin, tenantClientId } from "../src/hydra.js";
import type { ProvisionStep } from "../src/worker/provision.js";
import { installQueue } from "../src/worker/queue.js";
import { createTaskList } from "../src/worker/tasks.js";
import { AUDIENCE, startStack, token, unavailable, type Stack } from "./harness.js";
import { startScript, type RunningProcess } from "./processes.js";

const hydraBinary = unavailable ? undefined : installHydra();
const skipped = unavailable ?? hydraBinary?.unavailable;
if (skipped) console.warn(`skipping provisioning tests: ${skipped}`);

describe.skipIf(skipped !== undefined)("tenant provisioning with a real Hydra, PostgreSQL 15, Redis and worker", () => {
  let hydra: HydraServer;
  let stack: Stack;
  let worker: RunningProcess;
  let platform: string;
  /** The service as production configures it: tokens verified against Hydra's JWKS. */
  let hydraAuthApp: FastifyInstance;
  let hydraAuthDb: ReturnType<typeof createPostgresDatabase>;
  let hydraAuthRedis: Redis;

  const createTenant = async (code: string, body: Record<string, unknown> = {}): Promise<string> => {
    const created = await stack.request({ method: "POST", url: "/v1/tenants", token: platform, payload: { code, name: code, ...body } });
    expect(created.statusCode, created.body).toBe(201);
    return created.json().id as string;
  };
  const provisioned = async (tenantId: string, timeoutMs = 30_000): Promise<void> => {
    await waitFor(
      `tenant ${tenantId} to be provisioned`,
      async () => (await stack.admin.query("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'tenant.provisioned'", [tenantId])).rows.length > 0,
      { timeoutMs, intervalMs: 200, detail: () => `the worker said:\n${worker.stdout.slice(-20).join("\n")}\n${worker.stderr.join("\n")}` },
    );
  };
  /** Everything provisioning leaves for a tenant, counted where it lives. */
  const state = async (tenantId: string) => {
    const q = async (sql: string) => (await stack.admin.query(sql, [tenantId])).rows;
    const clients = (await (await fetch(`${hydra.adminUrl}/admin/clients?owner=${tenantId}`)).json()) as { client_id: string }[];
    return {
      placements: await q("SELECT database FROM platform.tenant_placements WHERE tenant_id = $1"),
      admins: await q("SELECT email, role FROM platform.users WHERE tenant_id = $1"),
      userAudits: (await q("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'user.create'")).length,
      provisionedAudits: (await q("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'tenant.provisioned'")).length,
      hydraClients: clients.map((c) => c.client_id),
    };
  };
  /** What a provisioned tenant with an adminEmail has: one of everything. */
  const provisionedOnce = (tenantId: string, adminEmail: string) => ({
    placements: [{ database: "home" }],
    admins: [{ email: adminEmail, role: "admin" }],
    userAudits: 1,
    provisionedAudits: 1,
    hydraClients: [tenantClientId(tenantId)],
  });
  const tokenAt = (clientId: string, secret: string, audience?: string) =>
    fetch(`${hydra.publicUrl}/oauth2/token`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", ...(audience ? { audience } : {}) }),
    });

  beforeAll(async () => {
    hydra = await startHydra(hydraBinary!.path!);
    stack = await startStack({ env: { HYDRA_ADMIN_URL: hydra.adminUrl, TENANT_ERASURE_GRACE_SECONDS: "0" } });
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    platform = await token({ scope: "platform:admin" });
    worker = startScript("worker", {
      DATABASE_URL: stack.config.DATABASE_URL!,
      REDIS_URL: stack.redis.url,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      AUTH_AUDIENCE: AUDIENCE,
      HEALTH_PORT: String(await freePort()),
      WORKER_CONCURRENCY: "2",
      LOG_LEVEL: "debug",
    });
    hydraAuthDb = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
    hydraAuthRedis = new Redis(stack.redis.url, { maxRetriesPerRequest: 1 });
    hydraAuthApp = await buildApp({
      config: loadServiceConfig({
        DATABASE_URL: stack.config.DATABASE_URL,
        REDIS_URL: stack.redis.url,
        AUTH_JWKS_URL: `${hydra.publicUrl}/.well-known/jwks.json`,
        AUTH_ISSUER: hydra.issuer,
        AUTH_AUDIENCE: AUDIENCE,
        HYDRA_ADMIN_URL: hydra.adminUrl,
        TENANT_CACHE_TTL_MS: "0",
      }),
      db: hydraAuthDb,
      redis: hydraAuthRedis,
    });
    await hydraAuthApp.ready();
  }, 20 * 60_000);
  afterAll(async () => {
    await worker?.stop();
    await hydraAuthApp?.close();
    await hydraAuthDb?.close();
    hydraAuthRedis?.disconnect();
    await stack?.close();
    await hydra?.stop();
  });

  it("POST /v1/tenants with adminEmail: the worker places the tenant at home, creates its admin and its Hydra client", async () => {
    const tenantId = await createTenant("acme", { adminEmail: "Owner@Acme.test" });
    await provisioned(tenantId);
    expect(await state(tenantId)).toEqual(provisionedOnce(tenantId, "Owner@Acme.test"));
    const client = (await (await fetch(`${hydra.adminUrl}/admin/clients/${tenantClientId(tenantId)}`)).json()) as Record<string, unknown>;
    expect(client).toMatchObject({
      grant_types: ["client_credentials"],
      audience: [AUDIENCE, tenantAudience(tenantId)],
      metadata: { tenant_id: tenantId },
      owner: tenantId,
      token_endpoint_auth_method: "client_secret_basic",
    });
    // The admin is a user of the tenant as the API shows it, under row-level security.
    const admin = await token({ tenant: tenantId, scope: "tenant:admin" });
    const users = await stack.request({ method: "GET", url: `/v1/tenants/${tenantId}/users`, token: admin });
    expect(users.json().data.map((u: { email: string; role: string }) => [u.email, u.role])).toEqual([["Owner@Acme.test", "admin"]]);
  }, 60_000);

  it("without adminEmail: placed and given a client, no user", async () => {
    const tenantId = await createTenant("bare");
    await provisioned(tenantId);
    const s = await state(tenantId);
    expect(s).toMatchObject({ placements: [{ database: "home" }], admins: [], hydraClients: [tenantClientId(tenantId)] });
  }, 60_000);

  it("the tenant admin rotates the secret once; the tenant's system gets a token from Hydra with it, and the service takes that token as the tenant's", async () => {
    const tenantId = await createTenant("globex", { adminEmail: "root@globex.test" });
    const other = await createTenant("initech");
    await Promise.all([provisioned(tenantId), provisioned(other)]);
    const admin = await token({ tenant: tenantId, scope: "tenant:admin" });
    const member = await token({ tenant: tenantId });

    expect((await stack.request({ method: "POST", url: `/v1/tenants/${tenantId}/oauth2-client/secret`, token: member })).statusCode, "a member may not rotate").toBe(403);
    const rotated = await stack.request({ method: "POST", url: `/v1/tenants/${tenantId}/oauth2-client/secret`, token: admin });
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect(rotated.headers["cache-control"]).toBe("no-store");
    const { clientId, clientSecret, audience, tokenEndpoint } = rotated.json() as Record<string, string>;
    expect(clientId).toBe(tenantClientId(tenantId));
    expect(audience).toBe(`${AUDIENCE} ${tenantAudience(tenantId)}`);
    expect(tokenEndpoint).toBe(new URL("oauth2/token", stack.config.AUTH_ISSUER).toString());
    // Reading the client again never shows a secret.
    const read = await stack.request({ method: "GET", url: `/v1/tenants/${tenantId}/oauth2-client`, token: admin });
    expect(read.statusCode).toBe(200);
    expect(read.body).not.toContain(clientSecret);

    // The tenant's system: client_credentials at Hydra's public token endpoint, with the audience it was given.
    const issued = await tokenAt(clientId!, clientSecret!, audience);
    expect(issued.status, await issued.clone().text()).toBe(200);
    const accessToken = ((await issued.json()) as { access_token: string }).access_token;
    const claims = JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: hydra.issuer, sub: clientId, aud: [AUDIENCE, tenantAudience(tenantId)] });

    // The service (verifying Hydra's keys, as in production) takes it as the tenant's, and only that tenant's.
    const asClient = (url: string, method: "GET" | "POST" = "GET", payload?: unknown) =>
      hydraAuthApp.inject({ method, url, headers: { authorization: `Bearer ${accessToken}` }, payload: payload as never });
    const own = await asClient("/v1/tenants/" + tenantId);
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json().id).toBe(tenantId);
    const items = await asClient("/v1/items");
    expect(items.statusCode, items.body).toBe(200);
    expect((await asClient(`/v1/tenants/${other}`)).statusCode, "another tenant's data").toBe(403);
    expect((await asClient("/v1/users", "POST", { email: "x@globex.test" })).statusCode, "a client is a member, not an administrator").toBe(403);

    // Another tenant's audience is not on this client's list: Hydra refuses to issue it.
    const foreign = await tokenAt(clientId!, clientSecret!, `${AUDIENCE} ${tenantAudience(other)}`);
    expect(foreign.status).toBe(400);
    expect(await foreign.text()).toContain("has not been whitelisted");
    // A token requested without the tenant's audience names no tenant: refused by the service.
    const bare = ((await (await tokenAt(clientId!, clientSecret!, AUDIENCE)).json()) as { access_token: string }).access_token;
    const refused = await hydraAuthApp.inject({ method: "GET", url: "/v1/items", headers: { authorization: `Bearer ${bare}` } });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.message).toContain("names no tenant");

    // Rotating again: the old secret stops working at once.
    const again = await stack.request({ method: "POST", url: `/v1/tenants/${tenantId}/oauth2-client/secret`, token: admin });
    expect(again.statusCode).toBe(200);
    expect((await tokenAt(clientId!, clientSecret!, audience)).status).toBe(401);
    expect((await tokenAt(clientId!, again.json().clientSecret as string, audience)).status).toBe(200);

    // The secret is nowhere the platform keeps or writes things: its database, the worker's and Hydra's logs.
    const dump = await stack.admin.query(
      `SELECT string_agg(t::text, ' ') AS text FROM (
         SELECT details::text AS t FROM platform.audit_log UNION ALL SELECT payload::text FROM graphile_worker._private_jobs
         UNION ALL SELECT features::text FROM platform.tenants) s`,
    );
    for (const secret of [clientSecret!, again.json().clientSecret as string]) {
      expect(dump.rows[0].text ?? "").not.toContain(secret);
      expect(worker.stdout.join("\n") + worker.stderr.join("\n")).not.toContain(secret);
      expect(hydra.output.join("\n")).not.toContain(secret);
    }
    const rotations = await stack.admin.query("SELECT actor, details FROM platform.audit_log WHERE tenant_id = $1 AND action = 'oauth2_client.secret_rotate'", [tenantId]);
    expect(rotations.rows).toEqual([
      { actor: "user-1", details: { clientId } },
      { actor: "user-1", details: { clientId } },
    ]);
  }, 60_000);

  it("a worker killed (SIGKILL) after Hydra created the client but before it heard so: the next worker finds the client, creates no second", async () => {
    // Hydra's admin API behind a relay that passes the create on to Hydra and then never answers it.
    let created!: () => void;
    const createdButUnanswered = new Promise<void>((resolve) => (created = resolve));
    const held: ServerResponse[] = [];
    const relay = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
        void fetch(`${hydra.adminUrl}${request.url}`, { method: request.method, headers: { "content-type": "application/json" }, body }).then(async (answer) => {
          const text = await answer.text();
          if (request.method === "POST" && request.url === "/admin/clients") {
            held.push(response);
            created();
            return;
          }
          response.writeHead(answer.status, { "content-type": "application/json" }).end(text);
        });
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const env = (adminUrl: string) => ({
      DATABASE_URL: stack.config.DATABASE_URL!, HYDRA_ADMIN_URL: adminUrl, AUTH_AUDIENCE: AUDIENCE, WORKER_CONCURRENCY: "1", LOG_LEVEL: "debug",
    });
    await worker.stop();
    const doomed = startScript("worker", { ...env(`http://127.0.0.1:${(relay.address() as AddressInfo).port}`), HEALTH_PORT: String(await freePort()) });
    let next: RunningProcess | undefined;
    try {
      const tenantId = await createTenant("killed", { adminEmail: "admin@killed.test" });
      await createdButUnanswered;
      doomed.child.kill("SIGKILL");
      await doomed.exited;
      const before = await state(tenantId);
      expect(before, "Hydra has the client; the job never finished").toMatchObject({ hydraClients: [tenantClientId(tenantId)], provisionedAudits: 0 });
      // The dead worker's lock, released as the runbook says (graphile-worker would wait 4 hours).
      await stack.admin.query("SELECT graphile_worker.force_unlock_workers(array_agg(DISTINCT locked_by)) FROM graphile_worker.jobs WHERE locked_by IS NOT NULL");
      next = startScript("worker", { ...env(hydra.adminUrl), HEALTH_PORT: String(await freePort()) });
      worker = next;
      await provisioned(tenantId);
      expect(await state(tenantId)).toEqual(provisionedOnce(tenantId, "admin@killed.test"));
      expect(next.stdout.join("\n")).toContain("found, created by an earlier attempt");
    } finally {
      for (const response of held) response.destroy();
      relay.close();
    }
  }, 90_000);

  describe("a job that stops after any step and runs again ends in the same state", () => {
    let appPool: pg.Pool;
    let db: ReturnType<typeof createPostgresDatabase>;
    beforeAll(async () => {
      // The process worker would take these jobs: these run in this process, with a crash at a chosen step.
      await worker.stop();
      appPool = new pg.Pool({ connectionString: stack.config.DATABASE_URL, max: 4 });
      db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 4 });
    });
    afterAll(async () => {
      await appPool?.end();
      await db?.close();
    });

    const run = (crashAfter?: ProvisionStep, between?: (step: ProvisionStep, tenantId: string) => Promise<void>) =>
      runOnce({
        pgPool: appPool,
        taskList: createTaskList({
          db, auditRetentionMonths: 13, rollupBatchSize: 100,
          hydra: new HydraAdmin({ adminUrl: hydra.adminUrl, serviceAudience: AUDIENCE }),
          afterProvisionStep: async (step, tenantId) => {
            await between?.(step, tenantId);
            if (step === crashAfter) throw new Error(`crash after ${step}`);
          },
        }),
      });

    it("a tenant erased while its provisioning runs (after the status check, before the client): no client outlives it", async () => {
      const tenantId = await createTenant("racing", { adminEmail: "admin@racing.test" });
      // What a finished erasure leaves, between provisioning's step 2 and its create: no tenant, and no client to delete.
      await run(undefined, async (step, id) => {
        if (step !== "tenant") return;
        for (const table of ["items", "users", "tenant_metrics", "audit_log", "tenants"]) {
          await stack.admin.query(`DELETE FROM platform.${table} WHERE ${table === "tenants" ? "id" : "tenant_id"} = $1`, [id]);
        }
      });
      expect((await fetch(`${hydra.adminUrl}/admin/clients/${tenantClientId(tenantId)}`)).status).toBe(404);
      expect((await stack.admin.query("SELECT count(*)::int AS n FROM graphile_worker.jobs")).rows[0].n, "no job left").toBe(0);
    });

    it("a tenant's erasure deletes its Hydra client, and a rerun of the erasure finds it gone", async () => {
      const tenantId = await createTenant("erased", { adminEmail: "admin@erased.test" });
      await run();
      expect((await state(tenantId)).hydraClients).toEqual([tenantClientId(tenantId)]);
      const erase = await stack.request({ method: "DELETE", url: `/v1/tenants/${tenantId}`, token: platform });
      expect(erase.statusCode, erase.body).toBe(202);
      await run();
      expect((await fetch(`${hydra.adminUrl}/admin/clients/${tenantClientId(tenantId)}`)).status).toBe(404);
      expect((await stack.admin.query("SELECT 1 FROM platform.tenants WHERE id = $1", [tenantId])).rows).toEqual([]);
      await stack.admin.query("SELECT graphile_worker.add_job('tenant.erase', json_build_object('tenantId', $1::text))", [tenantId]);
      await run();
      expect((await stack.admin.query("SELECT count(*)::int AS n FROM graphile_worker.jobs")).rows[0].n, "no job left").toBe(0);
    });

    for (const step of ["placement", "tenant", "oauth2-client", "audit"] as const) {
      it(`stopped after "${step}", then run to the end, then once more`, async () => {
        const tenantId = await createTenant(`crash-${step}`, { adminEmail: `admin@${step}.test` });
        await run(step);
        const failed = await stack.admin.query("SELECT attempts, last_error FROM graphile_worker.jobs WHERE key = $1", [`tenant.provision:${tenantId}`]);
        if (step !== "audit") expect(failed.rows[0]?.last_error ?? "").toContain(`crash after ${step}`);
        // The retry, made due now (graphile-worker would wait its backoff), and then the same job once more.
        await stack.admin.query("UPDATE graphile_worker._private_jobs SET run_at = now() WHERE key = $1", [`tenant.provision:${tenantId}`]);
        await run();
        await stack.admin.query("SELECT graphile_worker.add_job('tenant.provision', json_build_object('tenantId', $1::text, 'adminEmail', $2::text))", [tenantId, `admin@${step}.test`]);
        await run();
        expect((await stack.admin.query("SELECT count(*)::int AS n FROM graphile_worker.jobs")).rows[0].n, "no job left").toBe(0);
        expect(await state(tenantId)).toEqual(provisionedOnce(tenantId, `admin@${step}.test`));
      }, 60_000);
    }
  });
});
