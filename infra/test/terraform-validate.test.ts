/**
 * Every environment's synthesized stack, checked by the pinned Terraform CLI with the real Google provider at the
 * version the bindings were generated for (6.50.0), built from source and installed from a local filesystem mirror:
 * nothing comes from a registry. Nothing needs Google: the one call toward it is the real provider's look-up of whose
 * token it holds when it is configured (a log line; its failure is ignored), which no request log shows.
 *
 * - `terraform init -backend=false` from the mirror, then `terraform validate`: no error and no warning (a warning we
 *   keep is listed below with its reason). Validate checks the configuration against the provider's own schema
 *   (resource types, arguments, block nesting, types, required and conflicting arguments) and runs the provider's
 *   own validation of every value known before apply (enums, formats, ranges).
 * - `terraform test`, `command = plan`, the project data source overridden, twice:
 *   - with `mock_provider "google"`: every expression and reference evaluated, every resource planned for creation,
 *     and the provider's validation run again on the values the plan knows (validate saw them unknown);
 *   - with the real provider, configured as the stack configures it plus a token that is not one: the provider's own
 *     planning (its defaults, CustomizeDiff rules, default labels merged into effective_labels), which sends no request
 *     to a Google API; its debug log, where it dumps every API request, is read to prove that.
 *
 * What only a real project shows (the API's own checks, quotas, org policies, IAM, service agents) is in
 * docs/DEPLOYMENT.md, "What the offline checks prove". scripts/tools/install-terraform.sh checks the CLI's version and
 * install-terraform-provider-google.sh builds the provider; exit 3 from either (the tool cannot be had here) skips
 * with the reason, any other failure (a terraform of another version, a failed build) fails.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENVIRONMENT_NAMES } from "@platform/config";
import type { SynthesizedStack, TerraformJson } from "../src/app.js";
import { synthesizedAlongsideStack, synthesizedPostgresStack, synthesizedStacks } from "./synthesized.js";

/** production on the postgres engine (Cloud SQL), synthesized once by test/global-setup.ts, checked like the three. */
const POSTGRES = "production-postgres";
/** And with the Citus cluster beside Cloud SQL (database.citusAlongside). */
const ALONGSIDE = "production-citus-alongside";
const STACKS = [...ENVIRONMENT_NAMES, POSTGRES, ALONGSIDE];

const TOOLS = fileURLToPath(new URL("../../scripts/tools/", import.meta.url));

/** Warnings `terraform validate` may report that we keep, each with why. Empty: every warning fails the test. */
const KEPT_WARNINGS: readonly { address: string; summary: RegExp; reason: string }[] = [];

interface Tool {
  path?: string;
  unavailable?: string;
}

/** Runs an installer; exit 3 means the tool cannot be had here (the reason is its last line on stderr). */
function install(script: string): Tool {
  const run = spawnSync("bash", [join(TOOLS, script)], { encoding: "utf8" });
  if (run.status === 0) return { path: run.stdout.trim().split("\n").pop() };
  if (run.status === 3) return { unavailable: run.stderr.trim().split("\n").pop() };
  throw new Error(`scripts/tools/${script} failed (exit ${String(run.status)}):\n${run.stderr}`);
}

interface Diagnostic {
  severity: "error" | "warning";
  summary: string;
  detail?: string;
  address?: string;
  range?: { filename: string; start: { line: number } };
  snippet?: { context?: string | null };
}

/**
 * The Terraform address each line of a stack's JSON belongs to (`google_compute_instance.x`, `data.google_project.y`,
 * `output.z`), so a diagnostic, which Terraform gives as file and line, names the resource. The stack is written with
 * JSON.stringify's two-space indent, so a key's depth is its indent.
 */
function addressesByLine(text: string): (line: number) => string | undefined {
  const path: string[] = [];
  const byLine: (string | undefined)[] = [undefined];
  for (const line of text.split("\n")) {
    const key = /^( *)"((?:[^"\\]|\\.)*)": /.exec(line);
    if (key) {
      const depth = key[1]!.length / 2;
      path.length = depth - 1;
      path[depth - 1] = JSON.parse(`"${key[2]!}"`) as string;
    }
    byLine.push(addressOf(path));
  }
  return (line) => byLine[line];
}

