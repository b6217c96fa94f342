import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ScratchDirs {
  /** A new empty directory under the system's temporary directory, its name starting with `prefix`. */
  make(prefix: string): string;
  /** Removes every directory `make` returned (and what is in it); safe to call more than once. */
  removeAll(): void;
}

/**
 * Throwaway directories for one test file, removed together when its tests end, so a suite run by CI again and again
 * leaves nothing in /tmp (seven test files left about 40 directories a run before this):
 *
 *   const scratch = scratchDirs();
 *   afterAll(() => scratch.removeAll());
 *   const state = join(scratch.make("workflow-"), "state.json");
 */
export function scratchDirs(): ScratchDirs {
  const made: string[] = [];
  return {
    make(prefix) {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    removeAll() {
      for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
