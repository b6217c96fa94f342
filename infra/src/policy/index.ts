import type { SynthesizedStack, TerraformJson } from "../app.js";

/**
 * A policy suite over synthesized Terraform JSON, modelled on Checkov's Google checks (same ids and intent) plus the
 * platform's own invariants. It runs on every synthesis (src/main.ts) and in the tests, so a violation never reaches
 * `terraform apply`. Where Checkov passes on a provider default, these rules mostly ask for the explicit setting:
 * defaults change between provider versions, a written value does not.
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
const isFalse = (v: unknown): boolean => v === false || v === "false" || v === "FALSE" || v === "False";
const show = (v: unknown): string => (v === undefined ? "unset" : JSON.stringify(v));

const DEFAULT_COMPUTE_SA = /-compute@developer\.gserviceaccount\.com$/;
const CLOUD_PLATFORM_SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "cloud-platform"];
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

/** node_config blocks of a cluster (the default pool) and of a node pool. */
function nodeConfigs(resource: TerraformResource): Record<string, unknown>[] {
  return blocks(resource.conf.node_config);
}

const GKE = ["google_container_cluster"];
const POOLS = ["google_container_node_pool"];
const GKE_AND_POOLS = [...GKE, ...POOLS];
const VMS = ["google_compute_instance", "google_compute_instance_template"];

function requireNodeConfig(resource: TerraformResource, test: (nc: Record<string, unknown>) => string | undefined): string | undefined {
  const configs = nodeConfigs(resource);
  if (configs.length === 0) {
    // A node pool without node_config runs on provider defaults; a cluster without one has no default pool to check.
    return resource.type === "google_container_node_pool" ? "has no node_config" : undefined;
  }
  for (const nc of configs) {
    const reason = test(nc);
    if (reason) return reason;
  }
  return undefined;
}

