/**
 * Checkov, the scanner users run, over every environment's Terraform JSON: zero failed checks (each check that does
 * not apply is skipped on its resource, with its reason), and every resource of the stack evaluated, so a scan that
 * parsed nothing fails. Checkov is installed from PyPI by scripts/tools/install-checkov.sh; where it cannot be had
 * the tests skip with the reason, except in CI, where that fails.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { SynthesizedStack, TerraformJson } from "../src/app.js";
import { checkovProblems, checkovSummary, installCheckov, runCheckov, type CheckovStack, type CheckovVerdict } from "../src/policy/checkov.js";
import { resourcesOf } from "../src/policy/index.js";
import { synthesizedAlongsideStack, synthesizedPostgresStack, synthesizedStacks } from "./synthesized.js";

type Conf = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const CLUSTER = "google_container_cluster";
const POOL = "google_container_node_pool";
const VM = "google_compute_instance";
const FIREWALL = "google_compute_firewall";
const SUBNET = "google_compute_subnetwork";
const REDIS = "google_redis_instance";
const BUCKET = "google_storage_bucket";
const SQL = "google_sql_database_instance";
/** production on the postgres engine (Cloud SQL), synthesized once by test/global-setup.ts. */
const POSTGRES = "production-postgres";
/** And with the Citus cluster beside Cloud SQL (database.citusAlongside). */
const ALONGSIDE = "production-citus-alongside";
const DEFAULT_COMPUTE_SA = "123456789012-compute@developer.gserviceaccount.com";

/**
 * The rules the platform's own policy suite no longer carries, because Checkov checks them: for each, production's
 * resource broken in the way the rule guarded against, and the Checkov check that must then fail on it.
 */
const REPLACED: [check: string, type: string, breakIt: (c: Conf) => void][] = [
  ["CKV_GCP_1", CLUSTER, (c) => { c.logging_service = "none"; }],
  ["CKV_GCP_7", CLUSTER, (c) => { c.enable_legacy_abac = true; }],
  ["CKV_GCP_8", CLUSTER, (c) => { c.monitoring_service = "none"; }],
  ["CKV_GCP_9", POOL, (c) => { c.management.auto_repair = false; }],
  ["CKV_GCP_10", POOL, (c) => { c.management.auto_upgrade = false; }],
  ["CKV_GCP_12", CLUSTER, (c) => { c.datapath_provider = "LEGACY_DATAPATH"; }],
  ["CKV_GCP_13", CLUSTER, (c) => { c.master_auth.client_certificate_config.issue_client_certificate = true; }],
  ["CKV_GCP_18", CLUSTER, (c) => { c.master_authorized_networks_config.cidr_blocks = [{ cidr_block: "0.0.0.0/0", display_name: "all" }]; }],
  ["CKV_GCP_20", CLUSTER, (c) => { delete c.master_authorized_networks_config; }],
  // Checkov passes an empty label map; a cluster without resource_labels fails.
  ["CKV_GCP_21", CLUSTER, (c) => { delete c.resource_labels; }],
  ["CKV_GCP_23", CLUSTER, (c) => { delete c.ip_allocation_policy; }],
  ["CKV_GCP_25", CLUSTER, (c) => { delete c.private_cluster_config; }],
  ["CKV_GCP_61", CLUSTER, (c) => { c.enable_intranode_visibility = false; }],
  ["CKV_GCP_66", CLUSTER, (c) => { delete c.binary_authorization; }],
  ["CKV_GCP_68", POOL, (c) => { c.node_config.shielded_instance_config.enable_secure_boot = false; }],
  ["CKV_GCP_69", POOL, (c) => { c.node_config.workload_metadata_config.mode = "GCE_METADATA"; }],
  ["CKV_GCP_70", CLUSTER, (c) => { delete c.release_channel; }],
  ["CKV_GCP_71", CLUSTER, (c) => { c.enable_shielded_nodes = false; }],
  ["CKV_GCP_72", POOL, (c) => { c.node_config.shielded_instance_config.enable_integrity_monitoring = false; }],
  ["CKV_GCP_123", CLUSTER, (c) => { c.node_pool = [{ name: "inline", node_count: 1 }]; c.remove_default_node_pool = false; }],
  ["CKV_GCP_30", VM, (c) => { c.service_account.email = DEFAULT_COMPUTE_SA; }],
  ["CKV_GCP_31", VM, (c) => { c.service_account.email = DEFAULT_COMPUTE_SA; c.service_account.scopes = ["cloud-platform"]; }],
  ["CKV_GCP_32", VM, (c) => { c.metadata["block-project-ssh-keys"] = "false"; }],
  ["CKV_GCP_34", VM, (c) => { c.metadata["enable-oslogin"] = "FALSE"; }],
  ["CKV_GCP_35", VM, (c) => { c.metadata["serial-port-enable"] = "true"; }],
  ["CKV_GCP_36", VM, (c) => { c.can_ip_forward = true; }],
  ["CKV_GCP_38", VM, (c) => { delete c.boot_disk.kms_key_self_link; }],
  ["CKV_GCP_39", VM, (c) => { c.shielded_instance_config.enable_vtpm = false; }],
  ["CKV_GCP_40", VM, (c) => { c.network_interface[0].access_config = [{}]; }],
  ["CKV_GCP_2", FIREWALL, (c) => { c.source_ranges = ["0.0.0.0/0"]; c.allow = [{ protocol: "tcp", ports: ["22"] }]; }],
  ["CKV_GCP_3", FIREWALL, (c) => { c.source_ranges = ["0.0.0.0/0"]; c.allow = [{ protocol: "tcp", ports: ["3389"] }]; }],
  ["CKV_GCP_26", SUBNET, (c) => { delete c.log_config; }],
  ["CKV_GCP_74", SUBNET, (c) => { c.private_ip_google_access = false; }],
  ["CKV_GCP_95", REDIS, (c) => { c.auth_enabled = false; }],
  ["CKV_GCP_97", REDIS, (c) => { c.transit_encryption_mode = "DISABLED"; }],
  ["CKV_GCP_29", BUCKET, (c) => { c.uniform_bucket_level_access = false; }],
  ["CKV_GCP_78", BUCKET, (c) => { c.versioning.enabled = false; }],
  ["CKV_GCP_114", BUCKET, (c) => { c.public_access_prevention = "inherited"; }],
];

