/**
 * Trivy's misconfiguration checks (trivy config 0.74.0, the checks compiled into the binary, offline) over every
 * environment's stack. Trivy reads Terraform JSON, but not the nested blocks in it: it parses a .tf.json body with
 * only the top-level schema, so `private_cluster_config { enable_private_nodes = true }` and every other block read
 * as absent, and 31 of dev's findings were of settings the stack has. So Trivy reads each stack as HCL: cdktf's own
 * rendering (SYNTH_HCL_OUTPUT, which knows from the provider bindings what is a block), less the `terraform` block
 * (nothing Trivy checks) and the `locals` block, which cdktf renders as invalid HCL (raw newlines in quoted strings)
 * and which is rendered here from the JSON. An exception lives on the resource in the JSON, `"//": {"trivy":
 * {"ignore": [{"id", "comment"}]}}`, and reaches Trivy as its own inline form, `#trivy:ignore:<id>` on the line
 * above the resource, with the reason above that. Built by scripts/tools/install-trivy.sh; exit 3 skips with the reason.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { App } from "cdktf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TerraformJson } from "../src/app.js";
import { withoutTokenStackTraces } from "../src/app.js";
import { PlatformStack } from "../src/stack.js";
import { hermeticConfigs } from "./helpers.js";
import { synthesizedStacks } from "./synthesized.js";

const dir = mkdtempSync(join(tmpdir(), "infra-trivy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface TrivyIgnore {
  readonly id: string;
  readonly comment: string;
}

/** The Trivy exceptions written on a resource of the synthesized JSON. */
function trivyIgnoresOf(conf: Record<string, unknown>): TrivyIgnore[] {
  const comment = conf["//"] as { trivy?: { ignore?: { id?: unknown; comment?: unknown }[] } } | undefined;
  return (comment?.trivy?.ignore ?? []).map((i) => ({ id: String(i.id), comment: String(i.comment ?? "") }));
}

/** cdktf's HCL rendering of each environment's stack (the same constructs as `pnpm synth`, rendered as HCL). */
function synthesizeHcl(outdir: string): Record<string, string> {
  const configs = hermeticConfigs();
  const previous = process.env.SYNTH_HCL_OUTPUT;
  process.env.SYNTH_HCL_OUTPUT = "true";
  try {
    const app = new App({ outdir, hclOutput: true });
    for (const config of configs) new PlatformStack(app, config.name, { config });
    withoutTokenStackTraces(() => app.synth());
  } finally {
    if (previous === undefined) delete process.env.SYNTH_HCL_OUTPUT;
    else process.env.SYNTH_HCL_OUTPUT = previous;
  }
  return Object.fromEntries(configs.map((c) => [c.name, readFileSync(join(outdir, "stacks", c.name, "cdk.tf"), "utf8")]));
}

