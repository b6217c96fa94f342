/**
 * A monthly cost estimate read from a synthesized stack (cdk.tf.json) and the checked-in price table. Every resource
 * type in the stack must be either priced here or listed as free or usage-based: a type this module has never seen
 * is an error, so a new resource cannot slip into production without a line in the estimate.
 */
import { z } from "zod";

const rate = z.number().nonnegative();
const redisTiers = z.array(z.object({ upToGb: z.number().positive(), rate })).min(1);
export const priceTableSchema = z.object({
  asOf: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "asOf must be a date, YYYY-MM-DD"),
  currency: z.literal("USD"),
  hoursPerMonth: z.number().positive(),
  sources: z.record(z.string(), z.string().url()),
  global: z.object({
    gkeClusterPerHour: rate,
    kmsKeyVersionPerMonth: rate,
    secretVersionPerMonth: rate,
    dnsManagedZonePerMonth: rate,
    natPerVmHour: rate,
    natMaxPerHour: rate,
    /** One forwarding rule (the coordinator's internal load balancer); data processed is usage. */
    forwardingRulePerHour: rate,
    /** Cloud Trace: spans ingested beyond the monthly free allotment. */
    cloudTracePerMillionSpans: rate,
    cloudTraceFreeSpansPerMonth: rate,
    /** Certificate Authority Service: a CA's monthly fee by its pool's tier (the postgres engine's server CA). */
    certificateAuthorityPerMonth: z.record(z.string(), rate),
  }),
  regions: z.record(
    z.string(),
    z.object({
      machineFamilies: z.record(z.string(), z.object({ vcpuPerHour: rate, memoryGbPerHour: rate })),
      diskGbPerMonth: z.record(z.string(), rate),
      redisGbPerHour: z.object({ BASIC: redisTiers, STANDARD_HA: redisTiers }),
      /** Cloud SQL for PostgreSQL, Enterprise edition, zonal rates; a regional (HA) instance pays each twice. */
      cloudSql: z.object({ vcpuPerHour: rate, memoryGbPerHour: rate, ssdGbPerMonth: rate }),
      notes: z.array(z.string()),
    }),
  ),
});
export type PriceTable = z.infer<typeof priceTableSchema>;
type RegionPrices = PriceTable["regions"][string];

/** A synthesized stack: only the parts read here. */
export interface TerraformJson {
  readonly provider?: { readonly google?: readonly { readonly region?: string }[] };
  readonly resource?: Record<string, Record<string, Record<string, unknown>>>;
}

/** The region the stack's Google provider deploys to: the prices depend on it. */
export function stackRegion(stack: TerraformJson): string {
  const region = stack.provider?.google?.[0]?.region;
  if (!region) throw new CostError("the stack has no google provider with a region: is this a synthesized stack of this app (cdk.tf.json)?");
  return region;
}

export interface Range {
  readonly min: number;
  readonly max: number;
}
export interface LineItem {
  readonly address: string;
  /** What the resource is for: Citus, GKE, Redis, network, keys and secrets. */
  readonly component: string;
  readonly what: string;
  readonly monthly: Range;
}
export interface Estimate {
  readonly region: string;
  readonly asOf: string;
  readonly currency: string;
  readonly lines: readonly LineItem[];
  readonly total: Range;
  /** Charged by use (storage written, bytes sent), so not in the total. */
  readonly usageBased: readonly string[];
  readonly notes: readonly string[];
  /** Whether the stack enables the Cloud Trace API (monitoring.traceBackend cloudTrace): its spans are usage, see cloudTraceEstimate. */
  readonly cloudTrace: boolean;
}

/** What a month of traces costs depends on traffic, which no stack holds: the figures it is computed from, each stated. */
export interface TraceAssumptions {
  /** Average requests a second reaching the gateway over the month (assumed: Cloud Trace bills the month's total). */
  readonly requestsPerSecond: number;
  /** The share of requests traced: the config's monitoring.traceSamplingRate, decided at Kong. */
  readonly samplingRate: number;
  /** Spans in one sampled request's trace: Kong, the service, its database statements, Redis (assumed). */
  readonly spansPerTrace: number;
}

