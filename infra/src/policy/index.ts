import { PORTS } from "@platform/config";
import type { SynthesizedStack, TerraformJson } from "../app.js";

/**
 * The platform's own rules over synthesized Terraform JSON: what no scanner checks (CMEK with the stack's own keys,
 * the Binary Authorization policy's shape, references within the stack, Terraform template literals) or checks more
 * loosely than the platform needs. They run on every synthesis (src/main.ts) and in the tests, so a violation never
 * reaches `terraform apply`. Checkov's own Terraform checks run in the tests (src/policy/checkov.ts).
 */

export interface TerraformResource {
  readonly type: string;
  readonly name: string;
  /** Terraform address, e.g. google_container_cluster.Gke_A1B2C3D4: what `terraform state show` takes. */
  readonly address: string;
  readonly conf: Record<string, unknown>;
}

export interface PolicyContext {
  readonly stack: string;
  readonly json: TerraformJson;
}

export interface PolicyRule {
  readonly id: string;
  readonly title: string;
  readonly resourceTypes: readonly string[];
  /** Rules that apply only to some environments (e.g. Binary Authorization in production). */
  readonly appliesTo?: (ctx: PolicyContext) => boolean;
  /** Returns why the resource fails, or undefined when it passes. */
  readonly check?: (resource: TerraformResource, ctx: PolicyContext) => string | undefined;
  /** Stack-wide rules: returns violations as [address, reason] pairs. */
  readonly checkStack?: (ctx: PolicyContext) => [string, string][];
}

export interface Violation {
  readonly rule: string;
  readonly title: string;
  readonly stack: string;
  readonly address: string;
  readonly reason: string;
}

/** Terraform JSON writes a single nested block as an object or a one-element list; read both. */
export function block(value: unknown): Record<string, unknown> | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first !== null && typeof first === "object" ? (first as Record<string, unknown>) : undefined;
}

export function blocks(value: unknown): Record<string, unknown>[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is Record<string, unknown> => v !== null && typeof v === "object");
}

/** Follows a path of nested blocks: at(conf, "master_auth", "client_certificate_config", "issue_client_certificate"). */
export function at(conf: Record<string, unknown> | undefined, ...path: string[]): unknown {
  let current: unknown = conf;
  for (const key of path) {
    const b = block(current);
    if (!b) return undefined;
    current = b[key];
  }
  return current;
}

export function resourcesOf(json: TerraformJson, type: string): TerraformResource[] {
  return Object.entries(json.resource?.[type] ?? {}).map(([name, conf]) => ({ type, name, address: `${type}.${name}`, conf }));
}

const isTrue = (v: unknown): boolean => v === true || v === "true" || v === "TRUE" || v === "True";
const show = (v: unknown): string => (v === undefined ? "unset" : JSON.stringify(v));

const DEFAULT_COMPUTE_SA = /-compute@developer\.gserviceaccount\.com$/;
const OPEN_TO_WORLD = ["0.0.0.0/0", "::/0"];

/** True when a firewall allow block opens `port` (protocol all, no port list, a single port or a range). */
export function allowsPort(allow: Record<string, unknown>, port: number): boolean {
  const protocol = String(allow.protocol ?? "");
  if (protocol === "all") return true;
  if (protocol !== "tcp" && protocol !== "6") return false;
  const ports = (allow.ports as unknown[] | undefined) ?? [];
  if (ports.length === 0) return true;
  return ports.some((p) => {
    const [from, to] = String(p).split("-").map(Number);
    return to === undefined ? from === port : from! <= port && port <= to;
  });
}

function openIngress(resource: TerraformResource, port: number): string | undefined {
  const conf = resource.conf;
  if ((conf.direction ?? "INGRESS") !== "INGRESS") return undefined;
  const sources = (conf.source_ranges as string[] | undefined) ?? [];
  const world = sources.filter((s) => OPEN_TO_WORLD.includes(s));
  if (world.length === 0) return undefined;
  const opening = blocks(conf.allow).find((a) => allowsPort(a, port));
  return opening ? `allows port ${port} from ${world.join(", ")}` : undefined;
}

const GKE = ["google_container_cluster"];
const GKE_AND_POOLS = ["google_container_cluster", "google_container_node_pool"];

/** A reference to a key this stack creates: the platform's keys, never one typed in or another project's. */
const PLATFORM_KEY = /^\$\{google_kms_crypto_key\.[A-Za-z0-9_-]+\.id\}$/;