export const POLICY_RULES: readonly PolicyRule[] = [
  {
    id: "CKV_GCP_1",
    title: "GKE clusters have Stackdriver logging enabled",
    resourceTypes: GKE,
    check: ({ conf }) => {
      if (conf.logging_service === "none") return 'logging_service is "none"';
      const components = at(conf, "logging_config", "enable_components") as unknown[] | undefined;
      if (components !== undefined && components.length === 0) return "logging_config.enable_components is empty";
      return undefined;
    },
  },
  {
    id: "CKV_GCP_7",
    title: "GKE clusters have legacy authorization (ABAC) disabled",
    resourceTypes: GKE,
    check: ({ conf }) => (isTrue(conf.enable_legacy_abac) ? "enable_legacy_abac is true" : undefined),
  },
  {
    id: "CKV_GCP_8",
    title: "GKE clusters have Stackdriver monitoring enabled",
    resourceTypes: GKE,
    check: ({ conf }) => (conf.monitoring_service === "none" ? 'monitoring_service is "none"' : undefined),
  },
  {
    id: "CKV_GCP_9",
    title: "GKE node pools have auto-repair enabled",
    resourceTypes: POOLS,
    check: ({ conf }) => (isTrue(at(conf, "management", "auto_repair")) ? undefined : `management.auto_repair is ${show(at(conf, "management", "auto_repair"))}`),
  },
  {
    id: "CKV_GCP_10",
    title: "GKE node pools have auto-upgrade enabled",
    resourceTypes: POOLS,
    check: ({ conf }) => (isTrue(at(conf, "management", "auto_upgrade")) ? undefined : `management.auto_upgrade is ${show(at(conf, "management", "auto_upgrade"))}`),
  },
  {
    id: "CKV_GCP_12",
    title: "GKE clusters enforce network policy (Dataplane V2 or the network policy add-on)",
    resourceTypes: GKE,
    check: ({ conf }) => {
      if (isTrue(at(conf, "network_policy", "enabled"))) return undefined;
      if (conf.datapath_provider === "ADVANCED_DATAPATH" && block(conf.network_policy)) return undefined;
      return `network_policy.enabled is ${show(at(conf, "network_policy", "enabled"))} and datapath_provider is ${show(conf.datapath_provider)}`;
    },
  },
  {
    id: "CKV_GCP_13",
    title: "GKE clusters do not issue client certificates",
    resourceTypes: GKE,
    check: ({ conf }) => {
      const issue = at(conf, "master_auth", "client_certificate_config", "issue_client_certificate");
      return isFalse(issue) ? undefined : `master_auth.client_certificate_config.issue_client_certificate is ${show(issue)}`;
    },
  },
  {
    id: "CKV_GCP_18",
    title: "GKE control plane is not open to the internet",
    resourceTypes: GKE,
    check: ({ conf }) => {
      const open = blocks(at(conf, "master_authorized_networks_config", "cidr_blocks")).find((c) => OPEN_TO_WORLD.includes(String(c.cidr_block)));
      return open ? `master_authorized_networks_config authorizes ${String(open.cidr_block)}` : undefined;
    },
  },
  {
    id: "CKV_GCP_20",
    title: "GKE clusters have master authorized networks enabled",
    resourceTypes: GKE,
    check: ({ conf }) => (block(conf.master_authorized_networks_config) ? undefined : "master_authorized_networks_config is missing"),
  },
  {
    id: "CKV_GCP_21",
    title: "GKE clusters have labels",
    resourceTypes: GKE,
    check: ({ conf }) => (Object.keys(block(conf.resource_labels) ?? {}).length > 0 ? undefined : "resource_labels is empty"),
  },
  {
    id: "CKV_GCP_23",
    title: "GKE clusters are VPC-native (alias IP ranges)",
    resourceTypes: GKE,
    check: ({ conf }) => (block(conf.ip_allocation_policy) ? undefined : "ip_allocation_policy is missing"),
  },
  {
    id: "CKV_GCP_25",
    title: "GKE clusters are private clusters",
    resourceTypes: GKE,
    check: ({ conf }) => (block(conf.private_cluster_config) ? undefined : "private_cluster_config is missing"),
  },
  {
    id: "PLATFORM_GKE_PRIVATE_NODES",
    title: "GKE nodes have no public IP (private nodes really enabled)",
    resourceTypes: GKE,
    check: ({ conf }) => {
      const enabled = at(conf, "private_cluster_config", "enable_private_nodes");
      return isTrue(enabled) ? undefined : `private_cluster_config.enable_private_nodes is ${show(enabled)}`;
    },
  },
  {
    id: "CKV_GCP_61",
    title: "GKE clusters have intranode visibility (VPC flow logs for pod traffic)",
    resourceTypes: GKE,
    check: ({ conf }) => (isTrue(conf.enable_intranode_visibility) ? undefined : `enable_intranode_visibility is ${show(conf.enable_intranode_visibility)}`),
  },
  {
    id: "CKV_GCP_66",
    title: "GKE clusters enforce Binary Authorization (production)",
    resourceTypes: GKE,
    appliesTo: (ctx) => ctx.stack === "production",
    check: ({ conf }) => {
      const mode = at(conf, "binary_authorization", "evaluation_mode");
      return mode === "PROJECT_SINGLETON_POLICY_ENFORCE" ? undefined : `binary_authorization.evaluation_mode is ${show(mode)}`;
    },
  },
  {
    id: "CKV_GCP_68",
    title: "GKE nodes have Secure Boot enabled",
    resourceTypes: GKE_AND_POOLS,
    check: (r) =>
      requireNodeConfig(r, (nc) => {
        const v = at(nc, "shielded_instance_config", "enable_secure_boot");
        return isTrue(v) ? undefined : `node_config.shielded_instance_config.enable_secure_boot is ${show(v)}`;
      }),
  },
  {
    id: "CKV_GCP_69",
    title: "GKE nodes use the GKE metadata server (Workload Identity)",
    resourceTypes: GKE_AND_POOLS,
    check: (r) =>
      requireNodeConfig(r, (nc) => {
        const mode = at(nc, "workload_metadata_config", "mode");
        return mode === "GKE_METADATA" ? undefined : `node_config.workload_metadata_config.mode is ${show(mode)}`;
      }),
  },
  {
    id: "CKV_GCP_70",
    title: "GKE clusters are on a release channel",
    resourceTypes: GKE,
    check: ({ conf }) => (at(conf, "release_channel", "channel") ? undefined : "release_channel.channel is unset"),
  },
  {
    id: "CKV_GCP_71",
    title: "GKE clusters have shielded nodes",
    resourceTypes: GKE,
    check: ({ conf }) => (isTrue(conf.enable_shielded_nodes) ? undefined : `enable_shielded_nodes is ${show(conf.enable_shielded_nodes)}`),
  },
  {
    id: "CKV_GCP_72",
    title: "GKE nodes have integrity monitoring",
    resourceTypes: GKE_AND_POOLS,
    check: (r) =>
      requireNodeConfig(r, (nc) => {
        const v = at(nc, "shielded_instance_config", "enable_integrity_monitoring");
        return isTrue(v) ? undefined : `node_config.shielded_instance_config.enable_integrity_monitoring is ${show(v)}`;
      }),
  },
  {
    id: "CKV_GCP_123",
    title: "GKE clusters do not use inline or default node pools",
    resourceTypes: GKE,
    check: ({ conf }) => {
      if (blocks(conf.node_pool).length > 0) return "declares node_pool inline; use google_container_node_pool";
      return isTrue(conf.remove_default_node_pool) ? undefined : `remove_default_node_pool is ${show(conf.remove_default_node_pool)}`;
    },
  },
  {
    id: "CKV2_GCP_1",
    title: "GKE nodes do not run as the Compute Engine default service account",
    resourceTypes: GKE_AND_POOLS,
    check: (r) =>
      requireNodeConfig(r, (nc) => {
        const sa = nc.service_account;
        if (sa === undefined) return "node_config.service_account is unset (the default compute service account)";
        return DEFAULT_COMPUTE_SA.test(String(sa)) ? `node_config.service_account is the default ${String(sa)}` : undefined;
      }),
  },
  {
    id: "PLATFORM_GKE_SECRETS_ENCRYPTION",
    title: "GKE encrypts Kubernetes Secrets with Cloud KMS (database_encryption)",
    resourceTypes: GKE,
    check: ({ conf }) => {
      const state = at(conf, "database_encryption", "state");
      const key = at(conf, "database_encryption", "key_name");
      return state === "ENCRYPTED" && key ? undefined : `database_encryption is ${show(block(conf.database_encryption))}`;
    },
  },
  {
    id: "CKV_GCP_30",
    title: "VMs do not use the Compute Engine default service account",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const email = at(conf, "service_account", "email");
      if (email === undefined) return "service_account.email is unset (the default compute service account)";
      return DEFAULT_COMPUTE_SA.test(String(email)) ? `service_account.email is the default ${String(email)}` : undefined;
    },
  },
  {
    id: "CKV_GCP_31",
    title: "VMs do not use the default service account with full API access",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const sa = block(conf.service_account);
      if (!sa) return undefined;
      const scopes = (sa.scopes as string[] | undefined) ?? [];
      const fullAccess = scopes.some((s) => CLOUD_PLATFORM_SCOPES.includes(s));
      const isDefault = sa.email === undefined || DEFAULT_COMPUTE_SA.test(String(sa.email));
      return fullAccess && isDefault ? "the default service account with the cloud-platform scope" : undefined;
    },
  },
  {
    id: "CKV_GCP_32",
    title: "VMs block project-wide SSH keys",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const v = block(conf.metadata)?.["block-project-ssh-keys"];
      return isTrue(v) ? undefined : `metadata.block-project-ssh-keys is ${show(v)}`;
    },
  },
  {
    id: "CKV_GCP_33",
    title: "OS Login is enabled project-wide",
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
    id: "CKV_GCP_34",
    title: "VMs enforce OS Login",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const v = block(conf.metadata)?.["enable-oslogin"];
      return v === "TRUE" ? undefined : `metadata.enable-oslogin is ${show(v)}`;
    },
  },
  {
    id: "CKV_GCP_35",
    title: "VMs have the serial port disabled",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const v = block(conf.metadata)?.["serial-port-enable"];
      return isTrue(v) ? `metadata.serial-port-enable is ${show(v)}` : undefined;
    },
  },
  {
    id: "CKV_GCP_36",
    title: "VMs do not forward IP packets",
    resourceTypes: VMS,
    check: ({ conf }) => (isTrue(conf.can_ip_forward) ? "can_ip_forward is true" : undefined),
  },
  {
    id: "CKV_GCP_38",
    title: "VM boot disks are encrypted with a customer-managed key",
    resourceTypes: ["google_compute_instance"],
    check: ({ conf }) => (at(conf, "boot_disk", "kms_key_self_link") ? undefined : "boot_disk.kms_key_self_link is unset"),
  },
  {
    id: "CKV_GCP_39",
    title: "VMs are shielded (vTPM and integrity monitoring)",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const shielded = block(conf.shielded_instance_config);
      if (!shielded) return "shielded_instance_config is missing";
      for (const key of ["enable_secure_boot", "enable_vtpm", "enable_integrity_monitoring"]) {
        if (!isTrue(shielded[key])) return `shielded_instance_config.${key} is ${show(shielded[key])}`;
      }
      return undefined;
    },
  },
  {
    id: "CKV_GCP_40",
    title: "VMs have no public IP",
    resourceTypes: VMS,
    check: ({ conf }) => {
      const i = blocks(conf.network_interface).findIndex((ni) => blocks(ni.access_config).length > 0 || blocks(ni.ipv6_access_config).length > 0);
      return i >= 0 ? `network_interface[${i}] has an access_config (external IP)` : undefined;
    },
  },
  {
    id: "CKV_GCP_2",
    title: "Firewall rules do not allow SSH (22) from the internet",
    resourceTypes: ["google_compute_firewall"],
    check: (r) => openIngress(r, 22),
  },
  {
    id: "CKV_GCP_3",
    title: "Firewall rules do not allow RDP (3389) from the internet",
    resourceTypes: ["google_compute_firewall"],
    check: (r) => openIngress(r, 3389),
  },
  {
    id: "PLATFORM_NO_PUBLIC_DATABASE_PORTS",
    title: "Firewall rules do not open PostgreSQL (5432) or Redis (6379, 6378) to the internet",
    resourceTypes: ["google_compute_firewall"],
    check: (r) => openIngress(r, 5432) ?? openIngress(r, 6379) ?? openIngress(r, 6378),
  },
  {
    id: "PLATFORM_FIREWALL_LOGGING",
    title: "Firewall rules log what they match",
    resourceTypes: ["google_compute_firewall"],
    check: ({ conf }) => (block(conf.log_config) ? undefined : "log_config is missing"),
  },
  {
    id: "CKV_GCP_26",
    title: "Subnets have VPC flow logs",
    resourceTypes: ["google_compute_subnetwork"],
    check: ({ conf }) => (block(conf.log_config) ? undefined : "log_config is missing"),
  },
  {
    id: "CKV_GCP_74",
    title: "Subnets have Private Google Access",
    resourceTypes: ["google_compute_subnetwork"],
    check: ({ conf }) => (isTrue(conf.private_ip_google_access) ? undefined : `private_ip_google_access is ${show(conf.private_ip_google_access)}`),
  },
  {
    id: "CKV_GCP_95",
    title: "Memorystore for Redis requires AUTH",
    resourceTypes: ["google_redis_instance"],
    check: ({ conf }) => (isTrue(conf.auth_enabled) ? undefined : `auth_enabled is ${show(conf.auth_enabled)}`),
  },
  {
    id: "CKV_GCP_97",
    title: "Memorystore for Redis encrypts in transit",
    resourceTypes: ["google_redis_instance"],
    check: ({ conf }) =>
      conf.transit_encryption_mode === "SERVER_AUTHENTICATION" ? undefined : `transit_encryption_mode is ${show(conf.transit_encryption_mode)}`,
  },
  {
    id: "CKV_GCP_29",
    title: "Buckets use uniform bucket-level access",
    resourceTypes: ["google_storage_bucket"],
    check: ({ conf }) => (isTrue(conf.uniform_bucket_level_access) ? undefined : `uniform_bucket_level_access is ${show(conf.uniform_bucket_level_access)}`),
  },
  {
    id: "CKV_GCP_78",
    title: "Buckets have versioning enabled",
    resourceTypes: ["google_storage_bucket"],
    check: ({ conf }) => (isTrue(at(conf, "versioning", "enabled")) ? undefined : `versioning.enabled is ${show(at(conf, "versioning", "enabled"))}`),
  },
  {
    id: "CKV_GCP_114",
    title: "Buckets enforce public access prevention",
    resourceTypes: ["google_storage_bucket"],
    check: ({ conf }) => (conf.public_access_prevention === "enforced" ? undefined : `public_access_prevention is ${show(conf.public_access_prevention)}`),
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
    id: "PLATFORM_CMEK_DISKS",
    title: "Persistent disks are encrypted with a customer-managed key",
    resourceTypes: ["google_compute_disk"],
    check: ({ conf }) => (at(conf, "disk_encryption_key", "kms_key_self_link") ? undefined : "disk_encryption_key.kms_key_self_link is unset"),
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
  {
    id: "PLATFORM_CMEK_REDIS",
    title: "Memorystore for Redis encrypts data at rest (RDB snapshots included) with a customer-managed key",
    resourceTypes: ["google_redis_instance"],
    check: ({ conf }) => (conf.customer_managed_key ? undefined : "customer_managed_key is unset"),
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
      if (!TRAVERSAL.test(expression!.trim())) found.push([address, `"${whole.slice(0, 60)}" is not a reference: escape the text with terraformLiteral()`]);
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
