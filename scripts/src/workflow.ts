/**
 * Resumable, ordered steps for the SRE entry points (deploy, scale-out). Each step's outcome is written to a state
 * file as soon as it ends, so that:
 * - a step that failed stops the run: nothing after it runs;
 * - running the same command again starts at the failed step, skipping the ones already done;
 * - a different run (other parameters) is refused while one is unfinished, unless --reset.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { userInfo } from "node:os";

export interface CommandSpec {
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export interface Step {
  /** Stable id, recorded in the state file. */
  readonly name: string;
  readonly title: string;
  /** Commands run in order; the step fails at the first non-zero exit. */
  readonly commands?: readonly CommandSpec[];
  /** Logic in-process (a config change, a check), after the commands; it may run further commands. Throw to fail. */
  readonly run?: (log: (line: string) => void, exec: (command: CommandSpec) => Promise<void>) => Promise<void>;
  /** Shown by --dry-run for a step with `run`. */
  readonly describe?: string;
  /** True when the world already is as the step would leave it (it is then recorded as done without running). */
  readonly isDone?: () => Promise<boolean>;
}

interface StepRecord {
  status: "done" | "failed";
  at: string;
  error?: string;
}
export interface WorkflowState {
  workflow: string;
  environment: string;
  params: Record<string, unknown>;
  startedAt: string;
  startedBy: string;
  finishedAt?: string;
  steps: Record<string, StepRecord>;
}

export class WorkflowError extends Error {
  constructor(
    message: string,
    /** 2 bad input, 3 refused, 4 a step failed */
    readonly exitCode: 2 | 3 | 4,
  ) {
    super(message);
  }
}

export interface WorkflowOptions {
  readonly workflow: string;
  readonly environment: string;
  readonly params: Record<string, unknown>;
  readonly steps: readonly Step[];
  readonly stateFile: string;
  readonly dryRun?: boolean;
  /** Forget an unfinished run of other parameters and start over. */
  readonly reset?: boolean;
  readonly log?: (line: string) => void;
  readonly exec?: (command: CommandSpec) => Promise<number>;
}

/** Values of these variables (connection strings, passwords) are never printed. */
const SECRET_ENV = /URL|PASSWORD|SECRET|TOKEN|KEY/i;
const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`);
export const formatCommand = (c: CommandSpec): string =>
  [...Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${SECRET_ENV.test(k) ? "***" : quote(v)}`), ...c.argv.map(quote)].join(" ") + (c.cwd ? `   (in ${c.cwd})` : "");

/** Runs a command with the terminal attached (prompts, progress bars) and resolves its exit code. */
export function execInherit(command: CommandSpec): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command.argv[0]!, command.argv.slice(1), { stdio: "inherit", cwd: command.cwd, env: { ...process.env, ...command.env } });
    child.on("error", () => resolve(127));
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export function readState(file: string): WorkflowState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as WorkflowState;
  } catch (error) {
    throw new WorkflowError(`state file ${file} is not readable JSON (${(error as Error).message}): inspect it (it records which steps are done), then move it aside to start over`, 3);
  }
}

function writeState(file: string, state: WorkflowState): void {
  mkdirSync(dirname(file), { recursive: true });
  // Written whole then renamed: an interrupted write never leaves half a state file.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

export async function runWorkflow(o: WorkflowOptions): Promise<WorkflowState | undefined> {
  const log = o.log ?? ((line: string) => console.log(line));
  const exec = o.exec ?? execInherit;
  const names = new Set(o.steps.map((s) => s.name));
  if (names.size !== o.steps.length) throw new Error(`${o.workflow}: step names must be unique`);

  if (o.dryRun) {
    log(`${o.workflow} ${o.environment} --dry-run: the steps it would run, in order`);
    o.steps.forEach((s, i) => {
      log(`${i + 1}. ${s.name}: ${s.title}`);
      for (const c of s.commands ?? []) log(`     $ ${formatCommand(c)}`);
      if (s.describe) log(`     ${s.describe}`);
    });
    return undefined;
  }

  let state = readState(o.stateFile);
  if (state && !state.finishedAt && JSON.stringify(state.params) !== JSON.stringify(o.params)) {
    if (!o.reset) {
      throw new WorkflowError(
        `an unfinished ${state.workflow} of ${state.environment} with ${JSON.stringify(state.params)} (started ${state.startedAt} by ${state.startedBy}) is recorded in ${o.stateFile}: ` +
          "finish it by running that command again, or pass --reset to abandon it",
        3,
      );
    }
    log(`abandoning the unfinished run with ${JSON.stringify(state.params)} (--reset)`);
    state = undefined;
  }
  if (!state || state.finishedAt) {
    state = { workflow: o.workflow, environment: o.environment, params: o.params, startedAt: new Date().toISOString(), startedBy: userInfo().username, steps: {} };
  } else {
    log(`resuming the ${o.workflow} started ${state.startedAt} by ${state.startedBy} (${o.stateFile})`);
  }
  writeState(o.stateFile, state);

  for (const [i, step] of o.steps.entries()) {
    const label = `[${i + 1}/${o.steps.length}] ${step.name}`;
    if (state.steps[step.name]?.status === "done") {
      log(`${label}: done at ${state.steps[step.name]!.at}, skipped`);
      continue;
    }
    try {
      if (await step.isDone?.()) {
        log(`${label}: already so, nothing to do`);
      } else {
        log(`${label}: ${step.title}`);
        const run = async (command: CommandSpec) => {
          log(`  $ ${formatCommand(command)}`);
          const code = await exec(command);
          if (code !== 0) throw new Error(`\`${command.argv.join(" ")}\` exited with ${code}`);
        };
        for (const command of step.commands ?? []) await run(command);
        await step.run?.((line) => log(`  ${line}`), run);
      }
      state.steps[step.name] = { status: "done", at: new Date().toISOString() };
      writeState(o.stateFile, state);
    } catch (error) {
      const message = (error as Error).message;
      state.steps[step.name] = { status: "failed", at: new Date().toISOString(), error: message };
      writeState(o.stateFile, state);
      const rest = o.steps.slice(i + 1).map((s) => s.name);
      throw new WorkflowError(
        `${label} failed: ${message}\n` +
          `${rest.length > 0 ? `not run: ${rest.join(", ")}. ` : ""}Fix the cause, then run the same command again: it resumes at ${step.name} (state: ${o.stateFile}).`,
        4,
      );
    }
  }
  state.finishedAt = new Date().toISOString();
  writeState(o.stateFile, state);
  log(`${o.workflow} ${o.environment}: all ${o.steps.length} steps done`);
  return state;
}
