/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read the engines' JSON reports and break synthesized objects on purpose */
/**
 * The engines users run over Kubernetes manifests, over every environment's, at their defaults: kube-score, Trivy's
 * misconfiguration checks (those compiled into the binary, run offline) and Polaris. No finding, or an exception
 * written on its object with its reason (src/policy/exceptions.ts). Each engine is built from the Go module proxy by
 * scripts/tools/install-<tool>.sh; exit 3 means it cannot be had here, and its tests skip with the installer's reason.
 * A failure names the tool, the environment, the object and the check.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ENVIRONMENT_NAMES, admittedImagePatterns, loadEnvironment, type EnvironmentConfig, type EnvironmentName } from "@platform/config";
import { synthesizeEnvironment, type KubernetesObject } from "../src/app.js";
import { KUBE_SCORE_IGNORE, engineExceptionsOf } from "../src/policy/exceptions.js";

const dir = mkdtempSync(join(tmpdir(), "k8s-engines-"));
writeFileSync(join(dir, "empty.json"), "{}");
const load = (name: EnvironmentName, env: Record<string, string> = {}) => loadEnvironment(name, { env, overrideFile: join(dir, "empty.json") });
/**
 * What the engines read: every environment at its defaults (Citus), and production in phases 2-3 (docs/SCALING.md),
 * Cloud SQL at home with the Citus cluster alongside, whose workloads carry both databases' URLs, credentials and
 * egress.
 */
const variants: Record<string, EnvironmentConfig> = {
  ...Object.fromEntries(ENVIRONMENT_NAMES.map((name) => [name, load(name)])),
  "production-alongside": load("production", { PLATFORM_PRODUCTION_DATABASE_ENGINE: "postgres", PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE: "true" }),
};
const VARIANTS = Object.keys(variants);
const configs = Object.values(variants);
/** variant -> the objects and the directory holding their files (00-setup.k8s.yaml, ...). */
const synthesized: Record<string, { objects: KubernetesObject[]; files: string[]; dir: string }> = {};

beforeAll(() => {
  for (const [variant, config] of Object.entries(variants)) {
    const out = join(dir, "dist", variant);
    synthesized[variant] = { ...synthesizeEnvironment(config, out), dir: out };
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("reads production alongside as what it names: the workloads reach both databases", () => {
  const env = (variant: string) => JSON.stringify(synthesized[variant]!.objects);
  expect(env("production-alongside")).toContain("DATABASE_URL_CITUS");
  expect(env("production")).not.toContain("DATABASE_URL_CITUS");
});

/** YAML as the engines (Go, YAML 1.1) read it: a string such as "off" is quoted, or it would arrive as a boolean. */
const toYaml = (objects: KubernetesObject[]) => objects.map((o) => stringify(o, { version: "1.1" })).join("---\n");
const ref = (o: { kind: string; metadata: { namespace?: string; name: string } }) => `${o.kind}/${o.metadata.namespace ?? "-"}/${o.metadata.name}`;
const find = (objects: KubernetesObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name) as any;
/** dev's objects with tenant-service's container stripped of its securityContext: every engine must object. */
function brokenDev(): KubernetesObject[] {
  const objects = structuredClone(synthesized.dev!.objects);
  delete find(objects, "Deployment", "tenant-service").spec.template.spec.containers[0].securityContext;
  return objects;
}

interface Tool {
  path?: string;
  unavailable?: string;
}

/** Runs scripts/tools/install-<name>.sh: the binary's path, or why the tool cannot be had here (exit 3). */
function install(name: string): Tool {
  const script = fileURLToPath(new URL(`../../scripts/tools/install-${name}.sh`, import.meta.url));
  const run = spawnSync("bash", [script], { encoding: "utf8" });
  if (run.status === 0) return { path: run.stdout.trim().split("\n").pop() };
  if (run.status === 3) {
    const unavailable = run.stderr.trim().split("\n").pop();
    console.warn(`skipping ${name}: ${unavailable}`);
    return { unavailable };
  }
  throw new Error(`scripts/tools/install-${name}.sh failed (exit ${String(run.status)}):\n${run.stderr}`);
}

/** A cold build takes minutes (Trivy: about 20 on two cores); a warm one answers at once. */
const INSTALL_TIMEOUT = 60 * 60_000;

/** Runs an engine; its report on stdout, or an error with what it said on stderr. */
function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 300_000 });
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (!result.stdout.trim()) throw new Error(`${what} reported nothing (exit ${String(result.status)}): ${result.stderr}`);
  return result.stdout;
}