/** Spans in one traced request, as docs/OBSERVABILITY.md counts them: the default of `pnpm cost --spans-per-trace`. */
export const DEFAULT_SPANS_PER_TRACE = 15;

/** A month of Cloud Trace ingestion under stated assumptions: spans, and their price after the free allotment. */
export function cloudTraceEstimate(table: PriceTable, a: TraceAssumptions): { spansPerMonth: number; monthly: number } {
  for (const [name, value] of Object.entries(a)) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new CostError(`${name} must be a non-negative number (got ${value})`);
  }
  if (a.samplingRate > 1) throw new CostError(`samplingRate is a share of requests, at most 1 (got ${a.samplingRate})`);
  const spansPerMonth = a.requestsPerSecond * a.samplingRate * a.spansPerTrace * table.hoursPerMonth * 3600;
  const billed = Math.max(0, spansPerMonth - table.global.cloudTraceFreeSpansPerMonth);
  return { spansPerMonth, monthly: (billed / 1e6) * table.global.cloudTracePerMillionSpans };
}

/** Bad input to the estimate: the CLI prints the message and exits 2. */
export class CostError extends Error {
  readonly exitCode = 2;
}

/** Types with no charge of their own (their cost, if any, is in a priced resource or is usage). */
const FREE = new Set([
  "google_binary_authorization_policy",
  "google_compute_network",
  "google_compute_subnetwork",
  "google_compute_firewall",
  "google_compute_router",
  "google_compute_global_address",
  "google_compute_project_metadata_item",
  "google_compute_disk_resource_policy_attachment",
  "google_compute_instance_group",
  "google_compute_region_backend_service",
  "google_compute_region_health_check",
  "google_dns_record_set",
  "google_kms_key_ring",
  "google_kms_crypto_key_iam_member",
  "google_privateca_ca_pool",
  "google_privateca_ca_pool_iam_member",
  "google_sql_database",
  "google_sql_user",
  "google_project_iam_member",
  "google_project_service",
  "google_service_account",
  "google_service_account_iam_member",
  "google_service_networking_connection",
  "google_secret_manager_secret_iam_member",
  "google_secret_manager_secret_version",
  "google_storage_bucket_iam_member",
  "terraform_data",
]);

/** Types whose whole cost depends on use; named in the output so nobody mistakes the total for the bill. */
const USAGE_BASED: Record<string, string> = {
  google_storage_bucket: "backup storage (GB stored, by storage class) and operations",
  google_compute_resource_policy: "disk snapshots (GB stored after the first full snapshot)",
  google_sql_database_instance: "Cloud SQL backups and point-in-time recovery's write-ahead log beyond the instance's disk size, per GB, and storage the disk grows into (autoresize)",
};
const ALWAYS_USAGE_BASED = [
  "Cloud NAT data processing (per GB) and internet egress",
  "the coordinator load balancer's data processing (per GB)",
  "VPC flow logs, Cloud Logging and Cloud Monitoring ingestion beyond the free allotments",
  "the Kong LoadBalancer (created by Kubernetes, not Terraform: a forwarding rule per hour plus data)",
  "Prometheus, Grafana and Jaeger volumes (PersistentVolumeClaims created by Kubernetes, see k8s/dist)",
];

const MEMORY_PER_VCPU: Record<string, number> = { standard: 4, highmem: 8, highcpu: 1 };
/** Shared-core E2 types bill a fraction of a vCPU. */
const SHARED_CORE: Record<string, { vcpus: number; memoryGb: number }> = {
  "e2-micro": { vcpus: 0.25, memoryGb: 1 },
  "e2-small": { vcpus: 0.5, memoryGb: 2 },
  "e2-medium": { vcpus: 1, memoryGb: 4 },
};