/** The address of a JSON path in a Terraform JSON file: its first three keys say what block it is in. */
function addressOf([top, type, name]: string[]): string | undefined {
  if (top === "resource" && name) return `${type}.${name}`;
  if (top === "data" && name) return `data.${type}.${name}`;
  if ((top === "output" || top === "provider") && type) return `${top}.${type}`;
  if (top === "locals" && type) return `local.${type}`;
  return top;
}

/** One line per diagnostic: the tool, the environment, the address (or file and line), the rule, Terraform's detail. */
function describeDiagnostic(tool: string, env: string, d: Diagnostic): string {
  const where = d.address ?? (d.range ? `${d.range.filename}:${d.range.start.line}` : d.snippet?.context ?? "(no location)");
  return `${tool} [${env}] ${d.severity} at ${where}: ${d.summary}${d.detail ? `: ${d.detail.replace(/\s+/g, " ")}` : ""}`;
}

/** A working directory holding one stack, initialized from the mirror. */
interface Workdir {
  readonly env: string;
  readonly dir: string;
  readonly addressAt: (line: number) => string | undefined;
}

const terraform: Tool = {};
const provider: Tool = {};
let root: string;
let cliConfig: string;

/** Runs the pinned CLI in `dir` with the mirror-only CLI config (no registry, no checkpoint call), TF_* of ours only. */
function tf(dir: string, args: string[], extraEnv: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TF_")));
  const run = spawnSync(terraform.path!, args, {
    cwd: dir,
    encoding: "utf8",
    maxBuffer: 1024 * 1024 * 1024,
    env: { ...env, TF_CLI_CONFIG_FILE: cliConfig, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1", TF_INPUT: "0", ...extraEnv },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Writes the stack (the synthesized JSON, two-space indented) into a fresh directory and runs `terraform init` there. */
function initialized(env: string, json: TerraformJson, name = env): Workdir {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const text = JSON.stringify(json, null, 2);
  writeFileSync(join(dir, "cdk.tf.json"), text);
  const init = tf(dir, ["init", "-backend=false", "-input=false", "-no-color"]);
  if (init.status !== 0) throw new Error(`terraform init [${env}] failed (provider from the mirror ${provider.path!}):\n${init.stderr}${init.stdout}`);
  return { env, dir, addressAt: addressesByLine(text) };
}

/** `terraform validate -json`: its diagnostics, each with the address of the resource it is about. */
function validate(work: Workdir): Diagnostic[] {
  const run = tf(work.dir, ["validate", "-json", "-no-color"]);
  let parsed: { diagnostics?: Diagnostic[] };
  try {
    parsed = JSON.parse(run.stdout) as { diagnostics?: Diagnostic[] };
  } catch {
    throw new Error(`terraform validate [${work.env}] printed no JSON (exit ${String(run.status)}):\n${run.stderr}${run.stdout}`);
  }
  return (parsed.diagnostics ?? []).map((d) => ({ ...d, address: d.range ? work.addressAt(d.range.start.line) : undefined }));
}

interface PlannedChange {
  address: string;
  type: string;
  change: { actions: string[]; after?: Record<string, unknown> | null };
}

/** Offline values for the stacks' data sources, by type: what the plan reads instead of calling Google. */
const OFFLINE_DATA: Record<string, (conf: Record<string, unknown>) => Record<string, unknown>> = {
  google_project: (conf) => ({ number: "123456789012", project_id: conf.project_id, name: conf.project_id }),
};

/**
 * The test file for an offline plan: every data source overridden, one plan run, and either
 * - "mock": `mock_provider "google"`: Terraform plans every resource itself (computed attributes unknown) and asks the
 *   real provider only to validate each resource's values, now that the plan knows them; or
 * - "provider": the real provider, configured as the stack configures it but with a token that is not one, plans every
 *   resource itself (its defaults, CustomizeDiff, labels), which it does without calling Google.
 */
function offlinePlanTest(json: TerraformJson, mode: "mock" | "provider"): string {
  const overrides = Object.entries(json.data ?? {}).flatMap(([type, byName]) =>
    Object.entries(byName).map(([name, conf]) => {
      const values = OFFLINE_DATA[type];
      if (!values) throw new Error(`terraform test: no offline value for data source type ${type} (data.${type}.${name}); add one to OFFLINE_DATA`);
      return `override_data {\n  target = data.${type}.${name}\n  values = ${JSON.stringify(values(conf))}\n}\n`;
    }),
  );
  // A JSON value is an HCL expression as it is; a nested block (a JSON array) would not be, so it is refused here.
  const providerConfig = (): string => {
    const configs = (json.provider?.google ?? [{}]) as Record<string, unknown>[];
    if (configs.length !== 1) throw new Error(`terraform test: the stack configures the google provider ${configs.length} times; expected once`);
    const attributes = Object.entries({ ...configs[0], access_token: OFFLINE_TOKEN }).map(([key, value]) => {
      if (Array.isArray(value)) throw new Error(`terraform test: the google provider's ${key} is a block; write it into the offline plan's provider block`);
      return `  ${key} = ${JSON.stringify(value)}\n`;
    });
    return `provider "google" {\n${attributes.join("")}}\n`;
  };
  return [mode === "mock" ? `mock_provider "google" {}\n` : providerConfig(), ...overrides, `run "plan" {\n  command = plan\n}\n`].join("\n");
}

/** The real provider's credentials in the offline plan: a static token that nothing accepts, never a real one. */
const OFFLINE_TOKEN = "offline-plan-not-a-token";

/**
 * `terraform test -json -verbose` on the offline-plan file: its diagnostics, the plan's resource changes and the
 * provider's debug log, where every request it sends to a Google API is written (`---[ REQUEST ]---`).
 */
function offlinePlan(work: Workdir, testFile: string): { passed: boolean; diagnostics: Diagnostic[]; changes: PlannedChange[]; output: string; providerLog: string } {
  mkdirSync(join(work.dir, "tests"), { recursive: true });
  writeFileSync(join(work.dir, "tests", "offline-plan.tftest.hcl"), testFile);
  const logFile = join(work.dir, "provider.log");
  rmSync(logFile, { force: true });
  // TF_LOG, not TF_LOG_PROVIDER: the provider's SDK dumps requests only when TF_LOG itself is DEBUG.
  const run = tf(work.dir, ["test", "-json", "-verbose", "-no-color"], { TF_LOG: "DEBUG", TF_LOG_PATH: logFile });
  const diagnostics: Diagnostic[] = [];
  const changes: PlannedChange[] = [];
  let passed = false;
  for (const line of run.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const message = JSON.parse(line) as {
      type: string;
      diagnostic?: Diagnostic;
      test_plan?: { resource_changes?: PlannedChange[] };
      test_summary?: { status: string };
    };
    if (message.type === "diagnostic" && message.diagnostic) {
      const d = message.diagnostic;
      diagnostics.push({ ...d, address: d.address ?? (d.range?.filename.endsWith(".json") ? work.addressAt(d.range.start.line) : undefined) });
    }
    if (message.type === "test_plan") changes.push(...(message.test_plan?.resource_changes ?? []));
    if (message.type === "test_summary") passed = message.test_summary?.status === "pass" && run.status === 0;
  }
  const providerLog = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
  return { passed, diagnostics, changes, output: run.stderr + run.stdout.slice(0, 4000), providerLog };
}

/** The API requests in a provider's debug log, each as its request line and host. */
function apiRequests(log: string): string[] {
  const lines = log.split("\n");
  const strip = (line: string | undefined) => (line ?? "").replace(/^.*provider\.terraform-provider-google[^:]*: /, "").trim();
  return lines.flatMap((line, i) => (line.includes("---[ REQUEST ]---") ? [`${strip(lines[i + 1])} (${strip(lines[i + 2])})`] : []));
}

/** The addresses of a stack's resources, as the plan names them (the stacks use neither count nor for_each). */
const configuredAddresses = (json: TerraformJson): string[] =>
  Object.entries(json.resource ?? {})
    .flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`))
    .sort();

describe("Terraform with the real Google provider: validate and an offline plan of every stack", () => {
  let stacks: SynthesizedStack[];
  const workdirs = new Map<string, Workdir>();

  beforeAll(() => {
    Object.assign(terraform, install("install-terraform.sh"));
    if (terraform.unavailable) console.warn(`skipping Terraform validation: ${terraform.unavailable}`);
    Object.assign(provider, install("install-terraform-provider-google.sh"));
    if (provider.unavailable) console.warn(`skipping Terraform validation: ${provider.unavailable}`);
    if (!terraform.path || !provider.path) return;
    root = mkdtempSync(join(tmpdir(), "tf-validate-"));
    // Only the mirror: a provider other than hashicorp/google, or any download, fails init naming it.
    cliConfig = join(root, "terraformrc");
    writeFileSync(
      cliConfig,
      `disable_checkpoint = true\nprovider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(provider.path)}\n    include = ["registry.terraform.io/hashicorp/google"]\n  }\n}\n`,
    );
    stacks = [...synthesizedStacks(), { ...synthesizedPostgresStack(), name: POSTGRES }, { ...synthesizedAlongsideStack(), name: ALONGSIDE }];
    for (const stack of stacks) workdirs.set(stack.name, initialized(stack.name, stack.json));
  }, 100 * 60_000);

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const unavailable = () => terraform.unavailable ?? provider.unavailable;

  it.for(STACKS)("%s: terraform validate reports no error and no warning", (env, ctx) => {
    if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
    const diagnostics = validate(workdirs.get(env)!).filter(
      (d) => !(d.severity === "warning" && KEPT_WARNINGS.some((k) => k.address === d.address && k.summary.test(d.summary))),
    );
    expect(diagnostics.map((d) => describeDiagnostic("terraform validate", env, d))).toEqual([]);
  });

  it.for(STACKS)("%s: plans offline with a mocked provider (project data overridden): every resource planned for creation", (env, ctx) => {
    if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
    const stack = stacks.find((s) => s.name === env)!;
    const plan = offlinePlan(workdirs.get(env)!, offlinePlanTest(stack.json, "mock"));
    expect(plan.diagnostics.map((d) => describeDiagnostic("terraform test (mocked plan)", env, d))).toEqual([]);
    expect(plan.passed, plan.output).toBe(true);
    expect(plan.changes.map((c) => c.address).sort()).toEqual(configuredAddresses(stack.json));
    expect(plan.changes.filter((c) => c.change.actions.join() !== "create").map((c) => `${c.address}: ${c.change.actions.join()}`)).toEqual([]);
  });

  it.for(STACKS)("%s: plans offline with the provider's own planning (no credentials, no API request), every labelled resource carrying the environment's labels", (env, ctx) => {
    if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
    const stack = stacks.find((s) => s.name === env)!;
    const plan = offlinePlan(workdirs.get(env)!, offlinePlanTest(stack.json, "provider"));
    expect(plan.diagnostics.map((d) => describeDiagnostic("terraform test (provider's plan)", env, d))).toEqual([]);
    expect(plan.passed, plan.output).toBe(true);
    expect(plan.changes.map((c) => c.address).sort()).toEqual(configuredAddresses(stack.json));
    expect(plan.changes.filter((c) => c.change.actions.join() !== "create").map((c) => `${c.address}: ${c.change.actions.join()}`)).toEqual([]);
    // The provider was configured and planned (its log says so) without sending one request to a Google API.
    expect(plan.providerLog).toContain("provider.terraform-provider-google_v6.50.0");
    expect(apiRequests(plan.providerLog).map((r) => `terraform test (provider's plan) [${env}] sent a request to a Google API: ${r}`)).toEqual([]);
    // Only the provider computes effective_labels (a mock leaves them unknown): the provider's default labels reach
    // every resource that takes labels.
    const defaultLabels = ((stack.json.provider?.google as Record<string, unknown>[])[0]!.default_labels ?? {}) as Record<string, string>;
    expect(defaultLabels.environment).toBe(env === POSTGRES || env === ALONGSIDE ? "production" : env);
    const labelled = plan.changes.filter((c) => c.change.after && "effective_labels" in c.change.after);
    expect(labelled.length).toBeGreaterThan(10);
    const missing = labelled.flatMap((c) =>
      Object.entries(defaultLabels)
        .filter(([k, v]) => (c.change.after!.effective_labels as Record<string, string> | null)?.[k] !== v)
        .map(([k, v]) => `terraform test (provider's plan) [${env}] ${c.address}: effective_labels lacks ${k}=${v}`),
    );
    expect(missing).toEqual([]);
  });

  describe("a broken stack fails, naming the environment, the resource and the rule", () => {
    const broken = (mutate: (json: Record<string, Record<string, Record<string, Record<string, unknown>>>>) => void): Workdir => {
      const json = structuredClone(stacks.find((s) => s.name === "dev")!.json) as unknown as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
      mutate(json);
      return initialized("dev", json as unknown as TerraformJson, `dev-broken-${Math.random().toString(36).slice(2)}`);
    };
    const firstOf = (json: Record<string, Record<string, Record<string, Record<string, unknown>>>>, type: string): [string, Record<string, unknown>] => {
      const [name, conf] = Object.entries(json.resource![type]!)[0]!;
      return [`${type}.${name}`, conf];
    };

    it("an argument the provider's schema does not have", (ctx) => {
      if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
      let address = "";
      const work = broken((json) => {
        const [a, conf] = firstOf(json, "google_storage_bucket");
        address = a;
        conf.no_such_argument = true;
      });
      const messages = validate(work).map((d) => describeDiagnostic("terraform validate", "dev", d));
      expect(messages).toEqual([expect.stringMatching(new RegExp(`^terraform validate \\[dev\\] error at ${address.replace(".", "\\.")}: Extraneous JSON object property`))]);
    });

    it("a value the provider's own validation refuses (a KMS key rotated hourly; the provider's floor is a day)", (ctx) => {
      if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
      let address = "";
      const work = broken((json) => {
        const [a, conf] = firstOf(json, "google_kms_crypto_key");
        address = a;
        conf.rotation_period = "3600s";
      });
      const messages = validate(work).map((d) => describeDiagnostic("terraform validate", "dev", d));
      expect(messages).toEqual([expect.stringMatching(new RegExp(`^terraform validate \\[dev\\] error at ${address.replace(".", "\\.")}: Rotation period must be greater than one day`))]);
    });

    it("a value known only at plan time that the provider refuses: validate cannot see it, the offline plan does", (ctx) => {
      if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
      const stack = stacks.find((s) => s.name === "dev")!;
      let address = "";
      const work = broken((json) => {
        const [a, conf] = firstOf(json, "google_kms_crypto_key");
        address = a;
        conf.rotation_period = "${data.google_project.Project.number}";
      });
      expect(validate(work).map((d) => describeDiagnostic("terraform validate", "dev", d))).toEqual([]);
      const plan = offlinePlan(work, offlinePlanTest(stack.json, "mock"));
      expect(plan.passed).toBe(false);
      expect(plan.diagnostics.map((d) => describeDiagnostic("terraform test (offline plan)", "dev", d)).join("\n")).toMatch(
        new RegExp(`error at ${address.replace(".", "\\.")}: Invalid rotation period format: 123456789012`),
      );
    });

    it("a rule only the provider's own plan checks (an ingress firewall rule without a source): validate and the mocked plan pass it, the provider's plan refuses", (ctx) => {
      if (unavailable()) ctx.skip(`Terraform or the Google provider unavailable: ${unavailable()!}`);
      const stack = stacks.find((s) => s.name === "dev")!;
      let address = "";
      const work = broken((json) => {
        const [name, conf] = Object.entries(json.resource!.google_compute_firewall!).find(([, c]) => (c.direction ?? "INGRESS") === "INGRESS")!;
        address = `google_compute_firewall.${name}`;
        for (const source of ["source_ranges", "source_tags", "source_service_accounts"]) delete conf[source];
      });
      expect(validate(work).map((d) => describeDiagnostic("terraform validate", "dev", d))).toEqual([]);
      expect(offlinePlan(work, offlinePlanTest(stack.json, "mock")).passed).toBe(true);
      const plan = offlinePlan(work, offlinePlanTest(stack.json, "provider"));
      expect(plan.passed).toBe(false);
      expect(plan.diagnostics.map((d) => describeDiagnostic("terraform test (provider's plan)", "dev", d)).join("\n")).toMatch(
        new RegExp(`error at ${address.replace(".", "\\.")}: .*one of source_tags, source_ranges, or source_service_accounts must be defined`),
      );
    });
  });
});
