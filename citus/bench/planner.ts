/**
 * `pnpm bench:planner`: the shard-group planner (shardctl simulate) at the target scale: 1,000,000 tenants hashed
 * into 1,024 shard groups on 64 workers, tenant sizes long-tailed (a few whales, many small). Prints the planner's
 * time and the skew it reaches against the lower bound (the largest shard group's share).
 */
import { performance } from "node:perf_hooks";
import { skew, skewLowerBound, simulateAddWorkers } from "../src/shardctl/analysis.js";

const TENANTS = Number(process.env.BENCH_TENANTS ?? 1_000_000);
const GROUPS = Number(process.env.BENCH_GROUPS ?? 1024);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 64);

// Deterministic pseudo-random sizes (no Math.random: the figures must repeat run to run).
// mulberry32: small, well mixed (a plain LCG correlates consecutive draws, here size with shard group).
let seed = 42;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const groupBytes = new Float64Array(GROUPS);
for (let t = 1; t <= TENANTS; t++) {
  // Long-tailed: most tenants a few MB, the largest a few hundred MB.
  const bytes = 2_000_000 / Math.pow(1 - random() * 0.9999, 0.6);
  groupBytes[Math.floor(random() * GROUPS)] += bytes;
}
const groups = new Map<string, { node: string; bytes: number }>();
const load = new Map<string, number>();
for (let w = 0; w < WORKERS; w++) load.set(`worker-${w}`, 0);
for (let g = 0; g < GROUPS; g++) {
  const node = `worker-${g % WORKERS}`;
  groups.set(`group-${g}`, { node, bytes: groupBytes[g]! });
  load.set(node, load.get(node)! + groupBytes[g]!);
}

console.log(`planner benchmark: ${TENANTS.toLocaleString()} tenants, ${GROUPS} shard groups, ${WORKERS} workers`);
console.log(`initial skew ${skew(load).toFixed(3)}, lower bound ${skewLowerBound(load, groups).toFixed(3)}`);
for (const add of [0, 8, 16]) {
  const start = performance.now();
  const result = simulateAddWorkers(load, groups, add);
  const ms = performance.now() - start;
  console.log(
    `+${String(add).padStart(2)} workers: ${ms.toFixed(1).padStart(8)} ms, ${String(result.moves).padStart(4)} group moves, ` +
      `skew ${result.skew.toFixed(3)} vs lower bound ${result.lowerBound.toFixed(3)} (${((result.skew / result.lowerBound - 1) * 100).toFixed(1)}% above)`,
  );
}
