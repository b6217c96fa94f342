/* eslint-disable @typescript-eslint/no-explicit-any -- the test reads the API server's JSON */
/**
 * Every environment's manifests, applied to a real Kubernetes API server by the very commands `scripts/deploy` runs
 * (docs/DEPLOYMENT.md, section 4): server-side apply, the setup file first, then each application file with its
 * applyset. kube-apiserver, kube-controller-manager, kubectl and etcd are built from the Go module proxy by
 * scripts/tools/install-kubernetes.sh (a minor GKE's stable channel runs) and started on loopback per environment
 * (@platform/testing's startControlPlane); exit 3 from the installer skips with its reason.
 *
 * What a cluster would say and our own checks cannot: the objects validate against the server's schemas, the
 * namespaces' Pod Security `restricted` admits every pod the workloads create (and refuses one that breaks it),
 * ResourceQuota and LimitRange admit them, a second apply changes nothing, and an object dropped from the output is
 * pruned. Without a kubelet the pods stay Pending and Hydra's migration Job never completes, so the deploy's
 * `kubectl wait` for it is the one command not run here.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENVIRONMENT_NAMES, loadEnvironment, type EnvironmentConfig } from "@platform/config";
import { synthesizeEnvironment } from "@platform/k8s/src/app.js";
import { startControlPlane, waitFor, type ControlPlane } from "@platform/testing";
import { applyOrder, deploySteps } from "../src/deploy.js";
import type { CommandSpec } from "../src/workflow.js";

const INSTALL_TIMEOUT = 60 * 60_000;
const install = spawnSync("bash", [fileURLToPath(new URL("../tools/install-kubernetes.sh", import.meta.url))], { encoding: "utf8", timeout: INSTALL_TIMEOUT });
const binDir = install.status === 0 ? install.stdout.trim().split("\n").pop()! : undefined;
if (install.status === 3) console.warn(`skipping the API server tests: ${install.stderr.trim().split("\n").pop()}`);
else if (install.status !== 0) throw new Error(`scripts/tools/install-kubernetes.sh failed (exit ${String(install.status)}):\n${install.stderr}`);

interface Ref {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}
const refOf = (o: any): Ref => ({ apiVersion: o.apiVersion, kind: o.kind, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}), name: o.metadata.name });
const show = (r: Ref) => `${r.kind}/${r.namespace ?? "-"}/${r.name}`;
const objectsIn = (file: string): any[] => parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS()).filter((o) => o);
/** `kubectl get` of exactly these objects, in one call per file: what the server holds for them. */
const getAll = (cluster: ControlPlane, file: string): any[] => JSON.parse(cluster.kubectlOk(["get", "-f", file, "-o", "json"])).items ?? [];

/** The deploy's apply steps for an environment whose manifests are under `root`/k8s/dist/<env>. */
function applyCommands(config: EnvironmentConfig, root: string): CommandSpec[] {
  return deploySteps({ environment: config.name, config, root, yes: true, env: {} })
    .filter((s) => s.name.startsWith("apply-"))
    .flatMap((s) => s.commands ?? [])
    .filter((c) => c.argv[0] === "kubectl" && c.argv[1] === "apply");
}