/** Checkov's Cloud SQL checks that hold the postgres engine's instance (src/constructs/cloud-sql-postgres.ts), each shown to bite. */
const flag = (name: string, value: string) => (c: Conf) => {
  c.settings.database_flags = c.settings.database_flags.map((f: Conf) => (f.name === name ? { name, value } : f));
};
const CLOUD_SQL: (typeof REPLACED)[number][] = [
  ["CKV_GCP_60", SQL, (c) => { c.settings.ip_configuration.ipv4_enabled = true; }],
  ["CKV_GCP_11", SQL, (c) => { c.settings.ip_configuration.ipv4_enabled = true; c.settings.ip_configuration.authorized_networks = [{ name: "all", value: "0.0.0.0/0" }]; }],
  ["CKV_GCP_14", SQL, (c) => { c.settings.backup_configuration.enabled = false; }],
  ["CKV_GCP_51", SQL, flag("log_checkpoints", "off")],
  ["CKV_GCP_52", SQL, flag("log_connections", "off")],
  ["CKV_GCP_53", SQL, flag("log_disconnections", "off")],
  ["CKV_GCP_56", SQL, flag("log_temp_files", "-1")],
  ["CKV_GCP_108", SQL, flag("log_hostname", "off")],
  ["CKV_GCP_109", SQL, flag("log_min_error_statement", "panic")],
  ["CKV_GCP_110", SQL, flag("cloudsql.enable_pgaudit", "off")],
  ["CKV_GCP_111", SQL, flag("log_statement", "none")],
];

/** A stack holding only production's first resource of `type`, broken: Checkov's per-resource checks need no more. */
function broken(production: TerraformJson, [check, type, breakIt]: (typeof REPLACED)[number]): CheckovStack & { address: string } {
  const resource = resourcesOf(production, type)[0];
  if (!resource) throw new Error(`production has no ${type}`);
  const conf = structuredClone(resource.conf) as Conf;
  const single = (value: unknown) => (Array.isArray(value) ? value[0] : value) as Conf;
  // Terraform JSON may write a nested block as a one-element list; the breaks address the block itself.
  for (const key of ["management", "node_config", "master_auth", "service_account", "boot_disk", "shielded_instance_config", "versioning", "metadata", "master_authorized_networks_config", "settings"]) {
    if (conf[key] !== undefined) conf[key] = single(conf[key]);
  }
  for (const key of ["ip_configuration", "backup_configuration"]) {
    if (conf.settings?.[key] !== undefined) conf.settings[key] = single(conf.settings[key]);
  }
  breakIt(conf);
  return { name: `broken-${check}`, json: { resource: { [type]: { [resource.name]: conf } } }, address: resource.address };
}

