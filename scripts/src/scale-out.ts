/**
 * The steps of `scripts/scale-out <env> --workers N`: the config change, synthesis (policy-gated), `cdktf deploy`,
 * `shardctl add-node` for every worker the coordinator does not have yet, a rebalance, and a check of the result.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { ConfigError, envVarName, loadEnvironment, mergeOverrides, platformNames, type EnvironmentConfig, type EnvironmentName } from "@platform/config";
import { WorkflowError, type CommandSpec, type Step } from "./workflow.js";

export interface ScaleOutOptions {
  readonly environment: EnvironmentName;
  readonly workers: number;
  /** The operator override file the worker count is written to (PLATFORM_CONFIG or platform.config.json). */
  readonly overrideFile: string;
  /** The coordinator (the commands inherit it as CITUS_URL; it is never printed). */
  readonly citusUrl: string;
  /** Where pnpm runs the root scripts (shardctl). */
  readonly root: string;
  /** Passed on to cdktf (--auto-approve) and shardctl (--yes). */
  readonly yes: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * What the config step writes: the new worker count, with the shard count and the workers' disk size pinned at what
 * is deployed. Sizing derives both from the worker count, but an existing cluster must keep its shard count (new
 * tables must colocate with the old), and a persistent disk cannot shrink: Terraform would replace it.
 */
export function scaleOutOverride(current: EnvironmentConfig, derived: EnvironmentConfig, workers: number) {
  return {
    citus: {
      workers,
      shardCount: current.citus.shardCount,
      worker: { dataDiskGb: Math.max(current.citus.worker.dataDiskGb, derived.citus.worker.dataDiskGb) },
    },
  };
}

function readOverrides(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new WorkflowError(`${file} is not valid JSON (${(error as Error).message}); fix it first, nothing was changed`, 2);
  }
}

/** The override file's content with the scale-out merged in, everything else kept. */
export function withScaleOut(file: string, environment: EnvironmentName, override: object): Record<string, unknown> {
  const content = readOverrides(file);
  return { ...content, [environment]: mergeOverrides(content[environment] ?? {}, override) };
}

/**
 * Refuses what scale-out cannot do before anything runs, and returns the override the config step will write and the
 * configuration the run ends with (validated like a deploy would: schema bounds, disk limits).
 */
export function planScaleOut(o: ScaleOutOptions, resuming: boolean): { override: object; target: EnvironmentConfig } {
  const variable = envVarName(o.environment, "CITUS_WORKERS");
  const fromVariable = o.env?.[variable];
  if (fromVariable !== undefined && fromVariable !== "") {
    throw new WorkflowError(`${variable}=${fromVariable} is set and would win over the config file scale-out writes: unset it first`, 2);
  }
  const options = { env: o.env ?? {}, overrideFile: existsSync(o.overrideFile) ? o.overrideFile : undefined };
  const current = loadEnvironment(o.environment, options);
  // Resuming after the config step: the file already says so.
  if (resuming && current.citus.workers === o.workers) return { override: {}, target: current };
  if (o.workers <= current.citus.workers) {
    throw new WorkflowError(
      `${o.environment} has ${current.citus.workers} workers; --workers ${o.workers} adds none. Scale-out only adds: to remove workers, drain them with shardctl (docs/SCALING.md)`,
      2,
    );
  }
  // What sizing would derive for the new count, before the pins.
  const derived = validate(o, { citus: { workers: o.workers } });
  const override = scaleOutOverride(current, derived, o.workers);
  return { override, target: validate(o, override) };
}

