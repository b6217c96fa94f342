/** What the SRE entry points share: where state lives, and how they end (one line on stderr, an exit code). */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { ConfigError, DEFAULT_OVERRIDE_FILE } from "@platform/config";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Resumable state of deploy and scale-out runs (git-ignored): PLATFORM_STATE_DIR or .platform/ at the root. */
export const stateFile = (workflow: string, environment: string): string =>
  join(process.env.PLATFORM_STATE_DIR ?? join(REPO_ROOT, ".platform"), `${workflow}-${environment}.json`);

/** The operator override file the config reads: PLATFORM_CONFIG or platform.config.json at the root. */
export const overrideFile = (): string => resolve(process.env.PLATFORM_CONFIG ?? DEFAULT_OVERRIDE_FILE);

/**
 * Parses and runs `program`, ending with one line on stderr. An error that carries its own `exitCode` (WorkflowError,
 * the cost estimate's CostError) exits with it, a config error with 2, anything else with `otherErrorExit`.
 */
export async function main(name: string, program: Command, otherErrorExit: 2 | 4 = 4): Promise<void> {
  // Output piped into `head` that stops reading is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
  program.exitOverride();
  try {
    await program.parseAsync();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version" || code === "commander.help") process.exit(0);
    if (code?.startsWith("commander.")) process.exit(2);
    const own = (error as { exitCode?: unknown }).exitCode;
    const exit = typeof own === "number" ? own : error instanceof ConfigError ? 2 : otherErrorExit;
    console.error(`${name}: ${(error as Error).message}`);
    process.exit(exit);
  }
}