/**
 * Every resource type of the platform that takes a customer-managed key, and where it names it. Checkov's
 * encryption checks accept a raw customer-supplied key or any key name (CKV_GCP_37, CKV_GCP_38) or have no check for
 * the type (Memorystore, buckets, GKE Secrets); the platform encrypts each kind of data with its own KMS key.
 * Not listed: Secret Manager secrets, which use Google-managed keys (a CMEK there needs a key in the "global" location).
 */
const CMEK_ATTRIBUTES: Readonly<Record<string, readonly { readonly path: string; readonly key: (conf: Record<string, unknown>) => unknown; readonly when?: (conf: Record<string, unknown>) => boolean }[]>> = {
  google_compute_disk: [{ path: "disk_encryption_key.kms_key_self_link", key: (c) => at(c, "disk_encryption_key", "kms_key_self_link") }],
  google_compute_instance: [{ path: "boot_disk.kms_key_self_link", key: (c) => at(c, "boot_disk", "kms_key_self_link") }],
  google_container_cluster: [
    { path: "database_encryption.key_name (state ENCRYPTED)", key: (c) => (at(c, "database_encryption", "state") === "ENCRYPTED" ? at(c, "database_encryption", "key_name") : undefined) },
    // The default pool's nodes, while it exists during creation.
    { path: "node_config.boot_disk_kms_key", key: (c) => at(c, "node_config", "boot_disk_kms_key"), when: (c) => block(c.node_config) !== undefined },
  ],
  google_container_node_pool: [{ path: "node_config.boot_disk_kms_key", key: (c) => at(c, "node_config", "boot_disk_kms_key") }],
  google_redis_instance: [{ path: "customer_managed_key", key: (c) => c.customer_managed_key }],
  google_storage_bucket: [{ path: "encryption.default_kms_key_name", key: (c) => at(c, "encryption", "default_kms_key_name") }],
  // The postgres engine: Checkov has no check of a Cloud SQL instance's key.
  google_sql_database_instance: [{ path: "encryption_key_name", key: (c) => c.encryption_key_name }],
};

const CLOUD_SQL = ["google_sql_database_instance"];
/** ssl_mode values that refuse a connection without TLS. */
const CLOUD_SQL_TLS_ONLY = ["ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"];
/** A Cloud SQL instance's database flags, by name (Terraform JSON writes the list of {name, value} blocks). */
function databaseFlags(conf: Record<string, unknown>): Map<string, string> {
  return new Map(blocks(at(conf, "settings", "database_flags")).map((f) => [String(f.name), String(f.value)]));
}

/**
 * The platform's own invariants: what no scanner checks, or checks more loosely than the platform needs. Checkov's
 * Terraform checks run on every environment in the tests (infra/test/checkov.test.ts); a rule Checkov now checks is
 * not repeated here (infra/README.md, "Checks", maps each former rule to its Checkov check).
 */
