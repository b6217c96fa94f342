/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read synthesized JSON and Kong's declarative YAML */
/**
 * The edge, read as an attacker would (issue 27): what Kong rate-limits on, which address it believes, and how it
 * checks Memorystore. The scenarios run attackers' requests through a model of Kong 3.9 (kong-edge-model.ts)
 * against each environment's generated configuration; Kong's own decK validates that configuration.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { ENVIRONMENT_NAMES, loadEnvironment, platformNames, type EnvironmentConfig } from "@platform/config";
import { synthesizeEnvironment, type KubernetesObject } from "../src/app.js";
import { EdgeRateLimiter, addressSettingsFromEnv, clientAddress, type EdgeRequest, type RateLimitingConfig } from "./kong-edge-model.js";

const dir = mkdtempSync(join(tmpdir(), "k8s-edge-"));
const overrides = (values: object) => {
  const file = join(dir, `overrides-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(values));
  return file;
};
const configs = ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env: {}, overrideFile: overrides({}) }));
const synthesized: Record<string, KubernetesObject[]> = {};

beforeAll(() => {
  for (const config of configs) synthesized[config.name] = synthesizeEnvironment(config, join(dir, config.name)).objects;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const find = (objects: KubernetesObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in the synthesized manifests`);
  return found as any;
};
const containerEnv = (objects: KubernetesObject[], deployment: string): Record<string, string> =>
  Object.fromEntries(find(objects, "Deployment", deployment).spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
/** The declarative configuration exactly as Kong loads it: the YAML in the ConfigMap, not the generator's object. */
const kongYaml = (objects: KubernetesObject[]): string => find(objects, "ConfigMap", "kong-declarative").data["kong.yml"];
/** Every rate-limiting plugin, wherever the configuration puts it (globally, on a service or on a route). */
function rateLimitingPlugins(declarative: any): RateLimitingConfig[] {
  const services = (declarative.services ?? []) as any[];
  const routes = [...services.flatMap((s) => s.routes ?? []), ...((declarative.routes ?? []) as any[])];
  return [...(declarative.plugins ?? []), ...services.flatMap((s) => s.plugins ?? []), ...routes.flatMap((r) => r.plugins ?? [])]
    .filter((p: any) => p.name === "rate-limiting")
    .map((p: any) => p.config);
}
/** Secret Manager secret id -> file name, from a SecretProviderClass. */
const mountedSecrets = (objects: KubernetesObject[], name: string): Record<string, string> =>
  Object.fromEntries((parse(find(objects, "SecretProviderClass", name).spec.parameters.secrets) as any[]).map((s) => [s.resourceName.split("/")[3], s.path]));

const VICTIM_TENANT = "7d0f3c9e-2b1a-4c8d-9e6f-5a4b3c2d1e0f";
const VICTIM_ADDRESS = "198.51.100.20";
const ATTACKER_ADDRESS = "203.0.113.7";
/** A random IPv4 address per call, as a client rotating X-Forwarded-For values would send. */
const randomAddress = () => Array.from({ length: 4 }, () => Math.floor(Math.random() * 256)).join(".");

/**
 * Sends `count` requests spread evenly over one minute window and returns how many Kong admitted. The rate stays
 * under the per-second limit, so only the minute window can refuse them.
 */
function flood(limiter: EdgeRateLimiter, limit: RateLimitingConfig, count: number, request: (i: number) => EdgeRequest): number {
  expect(Math.ceil(count / 60), "the flood must stay under the per-second limit").toBeLessThanOrEqual(limit.second ?? Infinity);
  let admitted = 0;
  for (let i = 0; i < count; i++) if (limiter.admit(request(i), Math.floor((i * 60_000) / count))) admitted++;
  return admitted;
}

