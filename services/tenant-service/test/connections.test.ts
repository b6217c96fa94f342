import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { postgresConnection, redisConnection } from "../src/connections.js";

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
    expect(postgresConnection({ DATABASE_URL: "postgresql://x@y/z" })).toEqual({ connectionString: "postgresql://x@y/z", password: undefined, ssl: undefined });
  });
});
