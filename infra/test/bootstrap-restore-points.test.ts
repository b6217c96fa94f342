/**
 * The cluster-wide restore points the coordinator writes (docs/runbooks/restore-points.md): the command and units the
 * bootstrap installs, run as the unit runs them, against real servers. Here: a PostgreSQL 15 primary without Citus
 * and one in standby mode. With CITUS_URL: a Citus 13 coordinator, where the restore point is looked for in every
 * node's WAL with pg_walinspect, since a restore point that reached only the coordinator would restore nothing
 * consistent.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformNames } from "@platform/config";
import { SCRAPE_JOBS } from "@platform/monitoring/catalog";
import { freePort, postgresUnavailable, startPostgres, type PostgresServer } from "@platform/testing";
import { hermeticConfigs } from "./helpers.js";
import { synthesizedStack } from "./synthesized.js";
import { bootstrapEnv, exposedSamples, startupScriptOf } from "./vm-fixtures.js";

const config = hermeticConfigs().find((c) => c.name === "production")!;
const names = platformNames(config);
const have = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const skipReason =
  postgresUnavailable() ??
  (process.getuid?.() !== 0 ? "needs root: the command reaches PostgreSQL as the postgres user (runuser), as it does on the VM" : undefined) ??
  (have("systemd-analyze") ? undefined : "systemd-analyze not found (apt-get install systemd): it checks the units");
if (skipReason) console.warn(`skipping bootstrap-restore-points tests: ${skipReason}`);

const METRICS_FILE = "citus-restore-point.prom";
let dir: string;
const textfile = () => join(dir, "textfile", METRICS_FILE);
const command = () => join(dir, "sbin", "citus-restore-point");

/** The command as its unit runs it (root, the unit's PGDATABASE/PGPORT), pointed at `server` by libpq variables. */
function runCommand(server: NodeJS.ProcessEnv) {
  return spawnSync(command(), [], { encoding: "utf8", env: { ...bootstrapEnv(dir), ...server }, timeout: 60_000 });
}

const libpqEnv = (pg: PostgresServer): NodeJS.ProcessEnv => ({ PGHOST: pg.socketDir, PGPORT: String(pg.port), PGDATABASE: "postgres", PGUSER: "postgres" });

/** A file a successful run left earlier: a failed run must leave it as it is. */
const LAST_GOOD = '# TYPE citus_restore_point_last_timestamp_seconds gauge\ncitus_restore_point_last_timestamp_seconds{name="citus-20261101T000000Z"} 1761955200\n';

