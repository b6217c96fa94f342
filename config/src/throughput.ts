/**
 * What a peak request rate needs from a sized environment, with the assumptions in the open. The connection rules
 * here are the ones the Kubernetes charts apply (pool per replica, HPA target), so `pnpm capacity --qps` and
 * `pnpm synth` cannot disagree.
 */
import type { EnvironmentConfig } from "./schema.js";

/** Share of the coordinator's max_connections the tenant service's pools may use together; the rest is for the
 * queue worker, migrations, exporters and operators, and for the sessions a replica's pool has closed while the
 * coordinator was still busy on them (a lost worker: at most RETIRED_PER_POOL_CONNECTION more, dead-peers.ts). */
export const SERVICE_CONNECTION_SHARE = 0.6;
/** CPU utilisation (of the request) the HPAs scale at. */
export const HPA_TARGET_CPU_PERCENT = 70;

/** Each tenant-service replica's pool: every replica at maxReplicas together stays within the coordinator's share. */
export function tenantServicePoolSize(config: EnvironmentConfig): number {
  const { maxReplicas } = config.kubernetes.workloads.tenantService;
  return Math.max(2, Math.floor((config.citus.coordinatorMaxConnections * SERVICE_CONNECTION_SHARE) / maxReplicas));
}

export interface ThroughputAssumptions {
  /** Requests a second one vCPU of the tenant service sustains. */
  readonly serviceRpsPerCpu: number;
  /** Requests a second one vCPU of Kong sustains. */
  readonly gatewayRpsPerCpu: number;
  /** Time a request holds a database connection (BEGIN, SET LOCAL, the statement, COMMIT), milliseconds. */
  readonly dbMsPerRequest: number;
}

/** From `pnpm bench:tenant` on a 2-core machine shared with PostgreSQL and the load generator: about 2,700 point
 * reads and 1,500 inserts a second. 800 per vCPU is a mixed load with room for auth, logging and tracing. Kong
 * proxies without a database (DB-less) and is cheaper per request. Four round trips inside one region plus an
 * index lookup: 2 ms. All three are flags of `pnpm capacity`: measure yours and pass them. */
export const DEFAULT_THROUGHPUT: ThroughputAssumptions = { serviceRpsPerCpu: 800, gatewayRpsPerCpu: 2_000, dbMsPerRequest: 2 };

export function cpuCores(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  if (!m) throw new Error(`not a CPU quantity: "${quantity}"`);
  return m[2] === "m" ? Number(m[1]) / 1000 : Number(m[1]);
}

/** vCPUs of a predefined machine type (n2-standard-16 → 16; e2-medium → 2). */
export function machineVcpus(machineType: string): number {
  const shared: Record<string, number> = { "e2-micro": 2, "e2-small": 2, "e2-medium": 2 };
  const n = shared[machineType] ?? Number(/-(\d+)$/.exec(machineType)?.[1]);
  if (!Number.isFinite(n)) throw new Error(`cannot tell the vCPUs of machine type "${machineType}"`);
  return n;
}

export interface ThroughputCheck {
  readonly name: string;
  readonly needed: number;
  readonly available: number;
  readonly ok: boolean;
  /** What to change when it does not fit. */
  readonly advice: string;
}

export interface ThroughputPlan {
  readonly qps: number;
  readonly serviceReplicas: number;
  readonly gatewayReplicas: number;
  readonly busyConnections: number;
  readonly perWorkerQps: number;
  readonly checks: readonly ThroughputCheck[];
}

export function planForQps(config: EnvironmentConfig, qps: number, a: ThroughputAssumptions = DEFAULT_THROUGHPUT): ThroughputPlan {
  if (!(qps > 0)) throw new Error(`--qps must be a positive number (got ${qps})`);
  const w = config.kubernetes.workloads;
  const target = HPA_TARGET_CPU_PERCENT / 100;
  // The HPA holds each pod near target x its CPU request.
  const serviceReplicas = Math.max(w.tenantService.minReplicas, Math.ceil(qps / (a.serviceRpsPerCpu * cpuCores(w.tenantService.cpuRequest) * target)));
  const gatewayReplicas = Math.max(w.gateway.minReplicas, Math.ceil(qps / (a.gatewayRpsPerCpu * cpuCores(w.gateway.cpuRequest) * target)));
  // Little's law: connections in use = arrival rate x time held.
  const busyConnections = Math.ceil((qps * a.dbMsPerRequest) / 1000);
  const pool = tenantServicePoolSize(config);
  const coordinatorShare = Math.floor(config.citus.coordinatorMaxConnections * SERVICE_CONNECTION_SHARE);
  const nodeVcpus = machineVcpus(config.gke.nodePool.machineType);
  // About 10% of a node goes to the kubelet, system pods and DaemonSets.
  const clusterVcpus = Math.floor(config.gke.nodePool.maxNodesPerZone * config.gcp.zones.length * nodeVcpus * 0.9);
  const requestedVcpus = serviceReplicas * cpuCores(w.tenantService.cpuRequest) + gatewayReplicas * cpuCores(w.gateway.cpuRequest);
  const checks: ThroughputCheck[] = [
    {
      name: "tenant-service replicas (HPA maxReplicas)",
      needed: serviceReplicas,
      available: w.tenantService.maxReplicas,
      ok: serviceReplicas <= w.tenantService.maxReplicas,
      advice: `raise kubernetes.workloads.tenantService.maxReplicas to ${serviceReplicas} (the pool per replica shrinks to keep within the coordinator's connections)`,
    },
    {
      name: "gateway replicas (HPA maxReplicas)",
      needed: gatewayReplicas,
      available: w.gateway.maxReplicas,
      ok: gatewayReplicas <= w.gateway.maxReplicas,
      advice: `raise kubernetes.workloads.gateway.maxReplicas to ${gatewayReplicas}`,
    },
    {
      // Pools fill unevenly: keep the busy connections under 70% of what the replicas' pools hold.
      name: "database connections in use (pools of the replicas needed)",
      needed: busyConnections,
      available: Math.floor(Math.min(serviceReplicas * pool, coordinatorShare) * 0.7),
      ok: busyConnections <= Math.floor(Math.min(serviceReplicas * pool, coordinatorShare) * 0.7),
      advice:
        busyConnections > coordinatorShare * 0.7
          ? `more than the coordinator's ${config.citus.coordinatorMaxConnections} connections allow: put PgBouncer in front of the coordinator (transaction pooling), or raise citus.coordinatorMaxConnections with a larger coordinator`
          : "raise the replicas (each brings its pool) or shorten transactions",
    },
    {
      name: "GKE vCPUs at the node pool's maximum (service and gateway requests)",
      needed: Math.ceil(requestedVcpus),
      available: clusterVcpus,
      ok: requestedVcpus <= clusterVcpus * 0.8,
      advice: `raise gke.nodePool.maxNodesPerZone (${config.gke.nodePool.maxNodesPerZone} x ${config.gke.nodePool.machineType} per zone) or use larger nodes`,
    },
  ];
  return { qps, serviceReplicas, gatewayReplicas, busyConnections, perWorkerQps: Math.ceil(qps / config.citus.workers), checks };
}