let stacks: SynthesizedStack[];
let checkov: { readonly path: string } | { readonly unavailable: string };
let verdicts: CheckovVerdict[] = [];
let brokenStacks: ReturnType<typeof broken>[] = [];

beforeAll(() => {
  stacks = synthesizedStacks();
  checkov = installCheckov();
  if (!("path" in checkov)) {
    if (process.env.CI) throw new Error(`Checkov is required in CI and cannot be had: ${checkov.unavailable}`);
    console.warn(`skipping the Checkov scans: ${checkov.unavailable}`);
    return;
  }
  const production = stacks.find((s) => s.name === "production")!.json;
  const postgres = synthesizedPostgresStack().json;
  brokenStacks = [...REPLACED.map((r) => broken(production, r)), ...CLOUD_SQL.map((r) => broken(postgres, r))];
  // One run for everything: Checkov's start-up takes seconds. "verbatim" is dev exactly as synthesized.
  verdicts = runCheckov(checkov.path, [
    ...stacks,
    { name: POSTGRES, json: postgres },
    { name: ALONGSIDE, json: synthesizedAlongsideStack().json },
    { name: "verbatim", json: stacks.find((s) => s.name === "dev")!.json, verbatim: true },
    ...brokenStacks,
  ]);
  for (const v of verdicts.filter((v) => stacks.some((s) => s.name === v.stack) || v.stack === POSTGRES || v.stack === ALONGSIDE)) {
    console.log(checkovSummary(v));
    for (const s of v.skipped) console.log(`  skipped ${s.checkId} on ${s.address}: ${s.reason}`);
  }
}, 20 * 60_000);

const verdict = (name: string): CheckovVerdict => verdicts.find((v) => v.stack === name)!;
const needCheckov = (ctx: { skip: (note: string) => void }) => {
  if (!("path" in checkov)) ctx.skip(`Checkov unavailable: ${checkov.unavailable}`);
};

describe.each(["dev", "staging", "production", POSTGRES, ALONGSIDE])("Checkov on %s", (env) => {
  it("parsed the stack and evaluated every one of its resources", (ctx) => {
    needCheckov(ctx);
    const v = verdict(env);
    expect(v.parsingErrors, checkovProblems(v).join("\n")).toEqual([]);
    expect(v.resources).toBeGreaterThan(100);
    expect(v.notEvaluated, checkovProblems(v).join("\n")).toEqual([]);
    expect(v.evaluated.length).toBe(v.resources);
  });

  it("fails no check: each one that does not apply is skipped on its resource, with its reason", (ctx) => {
    needCheckov(ctx);
    const v = verdict(env);
    expect(v.failed.length + v.skipped.length + v.passed).toBeGreaterThan(150);
    expect(checkovProblems(v)).toEqual([]);
    for (const s of v.skipped) expect(s.reason.length, `${s.address} ${s.checkId}`).toBeGreaterThan(40);
  });
});

describe("a scan that proves nothing fails", () => {
  it("dev as synthesized: Checkov 3.3 cannot parse it, evaluates nothing, and the verdict says so", (ctx) => {
    needCheckov(ctx);
    const v = verdict("verbatim");
    expect(v.evaluated).toEqual([]);
    const problems = checkovProblems(v);
    expect(problems.some((p) => p.includes("could not parse"))).toBe(true);
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`\\[verbatim\\] evaluated 0 of the stack's ${v.resources} resources`)));
  });

  it.for(CLOUD_SQL.map(([check, type]) => [check, type] as const))("%s fails on the postgres engine's %s broken the way it guards against", ([check], ctx) => {
    needCheckov(ctx);
    const { name, address } = brokenStacks.find((b) => b.name === `broken-${check}`)!;
    const v = verdict(name);
    expect(v.failed.map((f) => `${f.checkId} ${f.address}`), checkovProblems(v).join("\n")).toContain(`${check} ${address}`);
  });

  it.for(REPLACED.map(([check, type]) => [check, type] as const))("%s fails on production's %s broken the way the removed rule guarded against", ([check], ctx) => {
    needCheckov(ctx);
    const { name, address } = brokenStacks.find((b) => b.name === `broken-${check}`)!;
    const v = verdict(name);
    const failures = [...v.failed, ...v.skipped].filter((f) => f.checkId === check).map((f) => f.address);
    expect(failures, checkovProblems(v).join("\n")).toContain(address);
    expect(checkovProblems(v).join("\n")).toMatch(new RegExp(`^checkov \\S+ \\[${name}\\] ${address.replace(/\./g, "\\.")}: ${check} failed`, "m"));
  });
});