function machineHourly(prices: RegionPrices, machineType: string, address: string): number {
  const shared = SHARED_CORE[machineType];
  const match = /^([a-z0-9]+)-(standard|highmem|highcpu)-(\d+)$/.exec(machineType);
  const family = shared ? "e2" : match?.[1];
  const familyPrices = family ? prices.machineFamilies[family] : undefined;
  if (!familyPrices || (!shared && !match)) {
    throw new CostError(`${address}: no price for machine type "${machineType}"; add its family to infra/pricing/gcp-list-prices.json or pick one of ${Object.keys(prices.machineFamilies).join(", ")}`);
  }
  const vcpus = shared ? shared.vcpus : Number(match![3]);
  const memoryGb = shared ? shared.memoryGb : vcpus * MEMORY_PER_VCPU[match![2]!]!;
  return vcpus * familyPrices.vcpuPerHour + memoryGb * familyPrices.memoryGbPerHour;
}

function diskMonthly(prices: RegionPrices, type: string, sizeGb: number, address: string): number {
  const perGb = prices.diskGbPerMonth[type];
  if (perGb === undefined) throw new CostError(`${address}: no price for disk type "${type}"; add it to infra/pricing/gcp-list-prices.json`);
  return perGb * sizeGb;
}

function redisHourly(prices: RegionPrices, tier: string, sizeGb: number, address: string): number {
  const tiers = prices.redisGbPerHour[tier as "BASIC" | "STANDARD_HA"];
  const band = tiers?.find((t) => sizeGb <= t.upToGb);
  if (!band) throw new CostError(`${address}: no Memorystore price for tier ${tier} at ${sizeGb} GB; add it to infra/pricing/gcp-list-prices.json`);
  return band.rate * sizeGb;
}

const fixed = (n: number): Range => ({ min: n, max: n });
const referencedName = (ref: unknown): string | undefined => (typeof ref === "string" ? /^\$\{[a-z_]+\.([A-Za-z0-9_-]+)\.[a-z_]+\}$/.exec(ref)?.[1] : undefined);

