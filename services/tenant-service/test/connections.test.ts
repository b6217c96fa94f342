import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { freePort, redisUnavailable } from "@platform/testing";
import { deadPeerStartupOptions } from "@platform/config/dead-peers";
import { postgresConnection, redisConnection, watchRedis } from "../src/connections.js";

describe("credentials from mounted secret files", () => {
  it("reads the database password and CA from files, trimming the trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "secrets-"));
    try {
      writeFileSync(join(dir, "pw"), "s3cret\n");
      writeFileSync(join(dir, "ca.crt"), "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n");
      const c = postgresConnection({ DATABASE_URL: "postgresql://platform_app@db/platform", DATABASE_PASSWORD_FILE: join(dir, "pw"), DATABASE_CA_FILE: join(dir, "ca.crt") });
      expect(c.password).toBe("s3cret");
      expect(c.ssl).toMatchObject({ rejectUnauthorized: true, ca: expect.stringContaining("BEGIN CERTIFICATE") });
      const r = redisConnection({ REDIS_PASSWORD_FILE: join(dir, "pw"), REDIS_CA_FILE: join(dir, "ca.crt") });
      expect(r.password).toBe("s3cret");
      expect(r.tls?.ca).toContain("BEGIN CERTIFICATE");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("says which file is missing and where to look", () => {
    expect(() => postgresConnection({ DATABASE_PASSWORD_FILE: "/nonexistent/pw" })).toThrow(/cannot read the database password from \/nonexistent\/pw.*secret volume mount/);
  });
  it("fails Redis commands fast instead of queueing them, and batches the ones issued together", () => {
    expect(redisConnection({})).toMatchObject({ maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true });
  });
  it("sends no TLS and no password when nothing is mounted (local development)", () => {
    expect(postgresConnection({ DATABASE_URL: "postgresql://x@y/z" })).toEqual({ connectionString: "postgresql://x@y/z", password: undefined, ssl: undefined, options: deadPeerStartupOptions() });
  });
});

const noRedis = redisUnavailable();
if (noRedis) console.warn(`skipping the Redis watch tests: ${noRedis}`);
describe.skipIf(noRedis !== undefined)("watching Redis (real redis-server)", () => {
  it("warns once while Redis is unreachable, not once per reconnect attempt, and says when it answers again", async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const infos: string[] = [];
    // Reconnect every 20 ms: many attempts, hence many error events, inside the quiet period.
    const redis = new Redis(`redis://127.0.0.1:${port}`, { ...redisConnection({}), retryStrategy: () => 20 });
    watchRedis(redis, { warn: (_details, message) => warnings.push(message), info: (message) => infos.push(message) }, 60_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(warnings).toEqual(["Redis is unreachable: per-tenant rate limits are not enforced until it answers"]);
      expect(infos).toEqual([]);
      const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
      try {
        await new Promise<void>((resolve) => redis.once("ready", () => resolve()));
        expect(infos).toEqual(["Redis answers again: per-tenant rate limits are enforced"]);
        expect(warnings).toHaveLength(1);
      } finally {
        server.kill("SIGTERM");
      }
    } finally {
      redis.disconnect();
    }
  });
});
