/**
 * `pnpm bench:tenant-scale`: does the service's cost grow with the tenant count? The service (its own process, as in
 * production) on a real PostgreSQL 15 seeded with 20, then 100,000, then 1,000,000 tenants (one owner and two items
 * each), under wrk with 50 connections and a platform admin's token, the rate limit out of the way. For each count:
 * point reads, list reads and inserts, with tenants drawn uniformly and Zipf-skewed (s = 1.1), and the service's
 * resident memory. Each figure is printed next to the 20-tenant one of the same run.
 *
 * Each count has its own database and its own service, all up at once, and the rounds alternate between the counts
 * (20, 1M, 20, 1M, ...): on a shared machine whose load moves by 2x within minutes, measuring one count after the
 * other compared two different machines, not two tenant counts.
 *
 * With CITUS_URL (a throwaway Citus coordinator, superuser, two or more workers) the same runs go to Citus instead:
 * one platform database there, grown from each count to the next, so the counts are measured one after the other.
 *
 * Targets (issue 22): at 1M tenants with uniform access at least 0.9x the 20-tenant throughput with p99 at most
 * 1.2x; the service's memory within its bound (README, "Tenant lookup").
 *
 *   BENCH_DURATION=5 BENCH_ROUNDS=3 BENCH_SCALE_TENANTS=20,100000,1000000 pnpm bench:tenant-scale
 *   CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform pnpm bench:tenant-scale
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { token } from "../test/harness.js";
import { positiveInteger } from "./env.js";
import { prepareCitusDatabase } from "@platform/citus/testing";
import pg from "pg";
import {
  cpuSeconds,
  databaseCpu,
  databaseCpuSince,
  median,
  memory,
  seedTenants,
  startBenchDatabase,
  warmCache,
  startServiceProcess,
  targets,
  type BenchDatabase,
  type DatabaseCpu,
  type Target,
} from "./fixture.js";
import { wrkInstalled } from "./load.js";

const run = promisify(execFile);
const DURATION = positiveInteger("BENCH_DURATION", 5);
const ROUNDS = positiveInteger("BENCH_ROUNDS", 3);
const CONNECTIONS = positiveInteger("BENCH_CONNECTIONS", 50);
const SAMPLES = 50_000;
// With CITUS_URL (a throwaway cluster's coordinator, superuser) the counts run on Citus; its tenants are test
// tenants, which the Citus suites may drop.
const CITUS_URL = process.env.CITUS_URL;
const PREFIX = CITUS_URL ? "test-scale-" : "scale-";
const COUNTS = (process.env.BENCH_SCALE_TENANTS ?? "20,100000,1000000").split(",").map((v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`BENCH_SCALE_TENANTS must be a comma-separated list of tenant counts (got "${v}")`);
    process.exit(2);
  }
  return n;
});
if (!(await wrkInstalled())) {
  console.error("bench:tenant-scale needs wrk (apt-get install wrk): the tenants are drawn by its Lua script");
  process.exit(2);
}


/** SAMPLES tenant numbers in 1..n: uniform, or Zipf with exponent s by the inverse of its cumulative distribution. */
function draw(n: number, distribution: Distribution): number[] {
  if (distribution === "uniform") return Array.from({ length: SAMPLES }, () => 1 + Math.floor(Math.random() * n));
  const s = 1.1;
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** s;
  return Array.from({ length: SAMPLES }, () => {
    const u = Math.random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  });
}

/** One request per line, "METHOD PATH BODY": read by wrk's Lua into a table (a script literal would exceed LuaJIT's constants). */
function requestLines(op: Operation, ts: Target[]): string {
  return ts
    .map((t) =>
      op === "point read"
        ? `GET /v1/tenants/${t.tenant}/items/${t.item} -`
        : op === "list read"
          ? `GET /v1/tenants/${t.tenant}/items?limit=20 -`
          : `POST /v1/tenants/${t.tenant}/items {"ownerId":"${t.owner}","title":"bench"}`,
    )
    .join("\n");
}

const WRK_SCRIPT = (file: string, authorization: string) => `
local requests = {}
function init(args)
  for line in io.lines(${JSON.stringify(file)}) do
    local method, path, body = line:match("^(%S+) (%S+) (.*)$")
    local headers = { ["authorization"] = ${JSON.stringify(authorization)} }
    if body == "-" then body = nil else headers["content-type"] = "application/json" end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
end
local next = 0
function request()
  next = next % #requests + 1
  return requests[next]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("\\nLOAD_RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d,\\"status\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.timeout, e.status))
end
`;