export function estimateStack(stack: TerraformJson, table: PriceTable): Estimate {
  const region = stackRegion(stack);
  const prices = table.regions[region];
  if (!prices) throw new CostError(`the price table has no prices for region ${region} (it has ${Object.keys(table.regions).join(", ")}); add them to infra/pricing/gcp-list-prices.json`);
  const hours = table.hoursPerMonth;
  const resources = stack.resource ?? {};
  const lines: LineItem[] = [];
  const usageBased: string[] = [];
  const unpriced: string[] = [];
  let vms: Range = fixed(0);

  for (const [type, byName] of Object.entries(resources)) {
    for (const [name, r] of Object.entries(byName)) {
      const address = `${type}.${name}`;
      const add = (what: string, monthly: Range) => lines.push({ address, component: componentOf(type, r), what, monthly });
      switch (type) {
        case "google_compute_instance": {
          const machineType = String(r.machine_type);
          const boot = (r.boot_disk as { initialize_params?: { size?: number; type?: string } }).initialize_params ?? {};
          const bootGb = boot.size ?? 10;
          const bootType = boot.type ?? "pd-standard";
          const monthly = machineHourly(prices, machineType, address) * hours + diskMonthly(prices, bootType, bootGb, address);
          add(`${machineType}, ${bootGb} GB ${bootType} boot disk`, fixed(monthly));
          vms = { min: vms.min + 1, max: vms.max + 1 };
          break;
        }
        case "google_compute_disk": {
          const type2 = String(r.type ?? "pd-standard");
          const size = Number(r.size);
          add(`${size} GB ${type2}`, fixed(diskMonthly(prices, type2, size, address)));
          break;
        }
        case "google_container_cluster":
          add("GKE cluster management fee", fixed(table.global.gkeClusterPerHour * hours));
          break;
        case "google_container_node_pool": {
          const config = r.node_config as { machine_type: string; disk_size_gb?: number; disk_type?: string };
          const scaling = r.autoscaling as { min_node_count?: number; max_node_count?: number; total_min_node_count?: number; total_max_node_count?: number } | undefined;
          const clusterName = referencedName(r.cluster);
          const cluster = clusterName ? resources.google_container_cluster?.[clusterName] : undefined;
          const zones = ((r.node_locations ?? cluster?.node_locations) as string[] | undefined)?.length ?? 3;
          const count: Range = scaling
            ? { min: scaling.total_min_node_count ?? (scaling.min_node_count ?? 0) * zones, max: scaling.total_max_node_count ?? (scaling.max_node_count ?? 0) * zones }
            : fixed(Number(r.node_count ?? 1) * zones);
          const perNode = machineHourly(prices, config.machine_type, address) * hours + diskMonthly(prices, config.disk_type ?? "pd-balanced", config.disk_size_gb ?? 100, address);
          add(`${count.min}-${count.max} x ${config.machine_type} (${zones} zones), ${config.disk_size_gb ?? 100} GB ${config.disk_type ?? "pd-balanced"} each`, { min: count.min * perNode, max: count.max * perNode });
          vms = { min: vms.min + count.min, max: vms.max + count.max };
          break;
        }
        case "google_redis_instance": {
          const tier = String(r.tier ?? "BASIC");
          const size = Number(r.memory_size_gb);
          // The Standard tier rate covers the primary and one replica; each further read replica is one more node.
          const extraNodes = tier === "STANDARD_HA" ? Math.max(0, Number(r.replica_count ?? 1) - 1) : 0;
          const monthly = redisHourly(prices, tier, size, address) * hours * (1 + extraNodes / 2);
          add(`Memorystore ${tier} ${size} GB${extraNodes > 0 ? `, ${extraNodes} extra read replica(s) at half the Standard rate each (assumed)` : ""}`, fixed(monthly));
          break;
        }
        case "google_sql_database_instance": {
          const settings = (r.settings ?? {}) as { tier?: string; availability_type?: string; disk_size?: number; disk_type?: string };
          const tier = /^db-custom-(\d+)-(\d+)$/.exec(String(settings.tier));
          if (!tier) throw new CostError(`${address}: no price for Cloud SQL tier "${String(settings.tier)}"; the estimate knows custom tiers (db-custom-<vCPUs>-<memory MB>)`);
          if (settings.disk_type !== undefined && settings.disk_type !== "PD_SSD") throw new CostError(`${address}: no price for Cloud SQL disk type ${settings.disk_type}; add it to infra/pricing/gcp-list-prices.json`);
          const vcpus = Number(tier[1]);
          const memoryGb = Number(tier[2]) / 1024;
          const diskGb = Number(settings.disk_size ?? 10);
          const regional = settings.availability_type === "REGIONAL";
          // A regional instance is billed at the HA rates: twice the zonal for vCPUs, memory and storage.
          const copies = regional ? 2 : 1;
          const sql = prices.cloudSql;
          const monthly = copies * ((vcpus * sql.vcpuPerHour + memoryGb * sql.memoryGbPerHour) * hours + diskGb * sql.ssdGbPerMonth);
          add(`Cloud SQL ${settings.tier} (${vcpus} vCPUs, ${memoryGb} GB)${regional ? ", regional (HA: twice the zonal rates)" : ", zonal"}, ${diskGb} GB SSD`, fixed(monthly));
          usageBased.push(`${address}: ${USAGE_BASED[type]}`);
          break;
        }
        case "google_privateca_certificate_authority": {
          const poolName = referencedName(r.pool);
          const pool = poolName ? resources.google_privateca_ca_pool?.[poolName] : undefined;
          const tierName = String(pool?.tier ?? "ENTERPRISE");
          const fee = table.global.certificateAuthorityPerMonth[tierName];
          if (fee === undefined) throw new CostError(`${address}: no price for a ${tierName} certificate authority; add it to infra/pricing/gcp-list-prices.json`);
          add(`Certificate Authority Service CA, ${tierName} tier (certificates issued are usage)`, fixed(fee));
          break;
        }
        case "google_kms_crypto_key":
          add("Cloud KMS key, one active version (each rotation adds one)", fixed(table.global.kmsKeyVersionPerMonth));
          break;
        case "google_secret_manager_secret": {
          const replication = r.replication as { user_managed?: { replicas?: unknown[] } } | undefined;
          const locations = replication?.user_managed?.replicas?.length ?? 1;
          add(`Secret Manager secret, one active version${locations > 1 ? ` in ${locations} locations` : ""}`, fixed(table.global.secretVersionPerMonth * locations));
          break;
        }
        case "google_dns_managed_zone":
          add("Cloud DNS managed zone", fixed(table.global.dnsManagedZonePerMonth));
          break;
        case "google_compute_forwarding_rule":
          add("internal load balancer forwarding rule", fixed(table.global.forwardingRulePerHour * hours));
          break;
        case "google_compute_router_nat":
          // Priced after the loop, from the number of VMs that can use it.
          break;
        case "google_compute_address":
          if (r.address_type === "INTERNAL") break;
          unpriced.push(`${address} (an external address)`);
          break;
        default:
          if (FREE.has(type)) break;
          if (USAGE_BASED[type]) {
            usageBased.push(`${address}: ${USAGE_BASED[type]}`);
            break;
          }
          unpriced.push(address);
      }
    }
  }
  if (unpriced.length > 0) {
    throw new CostError(`no price rule for ${unpriced.join(", ")}: add one to infra/src/cost/estimate.ts (priced, free or usage-based) so the estimate stays complete`);
  }
  for (const name of Object.keys(resources.google_compute_router_nat ?? {})) {
    const nat = (n: number) => Math.min(n * table.global.natPerVmHour, table.global.natMaxPerHour) * hours;
    lines.push({ address: `google_compute_router_nat.${name}`, component: "Network (NAT, DNS)", what: `Cloud NAT gateway for ${vms.min}-${vms.max} VMs (data processing is usage)`, monthly: { min: nat(vms.min), max: nat(vms.max) } });
  }
  const total = lines.reduce<Range>((t, l) => ({ min: t.min + l.monthly.min, max: t.max + l.monthly.max }), fixed(0));
  const cloudTrace = Object.values(resources.google_project_service ?? {}).some((r) => r.service === "cloudtrace.googleapis.com");
  if (cloudTrace) usageBased.push("Cloud Trace span ingestion (per million spans beyond the free allotment; estimated below from the request rate and the sampling rate)");
  return { region, asOf: table.asOf, currency: table.currency, lines, total, usageBased: [...usageBased, ...ALWAYS_USAGE_BASED], notes: prices.notes, cloudTrace };
}

