import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import { prepareCitusDatabase } from "@platform/citus/testing";
import { loadEnvironment } from "@platform/config";
import { addMissingNodes, planScaleOut, scaleOutSteps, verifyScaleOut, type ScaleOutOptions } from "../src/scale-out.js";
import { WorkflowError, execInherit, runWorkflow, type CommandSpec } from "../src/workflow.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const scriptsDir = join(import.meta.dirname, "..");
function overrides(content: unknown): string {
  const file = join(scratch.make("scale-out-test-"), "platform.config.json");
  writeFileSync(file, JSON.stringify(content));
  return file;
}
const options = (o: Partial<ScaleOutOptions> = {}): ScaleOutOptions => ({
  environment: "production",
  workers: 24,
  overrideFile: overrides({ production: { gcp: { projectId: "acme-prod", stateBucket: "acme-prod-tf" } } }),
  citusUrl: "postgresql://unused",
  root: scriptsDir,
  yes: false,
  env: {},
  ...o,
});

describe("scale-out plan", () => {
  it("pins the shard count and never shrinks the workers' disks, which sizing alone would do", () => {
    const o = options();
    const current = loadEnvironment("production", { env: {}, overrideFile: o.overrideFile });
    const derived = loadEnvironment("production", { env: { PLATFORM_PRODUCTION_CITUS_WORKERS: "24" }, overrideFile: o.overrideFile });
    // The hazard being guarded against: more workers, smaller derived disks.
    expect(derived.citus.worker.dataDiskGb).toBeLessThan(current.citus.worker.dataDiskGb);
    const { override, target } = planScaleOut(o, false);
    expect(override).toEqual({ citus: { workers: 24, shardCount: current.citus.shardCount, worker: { dataDiskGb: current.citus.worker.dataDiskGb } } });
    expect(target.citus.workers).toBe(24);
    expect(target.citus.worker.dataDiskGb).toBe(current.citus.worker.dataDiskGb);
    expect(target.gcp.projectId).toBe("acme-prod");
  });

  it("refuses what it cannot do, before anything changes", () => {
    const refused = (o: ScaleOutOptions) => {
      try {
        planScaleOut(o, false);
      } catch (error) {
        expect(error).toBeInstanceOf(WorkflowError);
        return (error as WorkflowError).message;
      }
      throw new Error("not refused");
    };
    expect(refused(options({ workers: 20 }))).toMatch(/production has 20 workers; --workers 20 adds none\. Scale-out only adds/);
    expect(refused(options({ env: { PLATFORM_PRODUCTION_CITUS_WORKERS: "22" } }))).toMatch(/PLATFORM_PRODUCTION_CITUS_WORKERS=22 is set and would win/);
    expect(refused(options({ workers: 500 }))).toMatch(/--workers 500 does not give a valid production configuration, nothing was changed:[\s\S]*citus\.workers/);
  });

  it("the config step merges the new count into the operator's file and keeps the rest of it", async () => {
    const o = options();
    const plan = planScaleOut(o, false);
    const [config] = scaleOutSteps(o, plan);
    await runWorkflow({ workflow: "scale-out", environment: "production", params: { workers: 24 }, steps: [config!], stateFile: join(scratch.make("st-"), "s.json"), log: () => {} });
    const written = JSON.parse(readFileSync(o.overrideFile, "utf8"));
    expect(written.production.gcp).toEqual({ projectId: "acme-prod", stateBucket: "acme-prod-tf" });
    expect(written.production.citus.workers).toBe(24);
    expect(loadEnvironment("production", { env: {}, overrideFile: o.overrideFile }).citus.workers).toBe(24);
    // Resuming after the config step: the same count is no longer "adds none".
    expect(planScaleOut(o, true).target.citus.workers).toBe(24);
  });

  it("the command line says what is wrong and exits 2, and a dry run lists the steps without the coordinator's URL", async () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      promisify(execFile)(join(scriptsDir, "scale-out"), args, { env: { ...process.env, PLATFORM_STATE_DIR: scratch.make("st-"), ...env } }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
    const noUrl = await run(["production", "--workers", "24"], { CITUS_URL: "" });
    expect(noUrl.code).toBe(2);
    expect(noUrl.out).toMatch(/CITUS_URL is not set/);
    const dry = await run(["production", "--workers", "24", "--dry-run"], { CITUS_URL: "postgresql://postgres:s3cret@coordinator/platform", PLATFORM_CONFIG: options().overrideFile });
    expect(dry.code, dry.out).toBe(0);
    expect(dry.out.match(/^\d+\. (\S+):/gm)).toEqual(["1. config:", "2. synth:", "3. deploy:", "4. add-nodes:", "5. rebalance:", "6. verify:"]);
    expect(dry.out).not.toContain("s3cret");
    expect((await run(["qa", "--workers", "2"])).out).toMatch(/unknown environment "qa"/);
  });
});

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping the scale-out checks against a cluster: set CITUS_URL to a Citus 13 coordinator with two or more workers");