// Installed once, as the production coordinator's bootstrap installs it, for both suites below.
beforeAll(() => {
  if (skipReason) return;
  dir = mkdtempSync(join(tmpdir(), "citus-restore-points-"));
  chmodSync(dir, 0o755);
  const production = synthesizedStack("production");
  writeFileSync(join(dir, "bootstrap.sh"), startupScriptOf(production!.json, "coordinator", names.citus.coordinator.member.host));
  const installed = spawnSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "bootstrap.sh")}'; install_restore_points`], { encoding: "utf8", env: bootstrapEnv(dir) });
  if (installed.status !== 0) throw new Error(installed.stderr);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)("the coordinator's cluster-wide restore points", () => {
  it("installs a timer at the configured interval and a unit systemd accepts, pointed at the platform database", () => {
    const timer = readFileSync(join(dir, "systemd", "citus-restore-point.timer"), "utf8");
    expect(timer).toContain(`OnUnitActiveSec=${config.citus.restorePointIntervalMinutes}min`);
    const service = readFileSync(join(dir, "systemd", "citus-restore-point.service"), "utf8");
    expect(service).toContain(`Environment=PGDATABASE=${names.citusDatabase} PGPORT=${names.postgresPort}`);
    expect(service).toContain(`ExecStart=${command()}`);
    const verify = spawnSync("systemd-analyze", ["verify", join(dir, "systemd", "citus-restore-point.service"), join(dir, "systemd", "citus-restore-point.timer")], { encoding: "utf8" });
    // An After= on a unit this machine lacks is not a problem of ours.
    expect(verify.stderr.split("\n").filter((l) => l && !l.includes("postgresql@"))).toEqual([]);
  });

  it("exports only metrics the monitoring catalog lists for the citus-node job", () => {
    const written = [...readFileSync(command(), "utf8").matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]!);
    expect(written.sort()).toEqual(["citus_restore_point_interval_seconds", "citus_restore_point_last_timestamp_seconds"]);
    for (const metric of written) expect(SCRAPE_JOBS["citus-node"]).toContain(metric);
  });

  describe("on a standby", () => {
    let standby: PostgresServer;
    beforeAll(async () => {
      standby = await startPostgres({ standby: true });
    }, 60_000);
    afterAll(() => standby?.stop());

    it("writes nothing and succeeds: the pair's primary writes them, and this one will once promoted", () => {
      rmSync(textfile(), { force: true });
      const run = runCommand(libpqEnv(standby));
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toContain("standby");
      expect(existsSync(textfile())).toBe(false);
    });
  });

  describe("when no restore point can be written", () => {
    let primary: PostgresServer;
    beforeAll(async () => {
      primary = await startPostgres();
    }, 60_000);
    afterAll(() => primary?.stop());

    it("on a primary without Citus: fails, names the call, and keeps the last restore point's metrics whole", () => {
      writeFileSync(textfile(), LAST_GOOD);
      const run = runCommand(libpqEnv(primary));
      expect(run.status).toBe(1);
      expect(run.stderr).toContain("function citus_create_restore_point(unknown) does not exist");
      expect(run.stderr).toMatch(/citus_create_restore_point\('citus-\d{8}T\d{6}Z'\) failed/);
      expect(readFileSync(textfile(), "utf8")).toBe(LAST_GOOD);
      expect(readdirSync(join(dir, "textfile"))).toEqual([METRICS_FILE]);
    });

    it("with PostgreSQL down: fails and says so, keeping the metrics", async () => {
      writeFileSync(textfile(), LAST_GOOD);
      const run = runCommand({ ...libpqEnv(primary), PGHOST: "127.0.0.1", PGPORT: String(await freePort()) });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain("cannot reach PostgreSQL here");
      expect(readFileSync(textfile(), "utf8")).toBe(LAST_GOOD);
    });
  });
});

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping the restore point on Citus: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");
describe.skipIf(skipReason !== undefined || !CITUS_URL)("a restore point on a real Citus cluster", () => {
  const coordinator = new URL(CITUS_URL ?? "postgresql://unset");
  const psql = (url: string, query: string) => {
    const r = spawnSync("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", query], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`psql ${new URL(url).host}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const nodeUrl = (host: string, port: string) => Object.assign(new URL(coordinator.href), { hostname: host, port }).href;
  let nodes: string[];
  let createdWalinspect = false;

  beforeAll(() => {
    nodes = [coordinator.href, ...psql(coordinator.href, "SELECT node_name || ':' || node_port FROM citus_get_active_worker_nodes() ORDER BY 1").split("\n").map((n) => {
      const [host, port] = n.split(":");
      return nodeUrl(host!, port!);
    })];
    expect(nodes.length).toBeGreaterThanOrEqual(3);
    // pg_walinspect (PostgreSQL contrib) reads WAL records from SQL; Citus propagates the extension to the workers.
    createdWalinspect = psql(coordinator.href, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_walinspect'") === "0";
    if (createdWalinspect) psql(coordinator.href, "CREATE EXTENSION pg_walinspect");
  });

  afterAll(() => {
    if (createdWalinspect) psql(coordinator.href, "DROP EXTENSION pg_walinspect");
  });

  const coordinatorEnv = (): NodeJS.ProcessEnv => ({
    PGHOST: coordinator.hostname,
    PGPORT: coordinator.port || "5432",
    PGDATABASE: decodeURIComponent(coordinator.pathname.slice(1)) || "postgres",
    PGUSER: decodeURIComponent(coordinator.username) || "postgres",
    ...(coordinator.password ? { PGPASSWORD: decodeURIComponent(coordinator.password) } : {}),
  });

  it("writes one named record into the WAL of every node and reports it for node_exporter", () => {
    const before = nodes.map((url) => psql(url, "SELECT pg_current_wal_flush_lsn()"));
    const started = Math.floor(Date.now() / 1000);
    const run = runCommand(coordinatorEnv());
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);

    const written = exposedSamples(readFileSync(textfile(), "utf8"));
    const [series, timestamp] = [...written].find(([k]) => k.startsWith("citus_restore_point_last_timestamp_seconds{"))!;
    const name = /name="([^"]+)"/.exec(series)![1]!;
    expect(name).toMatch(/^citus-\d{8}T\d{6}Z$/);
    expect(timestamp).toBeGreaterThanOrEqual(started);
    expect(timestamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(written.get("citus_restore_point_interval_seconds")).toBe(config.citus.restorePointIntervalMinutes * 60);
    expect(run.stdout).toContain(`wrote ${name} at coordinator LSN`);

    // The call writes the record on each node without flushing it, and pg_walinspect reads only flushed WAL. On the
    // VMs, archive_timeout switches (and so flushes and archives) each node's WAL file within a minute; here a switch
    // does the same at once.
    const found = nodes.map((url, i) => {
      psql(url, "SELECT pg_switch_wal()");
      return psql(url, `SELECT count(*) FROM pg_get_wal_records_info('${before[i]}', pg_current_wal_flush_lsn()) WHERE record_type = 'RESTORE_POINT' AND description = '${name}'`);
    });
    expect(found).toEqual(nodes.map(() => "1"));

    if (have("promtool")) {
      const check = spawnSync("promtool", ["check", "metrics"], { input: readFileSync(textfile(), "utf8"), encoding: "utf8" });
      expect(check.stdout + check.stderr).toBe("");
      expect(check.status).toBe(0);
    }
  });

  it("gives up after two seconds behind a lock holder instead of queueing every distributed commit behind it", async () => {
    writeFileSync(textfile(), LAST_GOOD);
    // What a node addition or a table being distributed holds for its whole transaction.
    const holder = spawn("psql", ["-X", "-q", coordinator.href], { stdio: ["pipe", "ignore", "ignore"] });
    // It lets go after 20 seconds, so a command that waits for it comes back, late, and fails the test.
    holder.stdin.end("BEGIN;\nLOCK TABLE pg_catalog.pg_dist_partition IN ROW EXCLUSIVE MODE;\nSELECT pg_sleep(20);\nCOMMIT;\n");
    let holderPid = "";
    try {
      const held = "SELECT pid FROM pg_locks WHERE relation = 'pg_catalog.pg_dist_partition'::regclass AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()";
      for (let i = 0; !(holderPid = psql(coordinator.href, held)); i++) {
        if (i > 100) throw new Error("the lock holder never got its lock");
        await new Promise((r) => setTimeout(r, 100));
      }
      const started = Date.now();
      const run = runCommand(coordinatorEnv());
      const waitedMs = Date.now() - started;
      expect(run.status).toBe(1);
      expect(run.stderr).toContain("canceling statement due to lock timeout");
      expect(run.stderr).toMatch(/citus_create_restore_point\('citus-\d{8}T\d{6}Z'\) failed/);
      expect(waitedMs).toBeGreaterThanOrEqual(2_000);
      expect(waitedMs).toBeLessThan(15_000);
      expect(readFileSync(textfile(), "utf8")).toBe(LAST_GOOD);
    } finally {
      // Killing psql alone would leave its backend sleeping with the lock for the rest of its 20 seconds.
      if (holderPid) psql(coordinator.href, `SELECT pg_terminate_backend(${holderPid})`);
      holder.kill();
    }
  }, 60_000);
});