// ---- kube-score

/** One finding: a check graded WARNING (5) or CRITICAL (1) on an object, not skipped. */
interface KubeScoreFinding {
  object: string;
  check: string;
  grade: number;
  comments: string[];
}

function kubeScore(path: string, files: string[], extra: string[] = []): { objects: number; findings: KubeScoreFinding[] } {
  const report = JSON.parse(run(path, ["score", "--output-format", "json", ...extra, ...files], "kube-score")) as any[];
  const findings = report.flatMap((o) =>
    (o.checks as any[])
      .filter((c) => !c.skipped && c.grade <= 5)
      .map((c) => ({
        object: ref({ kind: o.type_meta.kind, metadata: o.object_meta }),
        check: c.check.id as string,
        grade: c.grade as number,
        comments: ((c.comments as any[]) ?? []).map((m) => `${m.path ? `${m.path}: ` : ""}${m.summary}`),
      })),
  );
  return { objects: report.length, findings };
}
const describeKubeScore = (env: string, f: KubeScoreFinding) =>
  `kube-score ${env} ${f.object}: ${f.check} ${f.grade === 1 ? "CRITICAL" : "WARNING"} (${f.comments.join("; ")})`;

describe("kube-score (its default checks)", () => {
  const tool: Tool = {};
  beforeAll(() => Object.assign(tool, install("kube-score")), INSTALL_TIMEOUT);

  it.for(VARIANTS)("finds nothing in %s's manifests", (env, ctx) => {
    if (!tool.path) ctx.skip(`kube-score unavailable: ${tool.unavailable}`);
    const { dir: out, files } = synthesized[env]!;
    const { objects, findings } = kubeScore(tool.path!, files.map((f) => join(out, f)));
    expect(objects).toBeGreaterThan(40);
    expect(findings.map((f) => describeKubeScore(env, f))).toEqual([]);
  });

  it("writes each exception on its object with its reason, and each one is needed", (ctx) => {
    if (!tool.path) ctx.skip(`kube-score unavailable: ${tool.unavailable}`);
    const { dir: out, files, objects } = synthesized.dev!;
    const ignored = objects.flatMap((o) => (o.metadata.annotations?.[KUBE_SCORE_IGNORE] ?? "").split(",").filter(Boolean).map((check) => ({ object: ref(o), check, o })));
    expect(ignored.length).toBeGreaterThan(0);
    for (const { object, check, o } of ignored) {
      expect(engineExceptionsOf(o.metadata.annotations).kubeScore[check], `${object}: kube-score/ignore ${check} without its reason`).toMatch(/\w{3,}/);
    }
    // Every reason written names an ignored check, and kube-score fails each ignored check when told to read no ignore.
    for (const o of objects) {
      const listed = (o.metadata.annotations?.[KUBE_SCORE_IGNORE] ?? "").split(",");
      for (const check of Object.keys(engineExceptionsOf(o.metadata.annotations).kubeScore)) expect(listed, `${ref(o)}: a reason for ${check}, which it does not ignore`).toContain(check);
    }
    const unignored = kubeScore(tool.path!, files.map((f) => join(out, f)), ["--disable-ignore-checks-annotations"]).findings;
    const stale = ignored.filter(({ object, check }) => !unignored.some((f) => f.object === object && f.check === check));
    expect(stale.map(({ object, check }) => `kube-score dev ${object}: ${check} is ignored but does not fail`)).toEqual([]);
  });

  it("fails a container without its securityContext, naming the object and the check", (ctx) => {
    if (!tool.path) ctx.skip(`kube-score unavailable: ${tool.unavailable}`);
    const file = join(dir, "kube-score-broken.yaml");
    writeFileSync(file, toYaml(brokenDev()));
    const findings = kubeScore(tool.path!, [file]).findings.filter((f) => f.object === "Deployment/tenants/tenant-service");
    // The pod's securityContext still sets the user and group; the container's read-only root is gone.
    expect(findings.map((f) => f.check)).toEqual(["container-security-context-readonlyrootfilesystem"]);
  });
});

