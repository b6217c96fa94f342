import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import { WorkflowError, formatCommand, runWorkflow, type Step, type WorkflowState } from "../src/workflow.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const stateIn = () => join(scratch.make("workflow-"), "state.json");
const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as WorkflowState;
const node = (code: string) => ({ argv: [process.execPath, "-e", code] });

/** Steps that count their runs; `failing` decides whether b fails this time. */
function counted(failing: { b: boolean }) {
  const runs = { a: 0, b: 0, c: 0 };
  const steps: Step[] = [
    { name: "a", title: "first", run: async () => void runs.a++ },
    {
      name: "b",
      title: "second",
      run: async () => {
        runs.b++;
        if (failing.b) throw new Error("the cloud said no");
      },
    },
    { name: "c", title: "third", run: async () => void runs.c++ },
  ];
  return { runs, steps };
}

describe("resumable workflow steps", () => {
  it("runs the steps in order and records each, then the end", async () => {
    const file = stateIn();
    const { runs, steps } = counted({ b: false });
    const lines: string[] = [];
    await runWorkflow({ workflow: "test", environment: "dev", params: { n: 1 }, steps, stateFile: file, log: (l) => lines.push(l) });
    expect(runs).toEqual({ a: 1, b: 1, c: 1 });
    const state = read(file);
    expect(Object.keys(state.steps)).toEqual(["a", "b", "c"]);
    expect(state.finishedAt).toBeDefined();
    expect(lines.at(-1)).toBe("test dev: all 3 steps done");
  });

  it("stops at a failed step, says how to resume, and resumes there without redoing the steps before", async () => {
    const file = stateIn();
    const failing = { b: true };
    const { runs, steps } = counted(failing);
    const run = () => runWorkflow({ workflow: "test", environment: "dev", params: { n: 1 }, steps, stateFile: file, log: () => {} });
    const error = await run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowError);
    expect((error as WorkflowError).exitCode).toBe(4);
    expect((error as Error).message).toMatch(/\[2\/3\] b failed: the cloud said no\nnot run: c\. Fix the cause, then run the same command again: it resumes at b/);
    expect(runs).toEqual({ a: 1, b: 1, c: 0 });
    expect(read(file).steps.b).toMatchObject({ status: "failed", error: "the cloud said no" });
    expect(read(file).finishedAt).toBeUndefined();

    failing.b = false;
    await run();
    expect(runs).toEqual({ a: 1, b: 2, c: 1 });
    expect(read(file).finishedAt).toBeDefined();
  });

  it("fails a step on a command's exit code, and does not run the step's later commands", async () => {
    const file = stateIn();
    const marker = join(scratch.make("marker-"), "ran");
    const steps: Step[] = [{ name: "cmd", title: "commands", commands: [node("process.exit(3)"), node(`require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`)] }];
    await expect(runWorkflow({ workflow: "test", environment: "dev", params: {}, steps, stateFile: file, log: () => {} })).rejects.toThrow(/exited with 3/);
    expect(existsSync(marker)).toBe(false);
  });

  it("records a step whose outcome already holds as done without running it", async () => {
    const file = stateIn();
    let ran = false;
    const lines: string[] = [];
    const steps: Step[] = [{ name: "x", title: "x", isDone: async () => true, run: async () => void (ran = true) }];
    await runWorkflow({ workflow: "test", environment: "dev", params: {}, steps, stateFile: file, log: (l) => lines.push(l) });
    expect(ran).toBe(false);
    expect(lines).toContain("[1/1] x: already so, nothing to do");
    expect(read(file).steps.x!.status).toBe("done");
  });

  it("refuses another run while one with other parameters is unfinished, unless --reset", async () => {
    const file = stateIn();
    const { steps } = counted({ b: true });
    await runWorkflow({ workflow: "test", environment: "dev", params: { workers: 24 }, steps, stateFile: file, log: () => {} }).catch(() => {});
    const other = counted({ b: false });
    const refused = await runWorkflow({ workflow: "test", environment: "dev", params: { workers: 30 }, steps: other.steps, stateFile: file, log: () => {} }).catch((e: unknown) => e);
    expect((refused as WorkflowError).exitCode).toBe(3);
    expect((refused as Error).message).toMatch(/an unfinished test of dev with \{"workers":24\}.*pass --reset to abandon it/);
    expect(other.runs.a).toBe(0);
    await runWorkflow({ workflow: "test", environment: "dev", params: { workers: 30 }, steps: other.steps, stateFile: file, reset: true, log: () => {} });
    expect(other.runs).toEqual({ a: 1, b: 1, c: 1 });
    expect(read(file).params).toEqual({ workers: 30 });
  });

  it("refuses a state file it cannot read, naming it, instead of starting over", async () => {
    const file = stateIn();
    writeFileSync(file, "{ half written");
    const { runs, steps } = counted({ b: false });
    const error = await runWorkflow({ workflow: "test", environment: "dev", params: {}, steps, stateFile: file, log: () => {} }).catch((e: unknown) => e);
    expect((error as WorkflowError).exitCode).toBe(3);
    expect((error as Error).message).toContain(`state file ${file} is not readable JSON`);
    expect(runs.a).toBe(0);
  });

  it("a dry run prints every step and command, runs nothing and writes no state", async () => {
    const file = stateIn();
    const lines: string[] = [];
    const steps: Step[] = [{ name: "deploy", title: "apply", commands: [{ argv: ["cdktf", "deploy", "dev"], env: { PLATFORM_ENVIRONMENTS: "dev" } }] }];
    await runWorkflow({ workflow: "test", environment: "dev", params: {}, steps, stateFile: file, dryRun: true, log: (l) => lines.push(l), exec: () => Promise.reject(new Error("ran")) });
    expect(lines).toEqual(["test dev --dry-run: the steps it would run, in order", "1. deploy: apply", "     $ PLATFORM_ENVIRONMENTS=dev cdktf deploy dev"]);
    expect(existsSync(file)).toBe(false);
  });

  it("never prints connection strings or passwords given to a command", () => {
    const shown = formatCommand({ argv: ["pnpm", "migrate"], env: { DATABASE_URL: "postgresql://m:hunter2@db/p", PGPASSWORD: "hunter2", MODE: "x y" } });
    expect(shown).toBe("DATABASE_URL=*** PGPASSWORD=*** MODE='x y' pnpm migrate");
  });
});