/** Runs one of the deploy's kubectl commands against the test cluster; an admission warning counts as a failure. */
function runApply(cluster: ControlPlane, command: CommandSpec): string {
  const run = spawnSync(command.argv[0]!, command.argv.slice(1), { env: { ...cluster.env, ...command.env }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const what = command.argv.join(" ");
  if (run.status !== 0) throw new Error(`${what} failed (exit ${String(run.status)}):\n${run.stderr}`);
  const warnings = run.stderr.split("\n").filter((l) => /^Warning:/i.test(l));
  expect(warnings, `${what}: the API server warned`).toEqual([]);
  return run.stdout;
}

/**
 * Every environment at its defaults (Citus), and production in phases 2-3 (docs/SCALING.md): Cloud SQL at home with
 * the Citus cluster alongside, whose workloads carry both databases' URLs, credentials and egress.
 */
const environments = [
  ...ENVIRONMENT_NAMES.map((name) => ({ label: name, name, env: {} })),
  { label: "production, Cloud SQL with Citus alongside", name: "production" as const, env: { PLATFORM_PRODUCTION_DATABASE_ENGINE: "postgres", PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE: "true" } },
].map(({ label, name, env }) => {
  const dir = mkdtempSync(join(tmpdir(), `apiserver-${name}-`));
  writeFileSync(join(dir, "empty.json"), "{}");
  return { label, name, dir, config: loadEnvironment(name, { env, overrideFile: join(dir, "empty.json") }) };
});
afterAll(() => {
  for (const e of environments) rmSync(e.dir, { recursive: true, force: true });
});

describe.skipIf(!binDir).each(environments)("the $label manifests on a real API server", ({ name, dir, config }) => {
  const dist = join(dir, "k8s", "dist", name);
  const files = applyOrder(config).map((a) => join(dist, a.file));
  let cluster: ControlPlane;

  beforeAll(async () => {
    synthesizeEnvironment(config, dist);
    cluster = await startControlPlane(binDir!);
    // What GKE's Secret Manager add-on installs in every cluster before anything of ours.
    cluster.kubectlOk(["apply", "--server-side", "-f", join(dirname(binDir!), "crds", "secretproviderclasses.yaml")]);
    cluster.kubectlOk(["wait", "--for=condition=Established", "crd/secretproviderclasses.secrets-store.csi.x-k8s.io", "--timeout=60s"]);
  }, 300_000);
  afterAll(async () => cluster?.stop());

  it("accepts every object, applied by the deploy's own commands in its order, without a warning", () => {
    const commands = applyCommands(config, dir);
    expect(commands.map((c) => c.argv.at(-1))).toEqual(files);
    for (const command of commands) runApply(cluster, command);
    let accepted = 0;
    for (const file of files) {
      const expected = objectsIn(file).map(refOf).map(show).sort();
      const held = getAll(cluster, file).map(refOf).map(show).sort();
      expect(held, `${name}: what the server holds for ${file}`).toEqual(expected);
      accepted += held.length;
    }
    console.log(`${name}: the API server accepted ${accepted} objects in ${files.length} files`);
    expect(accepted).toBeGreaterThan(50);
    // And it is the server that would have said otherwise: the tenant service's Deployment with a field of the wrong type.
    const deployment = objectsIn(files.find((f) => f.includes("20-tenants"))!).find((o) => o.kind === "Deployment" && o.metadata.name === "tenant-service");
    deployment.spec.template.spec.containers[0].ports[0].containerPort = "http";
    const refused = cluster.kubectl(["apply", "--server-side", "--dry-run=server", "-f", "-"], { input: JSON.stringify(deployment) });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/containerPort/);
  });

  it("enforces Pod Security restricted on every namespace, and admits the pods of every workload", async () => {
    const namespaces = objectsIn(files[0]!).filter((o) => o.kind === "Namespace");
    expect(namespaces.length).toBeGreaterThan(0);
    for (const ns of namespaces) {
      const live = JSON.parse(cluster.kubectlOk(["get", "namespace", ns.metadata.name, "-o", "json"]));
      expect(live.metadata.labels?.["pod-security.kubernetes.io/enforce"], `namespace ${ns.metadata.name}`).toBe("restricted");
      // The enforcement is real: a pod that breaks the profile is refused there.
      const refused = cluster.kubectl(["-n", ns.metadata.name, "run", "probe-privileged", "--image=registry.k8s.io/pause:3.10", "--restart=Never", "--dry-run=server"]);
      expect(refused.status, `a pod without a restricted securityContext in ${ns.metadata.name}`).not.toBe(0);
      expect(refused.stderr).toMatch(/violates PodSecurity "restricted/);
    }

    // Each Deployment's, StatefulSet's and Job's controller creates its pods through admission; none stays refused.
    const workloads = files.flatMap(objectsIn).filter((o) => ["Deployment", "StatefulSet", "Job"].includes(o.kind));
    const wanted = (w: any) => (w.kind === "Job" ? 1 : w.kind === "StatefulSet" && w.spec.podManagementPolicy !== "Parallel" ? 1 : (w.spec.replicas ?? 1));
    const deadline = Date.now() + 120_000;
    let missing: string[] = [];
    for (;;) {
      const pods = JSON.parse(cluster.kubectlOk(["get", "pods", "-A", "-o", "json"])).items as any[];
      const replicaSets = JSON.parse(cluster.kubectlOk(["get", "replicasets", "-A", "-o", "json"])).items as any[];
      const ownerOf = (pod: any) => {
        const owner = pod.metadata.ownerReferences?.[0];
        if (owner?.kind !== "ReplicaSet") return owner && `${owner.kind}/${pod.metadata.namespace}/${owner.name}`;
        const rs = replicaSets.find((r) => r.metadata.namespace === pod.metadata.namespace && r.metadata.name === owner.name);
        const deployment = rs?.metadata.ownerReferences?.[0];
        return deployment && `Deployment/${pod.metadata.namespace}/${deployment.name}`;
      };
      const owners = pods.map(ownerOf);
      missing = workloads
        .filter((w) => owners.filter((o) => o === `${w.kind}/${w.metadata.namespace}/${w.metadata.name}`).length < wanted(w))
        .map((w) => `${w.kind}/${w.metadata.namespace}/${w.metadata.name}`);
      if (missing.length === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const refusals = (JSON.parse(cluster.kubectlOk(["get", "events", "-A", "--field-selector", "reason=FailedCreate", "-o", "json"])).items as any[]).map(
      (e) => `${e.involvedObject.kind}/${e.involvedObject.namespace}/${e.involvedObject.name}: ${e.message}`,
    );
    expect({ missing, refusals: missing.length > 0 ? refusals : [] }, `${name}: workloads whose pods were not created`).toEqual({ missing: [], refusals: [] });
    console.log(`${name}: ${workloads.length} workloads' pods admitted under restricted`);
  }, 180_000);

  it("changes nothing on a second apply", async () => {
    // The controllers write status; with them stopped, any change in a resourceVersion is the apply's.
    await cluster.stopControllers();
    // (`kubectl diff` cannot say it: it takes no --applyset, so it always shows the applyset's label going away.)
    const versions = () => Object.fromEntries(files.flatMap((f) => getAll(cluster, f)).map((o) => [show(refOf(o)), o.metadata.resourceVersion as string]));
    const before = versions();
    for (const command of applyCommands(config, dir)) runApply(cluster, command);
    const after = versions();
    const changed = Object.keys(before).filter((k) => after[k] !== before[k]);
    expect(changed, `${name}: objects the second apply changed`).toEqual([]);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  });

  it("prunes an object removed from the output, and nothing else", () => {
    const tenants = applyOrder(config).find((a) => a.file.startsWith("20-tenants"))!;
    const file = join(dist, tenants.file);
    const objects = objectsIn(file);
    const victim = objects.find((o) => o.kind === "NetworkPolicy" || o.kind === "ConfigMap")!;
    writeFileSync(file, objects.filter((o) => o !== victim).map((o) => stringify(o)).join("---\n"));
    const command = applyCommands(config, dir).find((c) => c.argv.at(-1) === file)!;
    const output = runApply(cluster, command);
    // kubectl names it kind[.group]/name: "networkpolicy.networking.k8s.io/x pruned", "configmap/x pruned".
    expect(output).toMatch(new RegExp(`^${victim.kind.toLowerCase()}(\\.[a-z0-9.-]+)?/${victim.metadata.name} pruned$`, "m"));
    const gone = cluster.kubectl(["-n", victim.metadata.namespace, "get", victim.kind, victim.metadata.name]);
    expect(gone.stderr).toMatch(/NotFound/);
    expect(getAll(cluster, file).length).toBe(objects.length - 1);
  });
});

describe.skipIf(!binDir || !existsSync(join(dirname(binDir ?? "/"), "crds")))("the Pulumi program", () => {
  it("registers exactly the objects kubectl applied", async () => {
    // Pulumi's own mocks run the program in-process and record what it registers; the same files feed both.
    const pulumi = await import("@pulumi/pulumi");
    const registered: { type: string; name: string; inputs: any }[] = [];
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.push({ type: args.type, name: args.name, inputs: args.inputs });
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: (args) => (args.token === "kubernetes:yaml:decode" ? { result: parseAllDocuments(String(args.inputs.text)).map((d) => d.toJSON()).filter((d) => d !== null) } : args.inputs),
      },
      "platform-k8s",
      "dev",
      false,
    );
    const dev = environments.find((e) => e.name === "dev")!;
    const dist = join(dev.dir, "pulumi-dist");
    synthesizeEnvironment(dev.config, join(dist, "dev"));
    const cluster = await startControlPlane(binDir!);
    try {
      cluster.kubectlOk(["apply", "--server-side", "-f", join(dirname(binDir!), "crds", "secretproviderclasses.yaml")]);
      cluster.kubectlOk(["wait", "--for=condition=Established", "crd/secretproviderclasses.secrets-store.csi.x-k8s.io", "--timeout=60s"]);
      const root = join(dev.dir, "pulumi-root");
      synthesizeEnvironment(dev.config, join(root, "k8s", "dist", "dev"));
      for (const command of applyCommands(dev.config, root)) runApply(cluster, command);
      const applied = applyOrder(dev.config)
        .flatMap((a) => getAll(cluster, join(root, "k8s", "dist", "dev", a.file)))
        .map((o) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? "-"}/${o.metadata.name}`)
        .sort();

      const { applyManifests } = await import("@platform/k8s/src/pulumi/apply.js");
      const groups = applyManifests({ environment: "dev", distDir: dist });
      await new Promise<void>((resolve) => pulumi.all(Object.values(groups)).apply(() => resolve()));
      // The groups register their children after they resolve: wait for as many as were applied (bounded), then a
      // moment for any extra one, which the comparison below would catch.
      const isChild = (r: { type: string }) => !r.type.startsWith("kubernetes:yaml:");
      // On a timeout the exact comparison below says which objects are missing, which a timeout's message would not.
      await waitFor("every applied object registered", () => registered.filter(isChild).length >= applied.length, { intervalMs: 100 }).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 200));
      const fromPulumi = registered
        .filter(isChild)
        .map((r) => `${r.inputs.apiVersion}/${r.inputs.kind}/${r.inputs.metadata?.namespace ?? "-"}/${r.inputs.metadata?.name}`)
        .sort();
      expect(fromPulumi).toEqual(applied);
    } finally {
      await cluster.stop();
    }
  }, 300_000);
});
