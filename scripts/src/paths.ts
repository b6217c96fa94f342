/** Where the SRE entry points keep and read their files: the repository root, run state, the operator override file. */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_OVERRIDE_FILE } from "@platform/config";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Resumable state of deploy and scale-out runs (git-ignored): PLATFORM_STATE_DIR or .platform/ at the root. */
export const stateFile = (workflow: string, environment: string): string =>
  join(process.env.PLATFORM_STATE_DIR ?? join(REPO_ROOT, ".platform"), `${workflow}-${environment}.json`);

/** The operator override file the config reads: PLATFORM_CONFIG or platform.config.json at the root. */
export const overrideFile = (): string => resolve(process.env.PLATFORM_CONFIG ?? DEFAULT_OVERRIDE_FILE);