const TOP_LEVEL = /^(resource|data|provider|output|variable|module|import|moved) "|^(terraform|locals) \{/;
const RESOURCE = /^resource "([^"]+)" "([^"]+)" \{/;

/** A JSON value as an HCL expression: JSON's literals are HCL's, but for the two escapes HCL lacks. */
function hclValue(value: unknown): string {
  const text = JSON.stringify(value);
  if (/\\[bf]/.test(text)) throw new Error(`a local holds a backspace or form feed, which HCL cannot escape: ${text.slice(0, 80)}`);
  return text;
}

/** The HCL Trivy reads: cdktf's, without its terraform and locals blocks, locals from the JSON, exceptions inline. */
function hclForTrivy(hcl: string, json: TerraformJson): { text: string; resources: number } {
  const out: string[] = [];
  let skipping = false;
  let resources = 0;
  for (const line of hcl.split("\n")) {
    if (TOP_LEVEL.test(line)) skipping = /^(terraform|locals) \{/.test(line);
    if (skipping) continue;
    const resource = RESOURCE.exec(line);
    if (resource) {
      resources++;
      // Every reason first, then the ignores on consecutive lines right above the block: Trivy applies an ignore
      // only through a run of ignore comments, so a reason between two ignores hides the first (found with two on
      // the exports bucket).
      const ignores = trivyIgnoresOf(json.resource?.[resource[1]!]?.[resource[2]!] ?? {});
      for (const ignore of ignores) out.push(...ignore.comment.split("\n").map((l) => `# ${ignore.id}: ${l}`));
      for (const ignore of ignores) out.push(`#trivy:ignore:${ignore.id}`);
    }
    out.push(line);
  }
  const locals = Object.entries(json.locals ?? {}).map(([name, value]) => `  ${name} = ${hclValue(value)}`);
  return { text: [`locals {`, ...locals, `}`, "", ...out].join("\n"), resources };
}

interface Finding {
  env: string;
  resource: string;
  id: string;
  severity: string;
  title: string;
  message: string;
}
const describeFinding = (f: Finding) => `trivy ${f.env} ${f.resource}: ${f.id} ${f.severity} "${f.title}": ${f.message}`;

/** Prefixes Trivy's command with `unshare -n` where this user may: a network namespace with no interface proves it offline. */
const offline = spawnSync("unshare", ["-n", "true"]).status === 0 ? ["unshare", "-n"] : [];

/** Scans `files` (env -> HCL) in one run; every failure, and the HCL Trivy could not parse. */
function trivyConfig(trivy: string, files: Record<string, string>): { findings: Finding[]; parseErrors: string[] } {
  const root = mkdtempSync(join(dir, "scan-"));
  for (const [env, text] of Object.entries(files)) {
    // Trivy skips a top-level dev/ as a system directory.
    mkdirSync(join(root, "stacks", `env-${env}`), { recursive: true });
    writeFileSync(join(root, "stacks", `env-${env}`, "main.tf"), text);
  }
  const [command, ...prefix] = [...offline, trivy];
  const args = ["config", "--skip-check-update", "--skip-version-check", "--disable-telemetry", "--format", "json", "--cache-dir", join(root, "cache"), join(root, "stacks")];
  const run = spawnSync(command!, [...prefix, ...args], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 300_000 });
  if (run.error || !run.stdout.trim()) throw new Error(`trivy config reported nothing (exit ${String(run.status)}): ${run.error?.message ?? run.stderr}`);
  const report = JSON.parse(run.stdout) as { Results?: { Target: string; Misconfigurations?: Record<string, unknown>[] }[] };
  const findings = (report.Results ?? []).flatMap((r) =>
    (r.Misconfigurations ?? [])
      .filter((m) => m.Status === "FAIL")
      .map((m) => ({
        env: /env-([^/]+)\//.exec(r.Target)?.[1] ?? r.Target,
        resource: String((m.CauseMetadata as { Resource?: string } | undefined)?.Resource ?? "?"),
        id: String(m.ID),
        severity: String(m.Severity),
        title: String(m.Title),
        message: String(m.Message),
      })),
  );
  const parseErrors = run.stderr.split("\n").filter((l) => /ERROR/.test(l) && /pars/i.test(l));
  return { findings, parseErrors };
}

/**
 * Findings that need a change in infra/src (the lead's), listed so that the suite stays green meanwhile and a new
 * finding, or one of these fixed, fails it. Each names what would end it.
 */
const AWAITING_INFRA: { id: string; resource: RegExp; needs: string }[] = [];

describe("Trivy's misconfiguration checks over every environment's stack (offline, the checks in the binary)", () => {
  const trivy: { path?: string; unavailable?: string } = {};
  let hcl: Record<string, string> = {};
  let json: Record<string, TerraformJson> = {};

  beforeAll(() => {
    const script = fileURLToPath(new URL("../../scripts/tools/install-trivy.sh", import.meta.url));
    const install = spawnSync("bash", [script], { encoding: "utf8" });
    if (install.status === 0) trivy.path = install.stdout.trim().split("\n").pop();
    else if (install.status === 3) {
      trivy.unavailable = install.stderr.trim().split("\n").pop();
      console.warn(`skipping Trivy over the stacks: ${trivy.unavailable}`);
      return;
    } else throw new Error(`scripts/tools/install-trivy.sh failed (exit ${String(install.status)}):\n${install.stderr}`);
    hcl = synthesizeHcl(join(dir, "hcl"));
    json = Object.fromEntries(synthesizedStacks().map((s) => [s.name, s.json]));
  }, 60 * 60_000);

  const forTrivy = () => Object.fromEntries(Object.entries(hcl).map(([env, text]) => [env, hclForTrivy(text, json[env]!).text]));

  it("reads every resource of every stack: each rendered, and no HCL Trivy cannot parse", (ctx) => {
    if (!trivy.path) ctx.skip(`Trivy unavailable: ${trivy.unavailable}`);
    for (const [env, text] of Object.entries(hcl)) {
      const inJson = Object.values(json[env]!.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
      expect(hclForTrivy(text, json[env]!).resources, `${env}: resources in the HCL and in the JSON`).toBe(inJson);
    }
    expect(trivyConfig(trivy.path!, forTrivy()).parseErrors).toEqual([]);
  });

  it("finds nothing but what awaits infra/src, each exception on its resource read by Trivy", (ctx) => {
    if (!trivy.path) ctx.skip(`Trivy unavailable: ${trivy.unavailable}`);
    const { findings } = trivyConfig(trivy.path!, forTrivy());
    const awaiting = (f: Finding) => AWAITING_INFRA.some((a) => a.id === f.id && a.resource.test(f.resource));
    expect(findings.filter((f) => !awaiting(f)).map(describeFinding)).toEqual([]);
    // Each awaited finding still occurs, in every environment: once fixed, it leaves this list.
    for (const a of AWAITING_INFRA) {
      for (const env of Object.keys(hcl)) {
        expect(findings.some((f) => f.env === env && f.id === a.id && a.resource.test(f.resource)), `${env}: ${a.id} (${a.needs}) no longer occurs; remove it from AWAITING_INFRA`).toBe(true);
      }
    }
  });

  it("fails a stack whose cluster has public nodes and whose VMs boot without Secure Boot, naming the resource and the check", (ctx) => {
    if (!trivy.path) ctx.skip(`Trivy unavailable: ${trivy.unavailable}`);
    const broken = hclForTrivy(hcl.production!, json.production!).text.replace("enable_private_nodes = true", "enable_private_nodes = false").replaceAll("enable_secure_boot = true", "enable_secure_boot = false");
    const { findings } = trivyConfig(trivy.path!, { production: broken });
    expect(findings.filter((f) => f.id === "GCP-0059").map((f) => f.resource)).toEqual([expect.stringMatching(/^google_container_cluster\./)]);
    expect(findings.filter((f) => f.id === "GCP-0067").map((f) => f.resource)).toEqual(expect.arrayContaining([expect.stringMatching(/^google_compute_instance\.Citus_Coordinator_/)]));
  });

  it("reads an exception written on a resource, as #trivy:ignore above it", (ctx) => {
    if (!trivy.path) ctx.skip(`Trivy unavailable: ${trivy.unavailable}`);
    const dev = structuredClone(json.dev!) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    const [name, bucket] = Object.entries(dev.resource.google_storage_bucket!).find(([n]) => n.startsWith("Backups_"))!;
    bucket["//"] = { ...(bucket["//"] as object), trivy: { ignore: [{ id: "GCP-0077", comment: "a test: access logs go elsewhere" }] } };
    const text = hclForTrivy(hcl.dev!, dev as TerraformJson).text;
    expect(text).toContain(`# GCP-0077: a test: access logs go elsewhere\n#trivy:ignore:GCP-0077\nresource "google_storage_bucket" "${name}" {`);
    expect(trivyConfig(trivy.path!, { dev: text }).findings.filter((f) => f.id === "GCP-0077")).toEqual([]);
  });
});