describe.each(configs.map((c) => [c.name, c] as [string, EnvironmentConfig]))("%s edge", (env, config) => {
  const objects = () => synthesized[env]!;
  const declarative = () => parse(kongYaml(objects()));
  const theLimit = () => {
    const plugins = rateLimitingPlugins(declarative());
    expect(plugins).toHaveLength(1);
    return plugins[0]!;
  };
  const limiter = () => new EdgeRateLimiter(theLimit(), addressSettingsFromEnv(containerEnv(objects(), "kong")));

  it("keys every edge rate limit on the client's address, never on a header the client sends", () => {
    for (const limit of rateLimitingPlugins(declarative())) {
      expect(limit.limit_by).toBe("ip");
      expect(limit.header_name).toBeUndefined();
      expect({ second: limit.second, minute: limit.minute }).toEqual(config.edge.perAddressLimit);
    }
  });

  it("trusts forwarded-address headers from no one: nothing proxies in front of the L4 passthrough load balancer", () => {
    const vars = containerEnv(objects(), "kong");
    expect(vars.KONG_TRUSTED_IPS).toBeUndefined();
    expect(vars.KONG_REAL_IP_HEADER).toBeUndefined();
    expect(config.edge.trustedProxyCidrs).toEqual([]);
    // The address survives to Kong only because the load balancer neither proxies nor SNATs.
    expect(find(objects(), "Service", "kong-proxy").spec.externalTrafficPolicy).toBe("Local");
  });

  it("scenario: a client sending another tenant's X-Tenant-ID 6,000 times a minute does not use up that tenant's edge quota", () => {
    const kong = limiter();
    flood(kong, theLimit(), 6_000, () => ({ peer: ATTACKER_ADDRESS, headers: { "x-tenant-id": VICTIM_TENANT } }));
    expect(kong.admit({ peer: VICTIM_ADDRESS, headers: { "x-tenant-id": VICTIM_TENANT } }, 59_999), "the victim's own request").toBe(true);
  });

  it("scenario: a client rotating X-Tenant-ID values gets no fresh bucket, and is refused past its address's limit", () => {
    const minute = theLimit().minute!;
    const admitted = flood(limiter(), theLimit(), minute + minute / 5, () => ({ peer: ATTACKER_ADDRESS, headers: { "x-tenant-id": crypto.randomUUID() } }));
    expect(admitted).toBe(minute);
  });

  it("scenario: a client cannot choose its address with X-Forwarded-For, for the limit or for the logs", () => {
    const settings = addressSettingsFromEnv(containerEnv(objects(), "kong"));
    // What Kong logs and limits on ($remote_addr) is the TCP peer, whatever the client writes.
    expect(clientAddress(settings, { peer: ATTACKER_ADDRESS, headers: { "x-forwarded-for": VICTIM_ADDRESS } })).toBe(ATTACKER_ADDRESS);
    const kong = limiter();
    flood(kong, theLimit(), 6_000, () => ({ peer: ATTACKER_ADDRESS, headers: { "x-forwarded-for": VICTIM_ADDRESS } }));
    expect(kong.admit({ peer: VICTIM_ADDRESS }, 59_999), "the client at the forged address").toBe(true);
    const minute = theLimit().minute!;
    expect(flood(limiter(), theLimit(), minute + minute / 5, () => ({ peer: ATTACKER_ADDRESS, headers: { "x-forwarded-for": randomAddress() } }))).toBe(minute);
  });

  it("verifies Memorystore's certificate chain against the instance's CA, the file the tenant service pins, and trusts no other CA", () => {
    const names = platformNames(config);
    const redis = (theLimit() as any).redis;
    expect(redis).toMatchObject({ host: names.redis.host, port: names.redis.port, ssl: true, ssl_verify: true });
    // No host-name check: Memorystore's certificate names the instance's IP, and Kong takes only a DNS name here.
    expect(redis.server_name).toBeUndefined();
    const kong = containerEnv(objects(), "kong");
    const tenantServiceCa = containerEnv(objects(), "tenant-service").REDIS_CA_FILE!;
    // Exactly that file: with the system bundle beside it, and no host name checked, any certificate from any
    // public CA would pass for Memorystore.
    expect(kong.KONG_LUA_SSL_TRUSTED_CERTIFICATE).toBe(tenantServiceCa);
    expect(Number(kong.KONG_LUA_SSL_VERIFY_DEPTH)).toBeGreaterThanOrEqual(2);
    // ...and that file holds the same Secret Manager secret in both pods.
    expect(mountedSecrets(objects(), "gateway-secrets")[names.secrets.redisCa]).toBe(basename(tenantServiceCa));
    expect(mountedSecrets(objects(), "platform-secrets")[names.secrets.redisCa]).toBe(basename(tenantServiceCa));
  });
});