// ---- Trivy

/**
 * Trivy decides whether a check that selects one kind (KSV-0039 LimitRange, KSV-0040 ResourceQuota) applies by
 * looking at every object of the scan, then evaluates it on all of them (aquasecurity/trivy#8635): one LimitRange
 * makes every other object fail KSV-0039. So each object is written to a file of its own, and LimitRanges and
 * ResourceQuotas are scanned apart from the rest and from each other. A finding then names exactly one object.
 */
const TRIVY_GROUPS: [string, (o: KubernetesObject) => boolean][] = [
  ["objects", (o) => o.kind !== "LimitRange" && o.kind !== "ResourceQuota"],
  ["limit-ranges", (o) => o.kind === "LimitRange"],
  ["resource-quotas", (o) => o.kind === "ResourceQuota"],
];

/** Trivy skips a top-level dev/, proc/ or sys/ as a system directory, so environment directories carry a prefix. */
const objectFile = (env: string, o: KubernetesObject) => `env-${env}/${o.kind}.${o.metadata.namespace ?? "_"}.${o.metadata.name}.yaml`;

interface TrivyFinding {
  object: string;
  file: string;
  id: string;
  severity: string;
  title: string;
  message: string;
}

/** Prefixes Trivy's command with `unshare -n` where this user may: a network namespace with no interface proves it offline. */
const offline = spawnSync("unshare", ["-n", "true"]).status === 0 ? ["unshare", "-n"] : [];

/**
 * Scans each group's files with Trivy's compiled-in checks and no network, and returns its failures. `ignores`
 * writes a .trivyignore.yaml from the exceptions on the objects, each scoped to its object's file.
 */
function trivyScan(path: string, byEnv: Record<string, KubernetesObject[]>, options: { ignores: boolean }): { scanned: number; findings: TrivyFinding[] } {
  const root = mkdtempSync(join(dir, "trivy-"));
  const objectsByFile = new Map<string, KubernetesObject>();
  // KSV-0125 admits images from trusted registries only; Trivy's default list names only ACR, ECR and GCR. Its
  // documented input for the list gets the registries Binary Authorization admits (the same config).
  const registries = [...new Set(configs.flatMap((c) => admittedImagePatterns(c).map((p) => p.split("/")[0]!)))].sort();
  mkdirSync(join(root, "data"));
  writeFileSync(join(root, "data", "trusted-registries.json"), JSON.stringify({ ksv0125: { trusted_registries: registries } }));
  const ignores: { id: string; paths: string[]; statement: string }[] = [];
  const findings: TrivyFinding[] = [];
  for (const [group, member] of TRIVY_GROUPS) {
    for (const [env, objects] of Object.entries(byEnv)) {
      for (const o of objects.filter(member)) {
        const file = objectFile(env, o);
        mkdirSync(dirname(join(root, group, file)), { recursive: true });
        writeFileSync(join(root, group, file), toYaml([o]));
        objectsByFile.set(`${group}/${file}`, o);
        for (const [id, statement] of Object.entries(engineExceptionsOf(o.metadata.annotations).trivy)) ignores.push({ id, paths: [file], statement });
      }
    }
  }
  writeFileSync(join(root, "trivyignore.yaml"), stringify({ misconfigurations: options.ignores ? ignores : [] }));
  for (const [group] of TRIVY_GROUPS) {
    const args = [
      "config", "--skip-check-update", "--skip-version-check", "--disable-telemetry", "--quiet", "--format", "json",
      "--cache-dir", join(root, "cache"), "--config-data", join(root, "data"), "--ignorefile", join(root, "trivyignore.yaml"), join(root, group),
    ];
    const [command, ...prefix] = [...offline, path];
    const report = JSON.parse(run(command!, [...prefix, ...args], `trivy config ${group}`)) as { Results?: any[] };
    for (const result of report.Results ?? []) {
      for (const m of (result.Misconfigurations as any[] | undefined) ?? []) {
        if (m.Status !== "FAIL") continue;
        const o = objectsByFile.get(`${group}/${result.Target as string}`);
        findings.push({ object: o ? ref(o) : `file ${group}/${result.Target as string}`, file: result.Target, id: m.ID, severity: m.Severity, title: m.Title, message: m.Message });
      }
    }
  }
  return { scanned: objectsByFile.size, findings };
}
const envOf = (f: TrivyFinding) => /^env-([^/]+)\//.exec(f.file)?.[1] ?? "?";
const describeTrivy = (f: TrivyFinding) => `trivy ${envOf(f)} ${f.object}: ${f.id} ${f.severity} "${f.title}": ${f.message}`;

