/**
 * How every command-line tool of the platform ends: one line on stderr and an exit code, whichever package it lives
 * in (shardctl and migrate in citus, deploy and scale-out in scripts, cost in infra, show in config). A package of its
 * own that depends on nothing of ours, so any package may use it without taking on the config.
 */
import type { Command } from "commander";

/**
 * Parses and runs `program`, ending with one line on stderr. An error that carries its own `exitCode` (WorkflowError,
 * the cost estimate's CostError, ShardctlError, the config's ConfigError with 2) exits with it, anything else with
 * `otherErrorExit`; DEBUG=1 adds the stack. Output piped into a reader that stops early (`| head`) ends the tool with
 * 0, not a stack trace.
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
    const exit = typeof own === "number" ? own : otherErrorExit;
    console.error(`${name}: ${withServerAdvice(error)}`);
    // The one line is for the operator; DEBUG=1 adds the stack for whoever debugs the tool itself.
    if (process.env.DEBUG && error instanceof Error && error.stack) console.error(error.stack);
    process.exit(exit);
  }
}

/**
 * Runs an entry point that is not a commander program (the synthesis of each layer, `pnpm synth`) and ends it the same
 * way: `work` returning false (it has reported why) exits 1; an error that carries its own `exitCode` (the config's
 * ConfigError: 2) exits with it after one line, anything else with 1; DEBUG=1 adds the stack.
 */
export async function runEntry(name: string, work: () => boolean | Promise<boolean>): Promise<void> {
  try {
    if (!(await work())) process.exit(1);
  } catch (error) {
    const own = (error as { exitCode?: unknown }).exitCode;
    // A construct refusing its input (a name too long, a replica count below 2) names the problem in its message.
    console.error(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    if (process.env.DEBUG && error instanceof Error && error.stack) console.error(error.stack);
    process.exit(typeof own === "number" ? own : 1);
  }
}

/**
 * An error's message with what PostgreSQL said besides it: a database error's detail and hint (Citus's "copy
 * reference tables first with replicate_reference_tables()") are often the part that says what to do.
 */
export function withServerAdvice(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { detail, hint } = error as { detail?: unknown; hint?: unknown };
  return [error.message, typeof detail === "string" && detail ? `detail: ${detail}` : "", typeof hint === "string" && hint ? `hint: ${hint}` : ""].filter(Boolean).join("; ");
}