describe("with a proxy in front of Kong (edge.trustedProxyCidrs)", () => {
  const proxies = ["130.211.0.0/22", "35.191.0.0/16"];
  let vars: Record<string, string>;
  beforeAll(() => {
    const config = loadEnvironment("production", { env: {}, overrideFile: overrides({ production: { edge: { trustedProxyCidrs: proxies } } }) });
    vars = containerEnv(synthesizeEnvironment(config, join(dir, "production-proxied")).objects, "kong");
  });

  it("trusts X-Forwarded-For from those ranges only", () => {
    expect(vars.KONG_TRUSTED_IPS).toBe(proxies.join(","));
    expect(vars).toMatchObject({ KONG_REAL_IP_HEADER: "X-Forwarded-For", KONG_REAL_IP_RECURSIVE: "on" });
  });

  it("scenario: through the proxy, the address the proxy appended counts, not what the client wrote before it", () => {
    const settings = addressSettingsFromEnv(vars);
    expect(clientAddress(settings, { peer: "130.211.1.5", headers: { "x-forwarded-for": `${randomAddress()}, ${VICTIM_ADDRESS}` } })).toBe(VICTIM_ADDRESS);
    expect(clientAddress(settings, { peer: ATTACKER_ADDRESS, headers: { "x-forwarded-for": VICTIM_ADDRESS } })).toBe(ATTACKER_ADDRESS);
  });
});

/** Builds decK from the Go module proxy once per version (scripts/tools/install-deck.sh); exit 3 means it cannot be had. */
const INSTALL_DECK = fileURLToPath(new URL("../../scripts/tools/install-deck.sh", import.meta.url));
const deck: { path?: string; unavailable?: string } = {};

describe("Kong's own decK (deck file validate)", () => {
  beforeAll(() => {
    const run = spawnSync("bash", [INSTALL_DECK], { encoding: "utf8" });
    if (run.status === 0) deck.path = run.stdout.trim().split("\n").pop();
    else if (run.status === 3) {
      deck.unavailable = run.stderr.trim().split("\n").pop();
      console.warn(`skipping decK validation: ${deck.unavailable}`);
    } else throw new Error(`scripts/tools/install-deck.sh failed (exit ${String(run.status)}):\n${run.stderr}`);
  }, 45 * 60_000);

  const validate = (yaml: string) => {
    const file = join(dir, `kong-${Math.random().toString(36).slice(2)}.yml`);
    writeFileSync(file, yaml);
    return execFileSync(deck.path!, ["file", "validate", file], { encoding: "utf8", stdio: "pipe" });
  };

  it.for(ENVIRONMENT_NAMES)("accepts %s's declarative configuration", (env, ctx) => {
    if (!deck.path) ctx.skip(`decK unavailable: ${deck.unavailable}`);
    expect(() => validate(kongYaml(synthesized[env]!))).not.toThrow();
  });

  it("refuses a broken one (a route without its name), so an accepted file means something", (ctx) => {
    if (!deck.path) ctx.skip(`decK unavailable: ${deck.unavailable}`);
    const broken = parse(kongYaml(synthesized.dev!));
    delete broken.services[0].routes[0].name;
    expect(() => validate(stringify(broken))).toThrow();
  });
});