describe.skipIf(!CITUS_URL)("scale-out's cluster steps on a real Citus cluster", () => {
  let client: pg.Client;
  let workers: string[];
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    // The platform schema, migrated: every distributed table has shards on every worker. The lock keeps the shard
    // moves of the other Citus suites from running meanwhile.
    ({ release } = await prepareCitusDatabase(CITUS_URL!));
    client = new pg.Client({ connectionString: CITUS_URL });
    await client.connect();
    workers = (await client.query<{ spec: string }>("SELECT nodename || ':' || nodeport AS spec FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport")).rows.map((r) => r.spec);
  }, 120_000);
  afterAll(async () => {
    await client?.end();
    await release?.();
  });

  it("verify passes when every worker holds shards, and names the worker that is missing", async () => {
    const lines: string[] = [];
    await verifyScaleOut(client, workers, (l) => lines.push(l));
    expect(lines[0]).toMatch(new RegExp(`^${workers.length} workers hold shards; skew \\(largest over mean, by bytes\\) \\d+\\.\\d\\d$`));
    await expect(verifyScaleOut(client, [...workers, "worker-99.db.internal:5432"], () => {})).rejects.toThrow("worker-99.db.internal:5432 is not a node");
  });

  const NEW_WORKER = process.env.CITUS_NEW_WORKER;
  if (CITUS_URL && !NEW_WORKER) console.warn("skipping scale-out's add-node check: set CITUS_NEW_WORKER=host:port to a PostgreSQL with the citus extension, not yet a node");
  it.skipIf(!NEW_WORKER)("adds only the workers the coordinator lacks, through shardctl, and a rerun adds none (CITUS_NEW_WORKER)", { timeout: 120_000 }, async () => {
    const root = join(scriptsDir, "..");
    const commands: string[] = [];
    const exec = async (c: CommandSpec) => {
      commands.push(c.argv.join(" "));
      if ((await execInherit({ ...c, env: { CITUS_URL: CITUS_URL! } })) !== 0) throw new Error(`${c.argv.join(" ")} failed`);
    };
    try {
      await addMissingNodes({ citusUrl: CITUS_URL!, root }, [...workers, NEW_WORKER!], () => {}, exec);
      expect(commands).toEqual([`pnpm --silent shardctl add-node ${NEW_WORKER} --yes`]);
      const present = await client.query("SELECT 1 FROM pg_dist_node WHERE nodename || ':' || nodeport = $1", [NEW_WORKER]);
      expect(present.rows).toHaveLength(1);
      await addMissingNodes({ citusUrl: CITUS_URL!, root }, [...workers, NEW_WORKER!], () => {}, exec);
      expect(commands).toHaveLength(1);
      // Added but never rebalanced onto: verify names it.
      await expect(verifyScaleOut(client, [...workers, NEW_WORKER!], () => {})).rejects.toThrow(`${NEW_WORKER} holds no shards`);
    } finally {
      const [host, port] = NEW_WORKER!.split(":");
      await client.query("SELECT citus_remove_node($1, $2::int) FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2::int", [host, port]);
    }
  });
});
