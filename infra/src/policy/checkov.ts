/**
 * Checkov (PyPI, pinned in scripts/tools/install-checkov.sh) over synthesized stacks: its Terraform checks, Google
 * and general, on the Terraform JSON that `cdktf deploy` applies. The verdict per check and resource is Checkov's;
 * this module only gives it a copy it can parse, counts what it evaluated, and matches its failures against the
 * skips written on the resources (checkov-skips.ts), since Checkov's Terraform JSON runner reads none itself.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TerraformJson } from "../app.js";
import { checkovSkipsOf } from "./checkov-skips.js";

const INSTALL_SCRIPT = fileURLToPath(new URL("../../../scripts/tools/install-checkov.sh", import.meta.url));
/** The census check (checkov/census.py): passes on every resource Checkov evaluates. */
const EXTERNAL_CHECKS = fileURLToPath(new URL("./checkov/", import.meta.url));
export const CENSUS_CHECK = "CKV_PLATFORM_CENSUS";

export interface CheckovFinding {
  readonly checkId: string;
  readonly checkName: string;
  /** Terraform address, e.g. google_kms_crypto_key.Keys_backups_6D4802B4. */
  readonly address: string;
  readonly guideline?: string;
}

export interface CheckovSkipped extends CheckovFinding {
  /** The reason written on the resource. */
  readonly reason: string;
}

export interface CheckovVerdict {
  readonly stack: string;
  readonly checkovVersion: string;
  /** Resources in the stack's Terraform JSON. */
  readonly resources: number;
  /** Resources Checkov evaluated (the census), by address. */
  readonly evaluated: readonly string[];
  /** Resources of the stack that Checkov never reached. */
  readonly notEvaluated: readonly string[];
  /** Checks Checkov passed (the census not counted). */
  readonly passed: number;
  /** Checks Checkov failed on a resource that carries no skip for them. */
  readonly failed: readonly CheckovFinding[];
  /** Checks Checkov failed on a resource whose skip for them says why they do not apply. */
  readonly skipped: readonly CheckovSkipped[];
  /** Skips written on a resource for a check Checkov did not fail there: stale, or a typo in the id. */
  readonly staleSkips: readonly { readonly address: string; readonly checkId: string; readonly reason: string }[];
  /** Files Checkov could not parse: it then evaluates nothing in them. */
  readonly parsingErrors: readonly string[];
}