/** wrk's errors by kind: connect, read, write and timeout are the socket's; status is an answer outside 2xx and 3xx. */
const ERROR_KINDS = ["connect", "read", "write", "timeout", "status"] as const;
type ErrorKinds = Record<(typeof ERROR_KINDS)[number], number>;
interface Figures { rps: number; p50: number; p99: number; errors: ErrorKinds; requests: number }
const errorCount = (e: ErrorKinds) => ERROR_KINDS.reduce((a, k) => a + e[k], 0);
async function wrk(url: string, lines: string, authorization: string, duration: number): Promise<Figures> {
  const dir = await mkdtemp(join(tmpdir(), "bench-scale-"));
  try {
    await writeFile(join(dir, "requests.txt"), lines);
    await writeFile(join(dir, "script.lua"), WRK_SCRIPT(join(dir, "requests.txt"), authorization));
    const { stdout } = await run("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${duration}s`, "--timeout", "10s", "-s", join(dir, "script.lua"), url], { maxBuffer: 10 * 1024 * 1024 });
    const line = stdout.split("\n").find((l) => l.startsWith("LOAD_RESULT "));
    if (!line) throw new Error(`wrk printed no result line:\n${stdout}`);
    const r = JSON.parse(line.slice("LOAD_RESULT ".length)) as { requests: number; duration_us: number; p50_us: number; p99_us: number } & ErrorKinds;
    const errors = Object.fromEntries(ERROR_KINDS.map((k) => [k, r[k]])) as ErrorKinds;
    return { rps: r.requests / (r.duration_us / 1e6), p50: r.p50_us / 1000, p99: r.p99_us / 1000, errors, requests: r.requests };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const platform = `Bearer ${await token({ scope: "platform:admin", sub: "bench-scale" })}`;

/** One tenant count: its service, and the database's processes when they are ours to count (not on Citus). */
interface Scale {
  readonly n: number;
  readonly admin: pg.Client;
  readonly service: Awaited<ReturnType<typeof startServiceProcess>>;
  readonly databaseCpu?: { read(): DatabaseCpu; since(before: DatabaseCpu): number };
}
type Operation = "point read" | "list read" | "insert";
type Distribution = "uniform" | "zipf";
const OPERATIONS: Operation[] = ["point read", "list read", "insert"];
const DISTRIBUTIONS: Distribution[] = ["uniform", "zipf"];
interface Measured { readonly runs: Figures[]; readonly serviceCpu: number; readonly databaseCpu: number | null }
const results = new Map<string, Measured>();
const resultKey = (n: number, distribution: Distribution, op: Operation) => `${n}|${distribution}|${op}`;
const memories = new Map<number, { rss: number; peak: number }>();

/** Every operation and distribution on `group`, the group's rounds alternating; the figures kept for the report. */
async function measure(group: Scale[]): Promise<void> {
  for (const distribution of DISTRIBUTIONS) {
    const drawn = new Map<number, Target[]>();
    for (const { n, admin } of group) drawn.set(n, await targets(admin, draw(n, distribution), PREFIX));
    for (const op of OPERATIONS) {
      const lines = new Map(group.map(({ n }) => [n, requestLines(op, drawn.get(n)!)]));
      for (const { n, service } of group) await wrk(service.url, lines.get(n)!, platform, 2); // unmeasured: JIT, pool, cache warm-up
      const runs = new Map<number, Figures[]>(group.map(({ n }) => [n, []]));
      const cpu = new Map(group.map(({ n, databaseCpu }) => [n, { service: 0, database: databaseCpu ? 0 : null as number | null }]));
      for (let r = 0; r < ROUNDS; r++) {
        for (const { n, service, databaseCpu } of group) {
          const before = { service: cpuSeconds(service.pid), database: databaseCpu?.read() };
          runs.get(n)!.push(await wrk(service.url, lines.get(n)!, platform, DURATION));
          const used = cpu.get(n)!;
          used.service += cpuSeconds(service.pid) - before.service;
          if (databaseCpu && used.database !== null) used.database += databaseCpu.since(before.database!);
        }
      }
      for (const { n } of group) results.set(resultKey(n, distribution, op), { runs: runs.get(n)!, serviceCpu: cpu.get(n)!.service, databaseCpu: cpu.get(n)!.database });
    }
  }
  for (const { n, service } of group) memories.set(n, memory(service.pid));
}

/** Each count's figures next to the first count's, judged against the targets at a million. */
function report(): boolean {
  let ok = true;
  for (const distribution of DISTRIBUTIONS) {
    for (const op of OPERATIONS) {
      const figures = (n: number): Figures => {
        const x = results.get(resultKey(n, distribution, op))!.runs;
        return { rps: median(x.map((f) => f.rps)), p50: median(x.map((f) => f.p50)), p99: median(x.map((f) => f.p99)), errors: Object.fromEntries(ERROR_KINDS.map((k) => [k, x.reduce((a, f) => a + f.errors[k], 0)])) as ErrorKinds, requests: x.reduce((a, f) => a + f.requests, 0) };
      };
      const base = figures(COUNTS[0]!);
      for (const n of COUNTS) {
        const f = figures(n);
        const measured = results.get(resultKey(n, distribution, op))!;
        const perRequest = (seconds: number | null) => (seconds === null ? " n/a" : `${((seconds / f.requests) * 1e6).toFixed(0).padStart(4)} us`);
        const tput = f.rps / base.rps;
        const tail = f.p99 / base.p99;
        const judged = n === 1_000_000 && distribution === "uniform" && op !== "insert";
        const errors = errorCount(f.errors);
        if (errors > 0) ok = false;
        if (judged && (tput < 0.9 || tail > 1.2)) ok = false;
        console.log(
          `${n.toLocaleString("en").padStart(9)}  ${distribution.padEnd(7)}  ${op.padEnd(10)}  ${f.rps.toFixed(0).padStart(6)}/s  p50 ${f.p50.toFixed(1).padStart(5)} ms  p99 ${f.p99.toFixed(1).padStart(6)} ms` +
            (n === COUNTS[0] ? "" : `  vs ${COUNTS[0]}: ${tput.toFixed(2)}x, p99 ${tail.toFixed(2)}x`) +
            `  CPU/request: service ${perRequest(measured.serviceCpu)}, database ${perRequest(measured.databaseCpu)}` +
            (errors > 0 ? `  ${errors} ERRORS (${ERROR_KINDS.filter((k) => f.errors[k] > 0).map((k) => `${k} ${f.errors[k]}`).join(", ")})` : "") +
            (judged ? "  (target >= 0.90x, p99 <= 1.20x)" : ""),
        );
      }
    }
  }
  for (const n of COUNTS) {
    const m = memories.get(n)!;
    console.log(`${n.toLocaleString("en").padStart(9)}  service memory: resident ${m.rss.toFixed(0)} MiB, peak ${m.peak.toFixed(0)} MiB`);
  }
  return ok;
}

let ok = true;
if (CITUS_URL) {
  // One Citus database, grown from one count to the next (a cluster holds one platform schema): each count is
  // measured after the one before, not alternating with it, so a machine whose load moves shows in the ratios.
  // A cluster that cannot be reached, lacks workers or holds real tenants: one line saying which, not a stack.
  const { appUrl, release } = await prepareCitusDatabase(CITUS_URL).catch((error: Error) => {
    console.error(`bench:tenant-scale: CITUS_URL's cluster cannot be used: ${error.message}`);
    process.exit(2);
  });
  const admin = new pg.Client({ connectionString: CITUS_URL });
  await admin.connect();
  try {
    console.log(`tenant service at scale on Citus (${CITUS_URL.replace(/\/\/[^@]*@/, "//")}): ${CONNECTIONS} connections, median of ${ROUNDS} rounds of ${DURATION}s per count, the counts one after the other in one database grown between them, the service in its own process (a fresh one per count), wrk; tenants drawn uniformly and Zipf (s=1.1), ${SAMPLES.toLocaleString("en")} draws each; database CPU not counted (the cluster's processes are not this benchmark's)`);
    let seeded = 0;
    for (const n of COUNTS) {
      await seedTenants(admin, n, seeded, PREFIX);
      seeded = n;
      await warmCache(admin);
      const service = await startServiceProcess(appUrl);
      try {
        await measure([{ n, admin, service }]);
      } finally {
        await service.stop();
      }
    }
    ok = report();
  } finally {
    await admin.end();
    await release();
  }
} else {
  const scales: (Scale & { database: BenchDatabase })[] = [];
  try {
    for (const n of COUNTS) {
      const database = await startBenchDatabase();
      await seedTenants(database.admin, n);
      await warmCache(database.admin);
      // A fresh service per count: its cache and memory start from nothing, as after a deploy.
      const server = database.server;
      scales.push({ n, admin: database.admin, database, service: await startServiceProcess(server), databaseCpu: { read: () => databaseCpu(server), since: (before) => databaseCpuSince(server, before) } });
    }
    console.log(`tenant service at scale: ${CONNECTIONS} connections, median of ${ROUNDS} rounds of ${DURATION}s per count, the counts' rounds alternating, PostgreSQL 15 on loopback (one per count), the service in its own process (one per count), wrk; tenants drawn uniformly and Zipf (s=1.1), ${SAMPLES.toLocaleString("en")} draws each`);
    await measure(scales);
    ok = report();
  } finally {
    for (const { service, database } of scales) {
      await service.stop();
      await database.close();
    }
  }
}
console.log(ok ? "within target" : "ABOVE TARGET: see the ratios above");
process.exitCode = ok ? 0 : 1;