function validate(o: ScaleOutOptions, override: object): EnvironmentConfig {
  const dir = mkdtempSync(join(tmpdir(), "scale-out-"));
  try {
    const file = join(dir, "platform.config.json");
    writeFileSync(file, JSON.stringify(withScaleOut(o.overrideFile, o.environment, override)));
    return loadEnvironment(o.environment, { env: o.env ?? {}, overrideFile: file });
  } catch (error) {
    if (error instanceof ConfigError) throw new WorkflowError(`--workers ${o.workers} does not give a valid ${o.environment} configuration, nothing was changed:\n${error.message}`, 2);
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pnpm = (...args: string[]): readonly string[] => ["pnpm", "--silent", ...args];

async function withCoordinator<T>(url: string, run: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "scale-out" });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export function scaleOutSteps(o: ScaleOutOptions, plan: { override: object; target: EnvironmentConfig }): Step[] {
  const { target } = plan;
  const names = platformNames(target);
  const nodes = names.citus.workers.map((w) => ({ name: w.instance, spec: `${w.host}:${names.postgresPort}` }));
  const scoped: CommandSpec["env"] = { PLATFORM_ENVIRONMENTS: o.environment, CHECKPOINT_DISABLE: "1" };
  const resolved = () => loadEnvironment(o.environment, { env: o.env ?? {}, overrideFile: o.overrideFile });
  return [
    {
      name: "config",
      title: `set ${o.environment}.citus.workers to ${o.workers} in ${o.overrideFile}, shard count and disk size pinned`,
      describe: `merges { "${o.environment}": ${JSON.stringify(plan.override)} } into ${o.overrideFile}, keeping the rest`,
      isDone: async () => existsSync(o.overrideFile) && resolved().citus.workers === o.workers,
      run: async (log) => {
        writeFileSync(o.overrideFile, `${JSON.stringify(withScaleOut(o.overrideFile, o.environment, plan.override), null, 2)}\n`);
        const now = resolved().citus;
        if (now.workers !== o.workers) throw new Error(`the config still resolves to ${now.workers} workers after writing ${o.overrideFile}`);
        log(`${o.overrideFile}: ${o.environment}.citus.workers = ${now.workers}, shardCount ${now.shardCount}, worker disks ${now.worker.dataDiskGb} GB (keep this file with your deployment config)`);
      },
    },
    {
      name: "synth",
      title: "synthesize the stack; the policy suite must pass",
      commands: [{ argv: pnpm("--filter", "@platform/infra", "synth"), env: { ...scoped, PLATFORM_CONFIG: o.overrideFile }, cwd: o.root }],
    },
    {
      name: "deploy",
      title: `cdktf deploy ${o.environment}: creates the new workers' VMs, disks and DNS records`,
      commands: [{ argv: pnpm("--filter", "@platform/infra", "exec", "cdktf", "deploy", o.environment, ...(o.yes ? ["--auto-approve"] : [])), env: { ...scoped, PLATFORM_CONFIG: o.overrideFile }, cwd: o.root }],
    },
    {
      name: "add-nodes",
      title: `add the workers the coordinator does not have, of ${nodes.length} (${nodes[0]!.spec} ... ${nodes.at(-1)!.spec})`,
      describe: `for each of the ${nodes.length} workers missing from pg_dist_node: pnpm shardctl add-node <host:port> --yes`,
      isDone: () => withCoordinator(o.citusUrl, async (c) => (await missingNodes(c, nodes.map((n) => n.spec))).length === 0),
      run: (log, exec) => addMissingNodes(o, nodes.map((n) => n.spec), log, exec),
    },
    {
      name: "rebalance",
      title: "rebalance onto the new workers: preflight, plan, progress, row counts verified",
      commands: [{ argv: pnpm("shardctl", "rebalance", ...(o.yes ? ["--yes"] : [])), cwd: o.root }],
    },
    {
      name: "verify",
      title: `every one of the ${o.workers} workers is active and holds shards, and no rebalance is running`,
      describe: "reads pg_dist_node, citus_shards and the rebalance jobs on the coordinator",
      run: (log) => withCoordinator(o.citusUrl, (c) => verifyScaleOut(c, nodes.map((n) => n.spec), log)),
    },
  ];
}

/** `shardctl add-node` for each of `specs` the coordinator does not have (so a rerun adds only what is left). */
export async function addMissingNodes(
  o: Pick<ScaleOutOptions, "citusUrl" | "root">,
  specs: readonly string[],
  log: (line: string) => void,
  exec: (command: CommandSpec) => Promise<void>,
): Promise<void> {
  const missing = await withCoordinator(o.citusUrl, (c) => missingNodes(c, specs));
  log(`${missing.length} to add: ${missing.join(", ")} (a new VM needs its bootstrap to finish first: journalctl -u google-startup-scripts)`);
  // The operator chose these nodes with --workers: adding one moves no data, so it is not asked again (the
  // rebalance after it asks unless --yes).
  for (const spec of missing) await exec({ argv: pnpm("shardctl", "add-node", spec, "--yes"), cwd: o.root });
}

async function missingNodes(c: pg.Client, specs: readonly string[]): Promise<string[]> {
  const { rows } = await c.query<{ spec: string }>("SELECT nodename || ':' || nodeport AS spec FROM pg_dist_node WHERE groupid > 0");
  const present = new Set(rows.map((r) => r.spec));
  return specs.filter((s) => !present.has(s));
}

export async function verifyScaleOut(c: pg.Client, specs: readonly string[], log: (line: string) => void): Promise<void> {
  const { rows } = await c.query<{ spec: string; active: boolean; shouldhaveshards: boolean; placements: number; bytes: string }>(
    `SELECT n.nodename || ':' || n.nodeport AS spec, n.isactive AS active, n.shouldhaveshards,
            count(s.shardid)::int AS placements, coalesce(sum(s.shard_size), 0)::text AS bytes
       FROM pg_dist_node n LEFT JOIN citus_shards s ON s.nodename = n.nodename AND s.nodeport = n.nodeport AND s.citus_table_type = 'distributed'
      WHERE n.groupid > 0 GROUP BY 1, 2, 3`,
  );
  const bySpec = new Map(rows.map((r) => [r.spec, r]));
  const problems = specs.flatMap((spec) => {
    const r = bySpec.get(spec);
    if (!r) return [`${spec} is not a node`];
    if (!r.active) return [`${spec} is not active`];
    if (r.placements === 0) return [`${spec} holds no shards${r.shouldhaveshards ? "" : " (shouldhaveshards is false)"}`];
    return [];
  });
  const running = await c.query("SELECT job_id FROM pg_dist_background_job WHERE state IN ('scheduled', 'running', 'cancelling', 'failing')");
  if (running.rows.length > 0) problems.push(`rebalance job ${running.rows[0].job_id} is still running (shardctl rebalance --attach)`);
  if (problems.length > 0) throw new Error(problems.join("; "));
  const bytes = specs.map((s) => Number(bySpec.get(s)!.bytes));
  const mean = bytes.reduce((a, b) => a + b, 0) / bytes.length;
  log(`${specs.length} workers hold shards; skew (largest over mean, by bytes) ${mean > 0 ? (Math.max(...bytes) / mean).toFixed(2) : "n/a"}`);
}
