// How every platform CLI ends, run for real in child processes: exit codes, one line on stderr, no stack traces.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const tool = fileURLToPath(new URL("./fixtures/tool.ts", import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[], options: { env?: Record<string, string>; stopReadingAfter?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", tool, ...args], { env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      // A reader like `head` that has what it wants and closes the pipe.
      if (options.stopReadingAfter !== undefined && stdout.length >= options.stopReadingAfter) child.stdout.destroy();
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the shared CLI ending (@platform/cli)", () => {
  it("ends with 0 and no stack trace when the reader of its output stops early (| head)", async () => {
    const r = await run(["flood"], { stopReadingAfter: 100 });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
  });

  it("exits with an error's own exit code, and one line on stderr naming the tool", async () => {
    const r = await run(["own-exit"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe("tool: verification failed: 3 shards differ\n");
  });

  it("exits 2 on a config error, with the field in the message", async () => {
    const r = await run(["config"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('tool: production: citus.workers: expected a number (got "many")\n');
  });

  it("exits with the tool's code for any other failure (4 by default, 2 when the tool says so), without a stack", async () => {
    expect(await run(["crash"])).toMatchObject({ code: 4, stderr: "tool: connection refused\n" });
    expect(await run(["crash"], { env: { OTHER_EXIT: "2" } })).toMatchObject({ code: 2, stderr: "tool: connection refused\n" });
  });

  it("keeps what the database server advised: a database error's hint (and detail) follow its message on the one line", async () => {
    const r = await run(["server-error"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      "tool: there are missing reference tables on some nodes; hint: Copy reference tables first with replicate_reference_tables() or use citus_rebalance_start() that will do it automatically.\n",
    );
  });

  it("adds the stack only with DEBUG=1", async () => {
    const r = await run(["crash"], { env: { DEBUG: "1" } });
    expect(r.code).toBe(4);
    expect(r.stderr.split("\n")[0]).toBe("tool: connection refused");
    expect(r.stderr).toMatch(/Error: connection refused\n\s+at /);
  });

  it("exits 2 on bad usage and 0 on --help", async () => {
    const bad = await run(["flood", "--no-such-option"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--no-such-option'");
    expect((await run(["--help"])).code).toBe(0);
  });
});
