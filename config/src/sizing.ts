/**
 * Sizing that follows the tenant target, after the infra seed's scaling table:
 *
 * | tenants      | Citus workers |
 * |--------------|---------------|
 * | up to 10K    | 3             |
 * | up to 100K   | 6 to 10       |
 * | beyond 100K  | 20 or more    |
 *
 * Everything here is a default: an environment definition or an operator override can set any field.
 */
export type SizingTier = "small" | "medium" | "large";

export interface Sizing {
  readonly tier: SizingTier;
  readonly citus: {
    readonly workers: number;
    readonly shardCount: number;
    readonly coordinator: { readonly machineType: string; readonly dataDiskGb: number };
    readonly worker: { readonly machineType: string; readonly dataDiskGb: number };
  };
  readonly gkeNodePool: { readonly machineType: string; readonly minNodesPerZone: number; readonly maxNodesPerZone: number };
  readonly redisMemorySizeGb: number;
}

export const SMALL_TIER_MAX_TENANTS = 10_000;
export const MEDIUM_TIER_MAX_TENANTS = 100_000;
/** Beyond the medium tier, one worker per this many tenants (and never fewer than 20). */
export const LARGE_TIER_TENANTS_PER_WORKER = 50_000;
/**
 * Shard groups per worker. Citus moves whole shard groups, so the rebalancer can only get as close to even as one
 * group's share allows: ~16 groups per worker keeps a move small and skew low (1M tenants: 64 workers, 1,024 groups).
 */
export const SHARD_GROUPS_PER_WORKER = 16;
export const MIN_SHARD_COUNT = 32;
/** Room on each worker for a shard group arriving during a rebalance, WAL, bloat and growth before the next resize. */
export const WORKER_DISK_HEADROOM = 2;

const TIERS: Record<SizingTier, Omit<Sizing, "tier" | "citus"> & { coordinator: Sizing["citus"]["coordinator"]; workerMachineType: string; minWorkerDiskGb: number }> = {
  small: {
    coordinator: { machineType: "n2-standard-4", dataDiskGb: 100 },
    workerMachineType: "n2-highmem-4",
    minWorkerDiskGb: 100,
    gkeNodePool: { machineType: "e2-standard-4", minNodesPerZone: 1, maxNodesPerZone: 3 },
    redisMemorySizeGb: 5,
  },
  medium: {
    coordinator: { machineType: "n2-standard-8", dataDiskGb: 250 },
    workerMachineType: "n2-highmem-8",
    minWorkerDiskGb: 250,
    gkeNodePool: { machineType: "n2-standard-8", minNodesPerZone: 2, maxNodesPerZone: 10 },
    redisMemorySizeGb: 16,
  },
  large: {
    coordinator: { machineType: "n2-standard-16", dataDiskGb: 500 },
    workerMachineType: "n2-highmem-16",
    minWorkerDiskGb: 500,
    gkeNodePool: { machineType: "n2-standard-16", minNodesPerZone: 3, maxNodesPerZone: 30 },
    redisMemorySizeGb: 64,
  },
};

export function tierFor(tenants: number): SizingTier {
  if (tenants <= SMALL_TIER_MAX_TENANTS) return "small";
  if (tenants <= MEDIUM_TIER_MAX_TENANTS) return "medium";
  return "large";
}

export function workersFor(tenants: number): number {
  switch (tierFor(tenants)) {
    case "small":
      return 3;
    case "medium":
      // 6 just past 10K, growing linearly to 10 at 100K.
      return 6 + Math.floor(((tenants - SMALL_TIER_MAX_TENANTS) * 4) / (MEDIUM_TIER_MAX_TENANTS - SMALL_TIER_MAX_TENANTS));
    case "large":
      return Math.max(20, Math.ceil(tenants / LARGE_TIER_TENANTS_PER_WORKER));
  }
}

export function shardCountFor(workers: number): number {
  return Math.max(MIN_SHARD_COUNT, nextPowerOfTwo(workers * SHARD_GROUPS_PER_WORKER));
}

/** Data disk per worker: its share of all tenant data, times headroom, rounded up to 50 GB. */
export function workerDiskGbFor(tenants: number, averageDataMb: number, workers: number, minimumGb: number): number {
  const shareGb = (tenants * averageDataMb) / 1024 / workers;
  return Math.max(minimumGb, Math.ceil((shareGb * WORKER_DISK_HEADROOM) / 50) * 50);
}

export function deriveSizing(tenants: number, averageDataMb: number, workersOverride?: number): Sizing {
  if (!Number.isInteger(tenants) || tenants < 1) throw new Error(`tenant target must be a positive whole number (got ${tenants})`);
  const tier = tierFor(tenants);
  const t = TIERS[tier];
  const workers = workersOverride ?? workersFor(tenants);
  return {
    tier,
    citus: {
      workers,
      shardCount: shardCountFor(workers),
      coordinator: { ...t.coordinator },
      worker: { machineType: t.workerMachineType, dataDiskGb: workerDiskGbFor(tenants, averageDataMb, workers, t.minWorkerDiskGb) },
    },
    gkeNodePool: { ...t.gkeNodePool },
    redisMemorySizeGb: t.redisMemorySizeGb,
  };
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

/**
 * Cloud SQL's machine per tier (the postgres engine, docs/SCALING.md "Phase 1"): the one instance does the work of the
 * coordinator and every worker, so it gets a Citus worker's memory per vCPU (highmem: 8 GB) capped at Cloud SQL's
 * 6.5 GB per vCPU. Phase 1 is meant for the small tier; the others are there so a larger target still synthesizes.
 */
const CLOUD_SQL_TIERS: Record<SizingTier, { vcpus: number; minDiskGb: number }> = {
  small: { vcpus: 4, minDiskGb: 100 },
  medium: { vcpus: 8, minDiskGb: 250 },
  large: { vcpus: 16, minDiskGb: 500 },
};

/** The Cloud SQL tier and data disk for a tenant target: all tenant data on one disk, with the workers' headroom. */
export function cloudSqlSizingFor(tenants: number, averageDataMb: number): { tier: string; diskGb: number } {
  const { vcpus, minDiskGb } = CLOUD_SQL_TIERS[tierFor(tenants)];
  const memoryMb = vcpus * 6656;
  const dataGb = (tenants * averageDataMb) / 1024;
  return { tier: `db-custom-${vcpus}-${memoryMb}`, diskGb: Math.min(65536, Math.max(minDiskGb, Math.ceil((dataGb * WORKER_DISK_HEADROOM) / 50) * 50)) };
}
