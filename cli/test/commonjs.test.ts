// requireCommonJs (src/commonjs.ts) under the real runner, tsx, in a child process: what the loaded files saw, and
// that the runner's hook and source maps are back afterwards, also when a file throws while it loads.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const fixture = fileURLToPath(new URL("./fixtures/commonjs.ts", import.meta.url));

describe("requireCommonJs (@platform/cli/commonjs)", () => {
  const result = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", fixture], { encoding: "utf8" })) as {
    sourceMapsBefore: boolean;
    loaded: { main: { sourceMaps: boolean; runnersLoader: boolean }; dep: { sourceMaps: boolean; runnersLoader: boolean } };
    failure: string;
    restored: boolean;
  };

  it("loads .js and .cjs files past the runner's require hook, with source maps off", () => {
    // tsx turns source maps on; without that the check below would pass for nothing.
    expect(result.sourceMapsBefore).toBe(true);
    expect(result.loaded).toEqual({ main: { sourceMaps: false, runnersLoader: false }, dep: { sourceMaps: false, runnersLoader: false } });
  });

  it("gives the runner's hooks and source maps back, also after a file that throws while it loads", () => {
    expect(result.failure).toBe("broken on load");
    expect(result.restored).toBe(true);
  });
});
