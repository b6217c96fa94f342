/**
 * `pnpm outputs <env> <file>` (src/outputs-cli.ts): a deployed stack's outputs as `cdktf output --outputs-file` writes
 * them, held to the schema and to the names the Kubernetes manifests carry from the config.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { platformNames } from "@platform/config";
import { KUBERNETES_EXPECTS, StackOutputsSchema, outputsDisagreeingWithConfig, readStackOutputs, type StackOutputs } from "../src/outputs.js";
import { hermeticConfigs } from "./helpers.js";

const config = hermeticConfigs().find((c) => c.name === "dev")!;
const names = platformNames(config);
const dir = mkdtempSync(join(tmpdir(), "platform-outputs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What `cdktf output dev --outputs-file` writes after dev is deployed from this config (Terraform sorts a map's keys). */
const deployed: StackOutputs = {
  environment: "dev",
  project_id: config.gcp.projectId,
  region: config.gcp.region,
  cluster_name: names.cluster,
  cluster_location: config.gcp.region,
  workload_pool: names.workloadPool,
  coordinator_host: names.citus.coordinator.host,
  coordinator_ip: "10.0.16.40",
  worker_hosts: names.citus.workers.map((w) => w.host),
  postgres_port: 5432,
  database: "platform",
  redis_host: names.redis.host,
  redis_ip: "10.0.48.4",
  redis_port: 6378,
  backups_bucket: names.backupsBucket,
  tenant_service_account: names.serviceAccounts.tenantService.email,
  tenant_worker_account: names.serviceAccounts.tenantWorker.email,
  secret_ids: Object.fromEntries(Object.entries(names.secrets).sort(([a], [b]) => a.localeCompare(b))),
};
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
};

describe("reading a stack's outputs", () => {
  it("takes the environment's section of the outputs file, and agrees with the config it was deployed from", () => {
    const outputs = readStackOutputs("dev", JSON.stringify({ dev: deployed, staging: {} }), "outputs.json");
    expect(outputs).toEqual(deployed);
    expect(outputsDisagreeingWithConfig(outputs, config, names)).toEqual([]);
  });

  it("says what is wrong with the file: not JSON, no section for the environment, an output missing", () => {
    expect(() => readStackOutputs("dev", "{ dev:", "o.json")).toThrow(/^o\.json is not JSON .*cdktf output dev --outputs-file o\.json/);
    expect(() => readStackOutputs("dev", JSON.stringify({ staging: deployed }), "o.json")).toThrow('o.json has no outputs of stack "dev" (it has staging)');
    const { redis_ip: _, ...missing } = deployed;
    expect(() => readStackOutputs("dev", JSON.stringify({ dev: missing }), "o.json")).toThrow(/outputs of stack "dev" do not match the schema \(redis_ip: /);
  });

  it("names each output the manifests carry that differs from the config, and where they use it", () => {
    const other = { ...deployed, redis_port: 6379, secret_ids: { ...deployed.secret_ids, dbApp: "someone-elses" } };
    expect(outputsDisagreeingWithConfig(other, config, names)).toEqual([
      expect.stringMatching(/^redis_port is 6379, the config says 6378 \(REDIS_URL.*\(TLS port\)\)$/),
      `secret_ids.dbApp is "someone-elses", the config says "${names.secrets.dbApp}" (the SecretProviderClasses (Secret Manager ids))`,
    ]);
  });

  it("checks only outputs the schema has", () => {
    expect(Object.keys(KUBERNETES_EXPECTS).filter((name) => !(name in StackOutputsSchema.shape))).toEqual([]);
  });
});

describe("pnpm outputs, as operators run it", () => {
  const run = (...args: string[]) =>
    spawnSync(join(import.meta.dirname, "..", "node_modules", ".bin", "tsx"), [join(import.meta.dirname, "..", "src", "outputs-cli.ts"), ...args], {
      encoding: "utf8",
      // The checked-in config, as hermeticConfigs loads it: no operator override file, no PLATFORM_* variable.
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PLATFORM_"))), PLATFORM_CONFIG: file("empty.json", {}) },
    });

  it("prints what the manifests carry and the deployed addresses when the stack matches the config (exit 0)", () => {
    const r = run("dev", file("ok.json", { dev: deployed }));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^  coordinator_host +${names.citus.coordinator.host.replace(/\./g, "\\.")} +DATABASE_URL`, "m"));
    expect(r.stdout).toMatch(/^ {2}coordinator_ip +10\.0\.16\.40 /m);
  });

  it("exits 1 naming the output when the stack was deployed from another config", () => {
    const r = run("dev", file("other.json", { dev: { ...deployed, coordinator_host: "coordinator.other.internal" } }));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^outputs: stack "dev" was not deployed from this config.*coordinator_host is "coordinator\.other\.internal", the config says "coordinator\.db\.internal"/);
  });

  it("exits 2 with one line for bad input", () => {
    const missing = run("dev", join(dir, "nothing.json"));
    expect([missing.status, missing.stderr.trim()]).toEqual([2, `outputs: cannot read ${join(dir, "nothing.json")} (ENOENT): write it with \`cd infra && pnpm exec cdktf output dev --outputs-file ${join(dir, "nothing.json")}\``]);
    const env = run("qa", file("qa.json", {}));
    expect([env.status, env.stderr.trim()]).toEqual([2, 'outputs: unknown environment "qa"; use one of dev, staging, production']);
  });
});