function componentOf(type: string, r: Record<string, unknown>): string {
  // The Citus constructs label every VM and disk with its role.
  const labels = r.labels as Record<string, string> | undefined;
  if (labels?.["citus-role"]) return "Citus (coordinator, workers, standbys, disks)";
  // What automatic failover costs on top: the DCS and the load balancer that follows the coordinator's leader.
  if (labels?.["etcd-member"] || type === "google_compute_forwarding_rule") return "Failover (etcd, coordinator load balancer)";
  if (type.startsWith("google_container_")) return "GKE (cluster fee, nodes)";
  if (type === "google_redis_instance") return "Memorystore Redis";
  if (type === "google_sql_database_instance" || type === "google_privateca_certificate_authority") return "Cloud SQL (postgres engine, its server CA)";
  if (type === "google_dns_managed_zone") return "Network (NAT, DNS)";
  if (type === "google_kms_crypto_key" || type === "google_secret_manager_secret") return "Keys and secrets";
  return "Other";
}

/** Totals per component, for the summary a reader wants first. */
export function byComponent(lines: readonly LineItem[]): Map<string, Range> {
  const groups = new Map<string, Range>();
  for (const l of lines) {
    const g = groups.get(l.component) ?? fixed(0);
    groups.set(l.component, { min: g.min + l.monthly.min, max: g.max + l.monthly.max });
  }
  return groups;
}