describe("Trivy's misconfiguration checks (trivy config, offline, the checks in the binary)", () => {
  const tool: Tool = {};
  beforeAll(() => Object.assign(tool, install("trivy")), INSTALL_TIMEOUT);

  it("finds nothing in any environment's manifests, each exception written on its object and read by Trivy", (ctx) => {
    if (!tool.path) ctx.skip(`Trivy unavailable: ${tool.unavailable}`);
    const byEnv = Object.fromEntries(Object.entries(synthesized).map(([env, s]) => [env, s.objects]));
    const { scanned, findings } = trivyScan(tool.path!, byEnv, { ignores: true });
    expect(scanned).toBe(Object.values(byEnv).reduce((n, objects) => n + objects.length, 0));
    expect(findings.map(describeTrivy)).toEqual([]);
  });

  // dev runs Jaeger, production the OpenTelemetry Collector (monitoring.traceBackend): between them, every exception.
  it.for<[string, readonly string[]]>([
    ["dev", ["ClusterRole/-/platform-prometheus-kubelet KSV-0047", "ConfigMap/gateway/kong-declarative KSV-0109"]],
    ["production", ["ClusterRole/-/platform-prometheus-kubelet KSV-0047", "ConfigMap/gateway/kong-declarative KSV-0109", "ConfigMap/monitoring/otel-collector-config KSV-01010"]],
  ])("%s: each exception answers a finding Trivy makes without it", ([env, expected], ctx) => {
    if (!tool.path) ctx.skip(`Trivy unavailable: ${tool.unavailable}`);
    const objects = synthesized[env]!.objects;
    const exceptions = objects
      .flatMap((o) => Object.entries(engineExceptionsOf(o.metadata.annotations).trivy).map(([id, reason]) => ({ object: ref(o), id, reason })))
      .sort((a, b) => `${a.object} ${a.id}`.localeCompare(`${b.object} ${b.id}`));
    expect(exceptions.map((e) => `${e.object} ${e.id}`)).toEqual(expected);
    const { findings } = trivyScan(tool.path!, { [env]: objects }, { ignores: false });
    expect(findings.map(describeTrivy).sort()).toEqual(exceptions.map((e) => expect.stringContaining(`trivy ${env} ${e.object}: ${e.id} `)));
  });

  it("fails a container without its securityContext, naming the object and the check", (ctx) => {
    if (!tool.path) ctx.skip(`Trivy unavailable: ${tool.unavailable}`);
    const findings = trivyScan(tool.path!, { dev: brokenDev() }, { ignores: true }).findings.filter((f) => f.object === "Deployment/tenants/tenant-service");
    // Can elevate its own privileges; does not drop all capabilities; root file system not read-only.
    expect(findings.map((f) => f.id)).toEqual(expect.arrayContaining(["KSV-0001", "KSV-0003", "KSV-0014"]));
  });
});

