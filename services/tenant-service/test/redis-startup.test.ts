/**
 * A starting replica listens only once Redis answers (src/connections.ts, REDIS_STARTUP_WAIT_MS). Before, a request
 * that came while the connection was still being made failed its lease renewal, was admitted unlimited and counted
 * as an error: every rollout under traffic counted towards RateLimitNotEnforced, and the live Prometheus test saw
 * such an error once in CI. Here Redis comes up after the service process starts, as it can in a rollout.
 */
import { freePort, startRedis, waitFor, type RedisServer } from "@platform/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisConnection, redisReady } from "../src/connections.js";
import { AUDIENCE, ISSUER, SECRET, createTenant, startStack, token, unavailable, type Stack } from "./harness.js";
import { startScript, waitUntilServing } from "./processes.js";

if (unavailable) console.warn(`skipping the Redis start-up tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("the service waits for Redis before it listens (real redis-server, PostgreSQL 15)", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  });

  it("says false after its bound when Redis never answers, and true as soon as it does", async () => {
    const port = await freePort();
    const redis = new Redis(`redis://127.0.0.1:${port}`, { ...redisConnection({}), retryStrategy: () => 50 });
    redis.on("error", () => {});
    let late: RedisServer | undefined;
    try {
      const started = Date.now();
      expect(await redisReady(redis, 400)).toBe(false);
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
      late = await startRedis({ port });
      expect(await redisReady(redis, 10_000)).toBe(true);
      expect(await redisReady(redis, 0)).toBe(true); // already ready: at once
    } finally {
      redis.disconnect();
      await late?.stop();
    }
  });

  it("does not answer until Redis does, and then its first request takes a lease instead of failing open", async () => {
    const platform = await token({ scope: "platform:admin" });
    const tenant = await createTenant(stack, "startup", platform);
    const redisPort = await freePort();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const service = startScript("start", {
      DATABASE_URL: stack.config.DATABASE_URL!,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      AUTH_JWT_SECRET: SECRET,
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
      HOST: "127.0.0.1",
      PORT: String(port),
    });
    let redis: RedisServer | undefined;
    try {
      // The app is built once it logs Redis's failed connection (watchRedis); for a second after, with no Redis, it
      // must still not be serving.
      await waitFor("the service to log Redis's failed connection", () => {
        if (service.child.exitCode !== null) throw new Error(`the service exited:\n${service.stderr.join("\n")}`);
        return service.stdout.some((line) => line.includes("Redis is unreachable"));
      }, { detail: () => service.stdout.slice(-10).join("\n") });
      const answeredEarly: number[] = [];
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 200));
        if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) answeredEarly.push(i);
      }
      expect(service.child.exitCode).toBeNull();
      expect(answeredEarly).toEqual([]);

      redis = await startRedis({ port: redisPort });
      await waitUntilServing(service, `${base}/health`, 30_000);
      const items = await fetch(`${base}/v1/tenants/${tenant.id}/items`, { headers: { authorization: `Bearer ${tenant.member}` } });
      expect(items.status).toBe(200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/rate_limit_lease_renewals_total\{result="granted"\} [1-9]/);
      expect(metrics).not.toMatch(/rate_limit_lease_renewals_total\{result="error"\}/);
    } finally {
      const code = await service.stop();
      expect(code, [...service.stdout, ...service.stderr].join("\n")).toBe(0);
      await redis?.stop();
    }
  }, 60_000);
});