export const POLICY_RULES: readonly PolicyRule[] = [
  {
    id: "PLATFORM_GKE_PRIVATE_NODES",
    title: "GKE nodes have no public IP (private nodes really enabled; Checkov's CKV_GCP_25 and CKV_GCP_64 only ask for private_cluster_config)",
    resourceTypes: GKE,
    check: ({ conf }) => {
      const enabled = at(conf, "private_cluster_config", "enable_private_nodes");
      return isTrue(enabled) ? undefined : `private_cluster_config.enable_private_nodes is ${show(enabled)}`;
    },
  },
  {
    id: "PLATFORM_GKE_NODE_SERVICE_ACCOUNT",
    title: "GKE nodes do not run as the Compute Engine default service account (Checkov's CKV2_GCP_1 reads only google_project_default_service_accounts)",
    resourceTypes: GKE_AND_POOLS,
    check: (r) => {
      const configs = blocks(r.conf.node_config);
      // A node pool without node_config runs on provider defaults; a cluster without one has no default pool.
      if (configs.length === 0) return r.type === "google_container_node_pool" ? "has no node_config (the default compute service account)" : undefined;
      for (const nc of configs) {
        const sa = nc.service_account;
        if (sa === undefined) return "node_config.service_account is unset (the default compute service account)";
        if (DEFAULT_COMPUTE_SA.test(String(sa))) return `node_config.service_account is the default ${String(sa)}`;
      }
      return undefined;
    },
  },
  {
    id: "PLATFORM_PROJECT_OS_LOGIN",
    title: "OS Login is enabled project-wide (Checkov's CKV_GCP_33 reads only google_compute_project_metadata, not the _item the stack writes)",
    resourceTypes: ["google_compute_project_metadata", "google_compute_project_metadata_item"],
    check: ({ type, conf }) => {
      if (type === "google_compute_project_metadata") {
        const v = block(conf.metadata)?.["enable-oslogin"];
        return v === "TRUE" ? undefined : `metadata.enable-oslogin is ${show(v)}`;
      }
      return conf.key === "enable-oslogin" && conf.value !== "TRUE" ? `enable-oslogin is ${show(conf.value)}` : undefined;
    },
    checkStack: ({ json }) => {
      const item = resourcesOf(json, "google_compute_project_metadata_item").some((r) => r.conf.key === "enable-oslogin" && r.conf.value === "TRUE");
      const whole = resourcesOf(json, "google_compute_project_metadata").some((r) => block(r.conf.metadata)?.["enable-oslogin"] === "TRUE");
      return item || whole ? [] : [["google_compute_project_metadata_item", "no project-level enable-oslogin = TRUE in the stack"]];
    },
  },
  {
    id: "PLATFORM_NO_PUBLIC_DATABASE_PORTS",
    title: "Firewall rules do not open PostgreSQL (5432) or Redis (6379, 6378) to the internet",
    resourceTypes: ["google_compute_firewall"],
    check: (r) => openIngress(r, PORTS.postgres) ?? openIngress(r, 6379) ?? openIngress(r, PORTS.memorystoreTls),
  },
  {
    id: "PLATFORM_FIREWALL_LOGGING",
    title: "Firewall rules log what they match",
    resourceTypes: ["google_compute_firewall"],
    check: ({ conf }) => (block(conf.log_config) ? undefined : "log_config is missing"),
  },
  {
    id: "PLATFORM_NO_SERVICE_ACCOUNT_KEYS",
    title: "No service account keys (workloads use Workload Identity and the metadata server)",
    resourceTypes: [],
    checkStack: ({ json }) => resourcesOf(json, "google_service_account_key").map((r) => [r.address, "a long-lived service account key"]),
  },
  {
    id: "PLATFORM_REFERENCES_IN_STACK",
    title: "Every reference names a resource or data source of the same stack (environments never read each other's state)",
    resourceTypes: [],
    checkStack: ({ json }) => danglingReferences(json),
  },
  {
    id: "PLATFORM_TEMPLATE_LITERALS",
    title: "Strings carry no accidental Terraform template syntax (shell ${VAR} or %{ written unescaped)",
    resourceTypes: [],
    checkStack: ({ json }) => templateSyntaxErrors(json),
  },
  {
    id: "PLATFORM_CMEK",
    title: "Every resource that takes a customer-managed key is encrypted with one of the stack's own KMS keys",
    resourceTypes: Object.keys(CMEK_ATTRIBUTES),
    check: ({ type, conf }) => {
      for (const { path, key, when } of CMEK_ATTRIBUTES[type] ?? []) {
        if (when && !when(conf)) continue;
        const value = key(conf);
        if (!value) return `${path} is unset`;
        if (!PLATFORM_KEY.test(String(value))) return `${path} is ${show(value)}, not a key of this stack (\${google_kms_crypto_key.<name>.id})`;
      }
      return undefined;
    },
  },
  {
    id: "PLATFORM_CLOUD_SQL_PRIVATE_TLS",
    title:
      "Cloud SQL is reached only on the VPC and only over TLS (Checkov's CKV_GCP_6 accepts only client certificates, which the platform's clients do not present, so it is skipped on the instance)",
    resourceTypes: CLOUD_SQL,
    check: ({ conf }) => {
      const network = at(conf, "settings", "ip_configuration", "private_network");
      if (!/^\$\{google_compute_network\.[A-Za-z0-9_-]+\.id\}$/.test(String(network))) return `settings.ip_configuration.private_network is ${show(network)}, not the stack's VPC`;
      const ssl = at(conf, "settings", "ip_configuration", "ssl_mode");
      return CLOUD_SQL_TLS_ONLY.includes(String(ssl)) ? undefined : `settings.ip_configuration.ssl_mode is ${show(ssl)}: connections without TLS are accepted`;
    },
  },
  {
    id: "PLATFORM_CLOUD_SQL_LOGS",
    title:
      "Cloud SQL logs lock waits, and no statement's parameters where it logs slow statements (Checkov 3.3.30's CKV_GCP_54 and CKV_GCP_57 raise on Terraform JSON and give no verdict)",
    resourceTypes: CLOUD_SQL,
    check: ({ conf }) => {
      const flags = databaseFlags(conf);
      if (flags.get("log_lock_waits") !== "on") return `database flag log_lock_waits is ${show(flags.get("log_lock_waits"))}`;
      const slow = flags.get("log_min_duration_statement");
      if (slow === undefined || slow === "-1") return undefined;
      // A slow statement's parameters are tenant data: its text is enough to find it.
      for (const name of ["log_parameter_max_length", "log_parameter_max_length_on_error"]) {
        if (flags.get(name) !== "0") return `log_min_duration_statement is ${slow} but ${name} is ${show(flags.get(name))}: statements' parameters (tenant data) reach the logs`;
      }
      return undefined;
    },
  },
  {
    id: "PLATFORM_CLOUD_SQL_PITR",
    title: "Cloud SQL keeps the write-ahead log for point-in-time recovery (Checkov's CKV_GCP_14 asks for backups only, and its point-in-time check is MySQL's)",
    resourceTypes: CLOUD_SQL,
    check: ({ conf }) => {
      const pitr = at(conf, "settings", "backup_configuration", "point_in_time_recovery_enabled");
      return isTrue(pitr) ? undefined : `settings.backup_configuration.point_in_time_recovery_enabled is ${show(pitr)}`;
    },
  },
  {
    id: "PLATFORM_BINAUTHZ_DENY_BY_DEFAULT",
    title: "A cluster that enforces Binary Authorization has a project policy that denies unlisted images and blocks",
    resourceTypes: [],
    checkStack: ({ json }) => {
      const enforcing = resourcesOf(json, "google_container_cluster").filter(
        (c) => at(c.conf, "binary_authorization", "evaluation_mode") === "PROJECT_SINGLETON_POLICY_ENFORCE",
      );
      if (enforcing.length === 0) return [];
      const policies = resourcesOf(json, "google_binary_authorization_policy");
      if (policies.length === 0) return enforcing.map((c) => [c.address, "enforces the project policy, but the stack defines none: the default admits every image"]);
      return policies.flatMap((p): [string, string][] => {
        const rule = block(p.conf.default_admission_rule) ?? {};
        const patterns = blocks(p.conf.admission_whitelist_patterns).map((w) => String(w.name_pattern));
        if (rule.evaluation_mode !== "ALWAYS_DENY" && rule.evaluation_mode !== "REQUIRE_ATTESTATION") {
          return [[p.address, `default_admission_rule.evaluation_mode is ${show(rule.evaluation_mode)}`]];
        }
        if (rule.enforcement_mode !== "ENFORCED_BLOCK_AND_AUDIT_LOG") return [[p.address, `default_admission_rule.enforcement_mode is ${show(rule.enforcement_mode)}`]];
        const broad = patterns.filter((n) => !/^[^/*]+\/[^*]+$|^[^/*]+\/[^*]*[^/*]\*$/.test(n));
        return broad.length > 0 ? [[p.address, `allowlist patterns admit whole registries or paths: ${broad.join(", ")}`]] : [];
      });
    },
  },
];

export function checkPolicies(stack: SynthesizedStack, rules: readonly PolicyRule[] = POLICY_RULES): Violation[] {
  const ctx: PolicyContext = { stack: stack.name, json: stack.json };
  const violations: Violation[] = [];
  for (const rule of rules) {
    if (rule.appliesTo && !rule.appliesTo(ctx)) continue;
    const add = (address: string, reason: string): void => {
      violations.push({ rule: rule.id, title: rule.title, stack: stack.name, address, reason });
    };
    if (rule.check) {
      for (const type of rule.resourceTypes) {
        for (const resource of resourcesOf(stack.json, type)) {
          const reason = rule.check(resource, ctx);
          if (reason) add(resource.address, reason);
        }
      }
    }
    for (const [address, reason] of rule.checkStack?.(ctx) ?? []) add(address, reason);
  }
  return violations;
}

export function formatViolations(violations: readonly Violation[]): string {
  const lines = violations.map((v) => `  ${v.rule} [${v.stack}] ${v.address}: ${v.reason} (${v.title})`);
  return `policy: ${violations.length} violation(s); fix the construct or the config, not the rule:\n${lines.join("\n")}`;
}

/** Interpolations, skipping `$${...}` (a literal `${`, as in the embedded shell scripts). */
const INTERPOLATION = /(?<!\$)\$\{([^}]*)\}/g;
/** A resource or data source reference inside an interpolation: google_x.name or data.google_x.name. */
const REFERENCE = /(?<![\w.])(data\.)?((?:google|google-beta|terraform)_[a-z0-9_]+)\.([A-Za-z0-9_-]+)/g;

const LOCAL_REFERENCE = /(?<![\w.])local\.([A-Za-z0-9_-]+)/g;
/** A reference as cdktf writes one: google_x.name.attr, data.google_x.name.attr, with [0] or ["key"] steps. */
const TRAVERSAL = /^(data\.)?[a-z][a-z0-9_-]*\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+|\[\d+\]|\["[^"]*"\])*$/;
/**
 * Function calls a construct writes on purpose, whole: uuid() is the postgres engine's users' throwaway write-only
 * password (src/constructs/cloud-sql-postgres.ts), which no template of a script would produce.
 */
const DELIBERATE_CALLS = new Set(["uuid()"]);

/** Calls `visit` with every string in the stack's resources, data sources and outputs, and where it is. */
function eachString(json: TerraformJson, visit: (address: string, text: string) => void): void {
  const scan = (address: string, value: unknown): void => {
    if (typeof value === "string") visit(address, value);
    else if (Array.isArray(value)) for (const item of value) scan(address, item);
    else if (value !== null && typeof value === "object") for (const item of Object.values(value)) scan(address, item);
  };
  for (const kind of ["resource", "data"] as const) {
    for (const [type, byName] of Object.entries(json[kind] ?? {})) {
      for (const [name, conf] of Object.entries(byName)) scan(`${kind === "data" ? "data." : ""}${type}.${name}`, conf);
    }
  }
  for (const [name, output] of Object.entries(json.output ?? {})) scan(`output.${name}`, output.value);
  for (const [name, value] of Object.entries(json.locals ?? {})) scan(`local.${name}`, value);
}

/**
 * Terraform parses every string as a template. A `${...}` that is not a reference, or any `%{`, is almost always a
 * generated file's own syntax (a shell script's ${VAR}) that terraformLiteral() should have escaped; Terraform
 * would reject the plan with "Invalid character", or worse, evaluate it.
 */
export function templateSyntaxErrors(json: TerraformJson): [string, string][] {
  const found: [string, string][] = [];
  eachString(json, (address, text) => {
    for (const [whole, expression] of text.matchAll(INTERPOLATION)) {
      if (!TRAVERSAL.test(expression!.trim()) && !DELIBERATE_CALLS.has(expression!.trim())) found.push([address, `"${whole.slice(0, 60)}" is not a reference: escape the text with terraformLiteral()`]);
    }
    if (/(?<!%)%\{/.test(text)) found.push([address, `holds an unescaped "%{" template directive: escape the text with terraformLiteral()`]);
  });
  return found;
}

/**
 * References to resources or data sources the stack does not declare, and any remote state. Such a reference is
 * what cdktf's cross-stack wiring would produce; PlatformStack skips that wiring (prepareStack), so it must not occur.
 */
export function danglingReferences(json: TerraformJson): [string, string][] {
  const found: [string, string][] = [];
  for (const name of Object.keys(json.data?.terraform_remote_state ?? {})) {
    found.push([`data.terraform_remote_state.${name}`, "reads another stack's state"]);
  }
  const declared = (kind: "resource" | "data", type: string, name: string) => Boolean(json[kind]?.[type]?.[name]);
  eachString(json, (address, text) => {
    for (const [, expression] of text.matchAll(INTERPOLATION)) {
      for (const [reference, data, type, name] of expression!.matchAll(REFERENCE)) {
        if (!declared(data ? "data" : "resource", type!, name!)) found.push([address, `refers to ${reference}, which this stack does not declare`]);
      }
      for (const [reference, name] of expression!.matchAll(LOCAL_REFERENCE)) {
        if (!(name! in (json.locals ?? {}))) found.push([address, `refers to ${reference}, which this stack does not declare`]);
      }
    }
  });
  return found;
}