/** Installs Checkov (once per version, cached outside the repository) and returns its path, or why it cannot be had. */
export function installCheckov(): { readonly path: string } | { readonly unavailable: string } {
  const run = spawnSync("bash", [INSTALL_SCRIPT], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (run.status === 0) return { path: run.stdout.trim().split("\n").pop()! };
  const said = run.stderr.trim().split("\n").pop() ?? "";
  if (run.status === 3) return { unavailable: said };
  throw new Error(`scripts/tools/install-checkov.sh failed (exit ${String(run.status)}):\n${run.stderr}`);
}

/**
 * The copy of a stack Checkov reads. Checkov 3.3's Terraform JSON parser takes every entry of the `terraform` block
 * for a nested block and raises on `required_version`, a string: the whole file then counts as a parsing error and
 * Checkov evaluates nothing in it (and exits 0). The copy leaves that one attribute out; it has no check.
 */
export function checkovInput(json: TerraformJson): TerraformJson {
  const { required_version: _requiredVersion, ...terraform } = (json.terraform ?? {}) as Record<string, unknown>;
  return { ...json, terraform };
}

export interface CheckovStack {
  readonly name: string;
  readonly json: TerraformJson;
  /** Write the JSON as synthesized instead of checkovInput(json) (to show what Checkov makes of it). */
  readonly verbatim?: boolean;
}

interface CheckovRecord {
  check_id: string;
  check_name: string;
  resource: string;
  file_path: string;
  guideline?: string | null;
}

interface CheckovReport {
  check_type?: string;
  summary?: { checkov_version?: string };
  results?: { passed_checks?: CheckovRecord[]; failed_checks?: CheckovRecord[]; skipped_checks?: CheckovRecord[]; parsing_errors?: string[] };
}

/** Runs Checkov once over all the given stacks (its start-up costs seconds) and returns a verdict per stack. */
export function runCheckov(checkov: string, stacks: readonly CheckovStack[]): CheckovVerdict[] {
  const dir = mkdtempSync(join(tmpdir(), "platform-checkov-"));
  try {
    for (const stack of stacks) {
      if (!/^[A-Za-z0-9_-]+$/.test(stack.name)) throw new Error(`checkov: stack name "${stack.name}" is not a plain directory name`);
      mkdirSync(join(dir, stack.name));
      writeFileSync(join(dir, stack.name, "main.tf.json"), JSON.stringify(stack.verbatim ? stack.json : checkovInput(stack.json), null, 2));
    }
    const args = ["-d", dir, "--framework", "terraform_json", "--output", "json", "--compact", "--skip-download", "--external-checks-dir", EXTERNAL_CHECKS];
    const run = spawnSync("nice", ["-n", "10", checkov, ...args], {
      encoding: "utf8",
      maxBuffer: 512 * 1024 * 1024,
      // No calls home: no guideline download from Prisma Cloud, no bytecode written beside the census check.
      env: { ...process.env, BC_SKIP_MAPPING: "TRUE", PYTHONDONTWRITEBYTECODE: "1", LOG_LEVEL: "WARNING" },
    });
    // Exit 1 is Checkov's "some check failed"; anything else, or no JSON, is Checkov not working.
    if (run.status !== 0 && run.status !== 1) {
      throw new Error(`checkov exited ${String(run.status ?? run.signal)}:\n${run.stderr.slice(-4000)}`);
    }
    let parsed: CheckovReport | CheckovReport[];
    try {
      parsed = JSON.parse(run.stdout) as CheckovReport | CheckovReport[];
    } catch {
      throw new Error(`checkov printed no JSON report:\n${run.stdout.slice(0, 2000)}\n${run.stderr.slice(-4000)}`);
    }
    const reports = (Array.isArray(parsed) ? parsed : [parsed]).filter((r) => r.results);
    const version = (Array.isArray(parsed) ? parsed[0] : parsed)?.summary?.checkov_version ?? "unknown";
    const all = (kind: "passed_checks" | "failed_checks" | "skipped_checks") => reports.flatMap((r) => r.results?.[kind] ?? []);
    const parsingErrors = reports.flatMap((r) => r.results?.parsing_errors ?? []);
    return stacks.map((stack) => verdictOf(stack, version, all("passed_checks"), [...all("failed_checks"), ...all("skipped_checks")], parsingErrors, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function verdictOf(
  stack: CheckovStack,
  checkovVersion: string,
  passedRecords: readonly CheckovRecord[],
  failedRecords: readonly CheckovRecord[],
  parsingErrors: readonly string[],
  dir: string,
): CheckovVerdict {
  const file = `/${stack.name}/main.tf.json`;
  const mine = (r: CheckovRecord) => r.file_path === file;
  const addressOf = addresser(stack.json);
  const stackResources = Object.entries(stack.json.resource ?? {}).flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`));

  const census = passedRecords.filter((r) => mine(r) && r.check_id === CENSUS_CHECK).map((r) => addressOf(r.resource));
  const evaluated = [...new Set(census)].sort();
  const reached = new Set(evaluated);

  const failed: CheckovFinding[] = [];
  const skipped: CheckovSkipped[] = [];
  const used = new Set<string>();
  for (const record of failedRecords.filter(mine)) {
    const finding: CheckovFinding = {
      checkId: record.check_id,
      checkName: record.check_name,
      address: addressOf(record.resource),
      ...(record.guideline ? { guideline: record.guideline } : {}),
    };
    const skip = skipsAt(stack.json, finding.address).find((s) => s.id === finding.checkId);
    if (skip) {
      skipped.push({ ...finding, reason: skip.reason });
      used.add(`${finding.address} ${finding.checkId}`);
    } else failed.push(finding);
  }
  const staleSkips = stackResources.flatMap((address) =>
    skipsAt(stack.json, address)
      .filter((s) => !used.has(`${address} ${s.id}`))
      .map((s) => ({ address, checkId: s.id, reason: s.reason })),
  );
  return {
    stack: stack.name,
    checkovVersion,
    resources: stackResources.length,
    evaluated,
    notEvaluated: stackResources.filter((a) => !reached.has(a)),
    passed: passedRecords.filter((r) => mine(r) && r.check_id !== CENSUS_CHECK).length,
    failed,
    skipped,
    staleSkips,
    parsingErrors: parsingErrors.filter((p) => p === join(dir, stack.name, "main.tf.json") || p.endsWith(file)),
  };
}

/**
 * Checkov names a resource `resource.<name>` in its Terraform JSON runner's own checks and `<type>.<name>` in its
 * graph checks. cdktf's logical names are unique within a stack, so the name finds the resource.
 */
function addresser(json: TerraformJson): (resource: string) => string {
  const byName = new Map<string, string[]>();
  for (const [kind, blocks] of [["", json.resource], ["data.", json.data]] as const) {
    for (const [type, names] of Object.entries(blocks ?? {})) {
      for (const name of Object.keys(names)) byName.set(name, [...(byName.get(name) ?? []), `${kind}${type}.${name}`]);
    }
  }
  return (resource) => {
    const dot = resource.lastIndexOf(".");
    const [prefix, name] = [resource.slice(0, dot), resource.slice(dot + 1)];
    const candidates = byName.get(name) ?? [];
    const match = prefix === "resource" ? candidates.filter((a) => !a.startsWith("data.")) : candidates.filter((a) => a === `${prefix}.${name}` || a === `data.${prefix}.${name}`);
    return match.length === 1 ? match[0]! : resource;
  };
}

function skipsAt(json: TerraformJson, address: string): ReturnType<typeof checkovSkipsOf> {
  const [type, name] = address.split(".");
  const conf = json.resource?.[type!]?.[name!];
  return conf ? checkovSkipsOf(conf) : [];
}

/** Everything wrong with a verdict, one line each naming the tool, the environment, the resource and the check. */
export function checkovProblems(v: CheckovVerdict): string[] {
  const tool = `checkov ${v.checkovVersion} [${v.stack}]`;
  return [
    ...v.parsingErrors.map((file) => `${tool} could not parse ${file}: it evaluated nothing in it`),
    ...(v.notEvaluated.length > 0
      ? [`${tool} evaluated ${v.evaluated.length} of the stack's ${v.resources} resources; not reached: ${v.notEvaluated.slice(0, 10).join(", ")}${v.notEvaluated.length > 10 ? ", ..." : ""}`]
      : []),
    ...v.failed.map((f) => `${tool} ${f.address}: ${f.checkId} failed, "${f.checkName}"${f.guideline ? ` (${f.guideline})` : ""}; fix the construct, or skip it on the resource with its reason (skipCheckov)`),
    ...v.staleSkips.map((s) => `${tool} ${s.address}: skips ${s.checkId}, which Checkov does not fail there; remove the skip`),
  ];
}

/** One line per stack: what Checkov evaluated and decided. */
export function checkovSummary(v: CheckovVerdict): string {
  return (
    `checkov ${v.checkovVersion} [${v.stack}]: ${v.evaluated.length} of ${v.resources} resources evaluated, ${v.passed} checks passed, ` +
    `${v.failed.length} failed, ${v.skipped.length} skipped on their resource`
  );
}
