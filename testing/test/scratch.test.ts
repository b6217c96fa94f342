import { existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDirs } from "../src/index.js";

describe("scratchDirs", () => {
  it("makes empty directories under the temporary directory and removes every one, with its contents, at once", () => {
    const scratch = scratchDirs();
    const a = scratch.make("scratch-test-");
    const b = scratch.make("scratch-test-");
    expect(a).not.toBe(b);
    expect(dirname(a)).toBe(tmpdir());
    expect(basename(a)).toMatch(/^scratch-test-/);
    writeFileSync(join(a, "state.json"), "{}");
    scratch.removeAll();
    expect([existsSync(a), existsSync(b)]).toEqual([false, false]);
    scratch.removeAll(); // twice is harmless
  });
});
