import { describe, expect, it } from "vitest";
import { ConfigError, loadServiceConfig, loadWorkerConfig } from "../src/config.js";
import { startScript } from "./processes.js";

const SERVICE = { AUTH_JWT_SECRET: "dev-secret-dev-secret-dev-secret-00" };
const WORKER = { DATABASE_URL: "postgresql://platform_app@db.internal:5432/platform" };

describe("configuration of the service and the worker", () => {
  it("gives the worker the service's logging, tracing and database-file settings, each with its own trace name", () => {
    const shared = { LOG_LEVEL: "debug", OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318", DATABASE_CA_FILE: "/secrets/ca.crt", DATABASE_PASSWORD_FILE: "/secrets/pw" };
    const service = loadServiceConfig({ ...SERVICE, ...shared });
    const worker = loadWorkerConfig({ ...WORKER, ...shared });
    for (const key of Object.keys(shared) as (keyof typeof shared)[]) expect(worker[key]).toBe(service[key]);
    expect(service.OTEL_SERVICE_NAME).toBe("tenant-service");
    expect(worker.OTEL_SERVICE_NAME).toBe("tenant-worker");
    expect(worker).toMatchObject({ WORKER_CONCURRENCY: 5, HEALTH_PORT: 9090, LOG_LEVEL: "debug" });
  });

  it("refuses a bad value in either, naming the variable and the reason", () => {
    expect(() => loadWorkerConfig({ ...WORKER, LOG_LEVEL: "loud" })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...WORKER, LOG_LEVEL: "loud" })).toThrow(/invalid worker configuration:\n {2}LOG_LEVEL: /);
    expect(() => loadServiceConfig({ ...SERVICE, LOG_LEVEL: "loud" })).toThrow(/invalid tenant-service configuration:\n {2}LOG_LEVEL: /);
    expect(() => loadWorkerConfig({ DATABASE_URL: "" })).toThrow(/DATABASE_URL: must be set: the worker needs a real database/);
    expect(() => loadWorkerConfig({ DATABASE_URL: "db.internal" })).toThrow(/DATABASE_URL: must be a postgresql:\/\/ URL/);
  });

  it("takes a node's share of the pool as given, 0 to switch it off, and refuses one the pool cannot bind", () => {
    expect(loadServiceConfig(SERVICE).DATABASE_NODE_CONNECTION_CAP).toBeUndefined();
    expect(loadServiceConfig({ ...SERVICE, DATABASE_NODE_CONNECTION_CAP: "0" }).DATABASE_NODE_CONNECTION_CAP).toBe(0);
    expect(loadServiceConfig({ ...SERVICE, DATABASE_POOL_SIZE: "4", DATABASE_NODE_CONNECTION_CAP: "4" }).DATABASE_NODE_CONNECTION_CAP).toBe(4);
    expect(() => loadServiceConfig({ ...SERVICE, DATABASE_POOL_SIZE: "4", DATABASE_NODE_CONNECTION_CAP: "5" })).toThrow(
      /DATABASE_NODE_CONNECTION_CAP: 5 is more than the pool \(DATABASE_POOL_SIZE 4\), so it would bound nothing: set at most 4, 0 to switch the bound off/,
    );
    expect(() => loadServiceConfig({ ...SERVICE, DATABASE_NODE_CONNECTION_CAP: "-1" })).toThrow(/DATABASE_NODE_CONNECTION_CAP: /);
  });

  it("stops the worker process at start with exit 2 and the reason", async () => {
    const worker = startScript("worker", { WORKER_CONCURRENCY: "0" });
    expect(await worker.exited).toBe(2);
    expect(worker.stderr.join("\n")).toMatch(/invalid worker configuration:\n {2}DATABASE_URL: .*\n {2}WORKER_CONCURRENCY: /);
  });
});