// ---- Polaris

/** Polaris's audit: a result per check on the object, its pod spec and each container; warning and danger count. */
function polarisFindings(report: any, env: string): string[] {
  const failed = (results: Record<string, any> | undefined, where: string) =>
    Object.values(results ?? {})
      .filter((r: any) => !r.Success && (r.Severity === "warning" || r.Severity === "danger"))
      .map((r: any) => `polaris ${env} ${where}: ${r.ID} ${r.Severity} (${r.Message})`);
  return ((report.Results as any[]) ?? []).flatMap((o) => {
    const object = `${o.Kind}/${o.Namespace || "-"}/${o.Name}`;
    return [
      ...failed(o.Results, object),
      ...failed(o.PodResult?.Results, object),
      ...((o.PodResult?.ContainerResults as any[]) ?? []).flatMap((c) => failed(c.Results, `${object} container ${c.Name}`)),
    ];
  });
}

describe("Polaris (polaris audit, its default configuration)", () => {
  const tool: Tool = {};
  beforeAll(() => Object.assign(tool, install("polaris")), INSTALL_TIMEOUT);
  const audit = (path: string) => JSON.parse(run(tool.path!, ["audit", "--audit-path", path, "--format", "json"], "polaris audit"));

  it.for(VARIANTS)("finds no warning and no danger in %s's manifests", (env, ctx) => {
    if (!tool.path) ctx.skip(`Polaris unavailable: ${tool.unavailable}`);
    expect(polarisFindings(audit(synthesized[env]!.dir), env)).toEqual([]);
  });

  it.for(VARIANTS)("%s: each exemption answers a check Polaris fails on that object without it, and every failure is exempted", (env, ctx) => {
    if (!tool.path) ctx.skip(`Polaris unavailable: ${tool.unavailable}`);
    const objects = structuredClone(synthesized[env]!.objects);
    const exempted: string[] = [];
    for (const o of objects) {
      const reasons = engineExceptionsOf(o.metadata.annotations).polaris;
      for (const [check, reason] of Object.entries(reasons)) {
        expect(reason, `${ref(o)}: Polaris ${check} without its reason`).toMatch(/\w{3,}/);
        exempted.push(`${ref(o)} ${check}`);
      }
      // Polaris's own exemptions off: what it finds then is what they hide.
      for (const key of Object.keys(o.metadata.annotations ?? {})) if (key.startsWith("polaris.fairwinds.com/")) delete o.metadata.annotations![key];
    }
    const bare = join(dir, `polaris-bare-${env}`);
    mkdirSync(bare, { recursive: true });
    writeFileSync(join(bare, "all.yaml"), toYaml(objects));
    const failed = new Set(polarisFindings(audit(bare), env).map((f) => f.replace(/^polaris \S+ (\S+)(?: container \S+)?: (\S+) .*$/, "$1 $2")));
    expect([...failed].sort()).toEqual([...new Set(exempted)].sort());
  });

  it("fails a container without its securityContext, naming the object and the check", (ctx) => {
    if (!tool.path) ctx.skip(`Polaris unavailable: ${tool.unavailable}`);
    const broken = join(dir, "polaris-broken");
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, "all.yaml"), toYaml(brokenDev()));
    expect(polarisFindings(audit(broken), "dev").filter((f) => f.includes("Deployment/tenants/tenant-service"))).toEqual(
      expect.arrayContaining([expect.stringMatching(/runAsRootAllowed|privilegeEscalationAllowed/)]),
    );
  });
});
