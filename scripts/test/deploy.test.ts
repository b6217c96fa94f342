import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import { loadEnvironment } from "@platform/config";
import { unresolvedImages } from "@platform/config";
import { applyOrder, deployPreflight, deploySteps, rolloutTargets } from "../src/deploy.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const scriptsDir = join(import.meta.dirname, "..");
const empty = join(scratch.make("deploy-test-"), "empty.json");
writeFileSync(empty, "{}");
const example = loadEnvironment("staging", { env: {}, overrideFile: empty });
const real = loadEnvironment("staging", {
  env: { PLATFORM_STAGING_PROJECT_ID: "acme-stg", PLATFORM_STAGING_STATE_BUCKET: "acme-stg-tf", PLATFORM_STAGING_TENANT_SERVICE_IMAGE: `registry.example/tenant-service:1.0.0@sha256:${"a".repeat(64)}` },
  overrideFile: empty,
});

describe("scripts/deploy", () => {
  it("will not start with the example project, the example image, no migration role or a missing tool", () => {
    const problems = deployPreflight({ environment: "staging", config: example, root: scriptsDir, yes: false, env: {} }, (tool) => tool !== "gcloud", () => ["kong (docker.io/library/kong:3.9.1)"]);
    expect(problems).toEqual([
      expect.stringMatching(/staging still uses the example project "example-saas-staging": set PLATFORM_STAGING_PROJECT_ID and PLATFORM_STAGING_STATE_BUCKET/),
      expect.stringMatching(/the tenant-service image is the example digest: set PLATFORM_STAGING_TENANT_SERVICE_IMAGE/),
      expect.stringMatching(/MIGRATE_DATABASE_URL is not set/),
      "third-party images without a digest: kong (docker.io/library/kong:3.9.1). Resolve each (crane digest <repository>:<tag>) and record it in config/src/images.ts",
      "gcloud is not on PATH (docs/DEPLOYMENT.md, prerequisites)",
    ]);
    expect(deployPreflight({ environment: "staging", config: real, root: scriptsDir, yes: false, env: { MIGRATE_DATABASE_URL: "postgresql://m@db/p" } }, () => true, () => [])).toEqual([]);
  });

  it("reads the image table itself: the images this repository has not pinned yet stop a real deploy", () => {
    const problems = deployPreflight({ environment: "staging", config: real, root: scriptsDir, yes: false, env: { MIGRATE_DATABASE_URL: "postgresql://m@db/p" } }, () => true);
    const unpinned = unresolvedImages();
    expect(problems).toEqual(unpinned.length > 0 ? [expect.stringContaining(unpinned.join(", "))] : []);
  });

  it("runs the layers in the documented order: infra, database, then the setup file before the applications", () => {
    const steps = deploySteps({ environment: "staging", config: real, root: "/repo", yes: true, env: { MIGRATE_DATABASE_URL: "postgresql://m@db/p" } });
    expect(steps.map((s) => s.name)).toEqual(["synth", "infra", "migrate", "kube-credentials", "apply-setup", "apply-auth", "apply-gateway", "apply-tenants", "apply-monitoring", "rollout"]);
    const commands = steps.flatMap((s) => (s.commands ?? []).map((c) => c.argv.join(" ")));
    expect(commands).toContain("pnpm --silent --filter @platform/infra exec cdktf deploy staging --auto-approve");
    expect(commands).toContain("kubectl apply --server-side -f /repo/k8s/dist/staging/00-setup.k8s.yaml");
    expect(commands).toContain(`kubectl apply --server-side --prune --applyset=configmaps/platform-tenants -n ${real.kubernetes.tenantService.namespace} -f /repo/k8s/dist/staging/20-tenants.k8s.yaml`);
    expect(commands).toContain(`kubectl -n ${real.kubernetes.hydra.namespace} wait --for=condition=complete job/hydra-migrate --timeout=10m`);
    expect(commands).toContain("gcloud container clusters get-credentials saas-stg-gke --region europe-west1 --project acme-stg --internal-ip");
    expect(applyOrder(real).map((a) => a.file)).toEqual(["00-setup.k8s.yaml", "10-auth.k8s.yaml", "10-gateway.k8s.yaml", "20-tenants.k8s.yaml", "30-monitoring.k8s.yaml"]);
  });

  it("on the postgres engine, makes Cloud SQL's service agent before the stack and bootstraps the database before the migrations", () => {
    const postgres = loadEnvironment("staging", { env: { PLATFORM_STAGING_PROJECT_ID: "acme-stg", PLATFORM_STAGING_DATABASE_ENGINE: "postgres" }, overrideFile: empty });
    const steps = deploySteps({ environment: "staging", config: postgres, root: "/repo", yes: true, env: { MIGRATE_DATABASE_URL: "postgresql://m@db/p" } });
    expect(steps.map((s) => s.name).slice(0, 5)).toEqual(["synth", "cloudsql-agent", "infra", "database-bootstrap", "migrate"]);
    expect(steps.find((s) => s.name === "cloudsql-agent")!.commands!.map((c) => c.argv.join(" "))).toContain("gcloud beta services identity create --service=sqladmin.googleapis.com --project=acme-stg");
    expect(steps.find((s) => s.name === "database-bootstrap")!.run).toBeTypeOf("function");
    expect(deployPreflight({ environment: "staging", config: postgres, root: "/repo", yes: true, env: {} }, () => true, () => [])).toContainEqual(expect.stringMatching(/MIGRATE_DATABASE_URL is not set: .* STAGING Cloud SQL instance/));
  });

  it("with Citus beside Cloud SQL, needs the migration role's connection to Citus and migrates it too, the queue at home only", () => {
    const alongside = loadEnvironment("staging", { env: { PLATFORM_STAGING_PROJECT_ID: "acme-stg", PLATFORM_STAGING_DATABASE_ENGINE: "postgres", PLATFORM_STAGING_DATABASE_CITUS_ALONGSIDE: "true" }, overrideFile: empty });
    const citusMissing = /MIGRATE_DATABASE_URL_CITUS is not set: the migration role's connection to the STAGING Citus coordinator beside Cloud SQL/;
    expect(deployPreflight({ environment: "staging", config: alongside, root: "/repo", yes: true, env: { MIGRATE_DATABASE_URL: "postgresql://m@home/p" } }, () => true, () => [])).toContainEqual(expect.stringMatching(citusMissing));
    const env = { MIGRATE_DATABASE_URL: "postgresql://m@home/p", MIGRATE_DATABASE_URL_CITUS: "postgresql://m@citus/p" };
    expect(deployPreflight({ environment: "staging", config: alongside, root: "/repo", yes: true, env }, () => true, () => []).filter((p) => p.includes("MIGRATE_"))).toEqual([]);
    const migrate = deploySteps({ environment: "staging", config: alongside, root: "/repo", yes: true, env }).find((s) => s.name === "migrate")!.commands!;
    expect(migrate.map((c) => `${c.argv.join(" ")} <- ${c.env?.DATABASE_URL}`)).toEqual([
      "pnpm --silent migrate <- postgresql://m@home/p",
      "pnpm --silent migrate <- postgresql://m@citus/p",
      "pnpm --silent --filter tenant-service worker --install-queue <- postgresql://m@home/p",
    ]);
    const single = deploySteps({ environment: "staging", config: real, root: "/repo", yes: true, env }).find((s) => s.name === "migrate")!.commands!;
    expect(single.map((c) => c.env?.DATABASE_URL)).toEqual(["postgresql://m@home/p", "postgresql://m@home/p"]);
  });

  it("waits for the Deployments and StatefulSets it applied, and nothing else", () => {
    const manifest = [
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tenant-service\n  namespace: tenants",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: tenant-service\n  namespace: tenants",
      "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: prometheus\n  namespace: monitoring",
    ].join("\n---\n");
    expect(rolloutTargets([manifest])).toEqual([
      { kind: "Deployment", namespace: "tenants", name: "tenant-service" },
      { kind: "StatefulSet", namespace: "monitoring", name: "prometheus" },
    ]);
  });

  it("the command line stops on a failed preflight with every problem listed, changing nothing", async () => {
    const r = await promisify(execFile)(join(scriptsDir, "deploy"), ["dev"], {
      env: { ...process.env, PLATFORM_CONFIG: empty, PLATFORM_STATE_DIR: scratch.make("st-"), MIGRATE_DATABASE_URL: "" },
    }).then(
      () => ({ code: 0, out: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, out: e.stderr }),
    );
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/not ready to deploy dev, nothing was changed:\n {2}- dev still uses the example project[\s\S]*MIGRATE_DATABASE_URL is not set/);
  });
});
