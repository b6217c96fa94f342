/**
 * The frame every tenantctl command runs in: the databases from the environment, the operations log (shardctl's,
 * platform_ops.operations in the home database), the tenants a command names (one, --batch file, --all), waves with
 * bounded concurrency and a progress display, and the exit code of the worst failure.
 */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { MultiBar, Presets } from "cli-progress";
import type { ClientBase } from "pg";
import { type AbandonedOperation, SIGNALS, closeAbandonedOperations, describeAbandoned, finishOperation, startOperation } from "../shardctl/operations.js";
import { resolveTenant } from "./catalog.js";
import { Databases, type Output, TenantctlError, out, redact } from "./context.js";
import type { MoveOptions } from "./engine.js";

export const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number >= 1 (got "${v}")`);
  return n;
};

export interface CommonFlags {
  readonly dryRun?: boolean;
  readonly quietTimeout: number;
  readonly cutoverAttempts: number;
  readonly lagChanges: number;
}

/** Options shared by the commands that cut over. */
export const cutoverOptions = (cmd: Command) =>
  cmd
    .option("--dry-run", "print what would be done, change nothing")
    .option("--quiet-timeout <ms>", "how long the cutover waits for the tenant's in-flight transactions", positive("--quiet-timeout"), 2000)
    .option("--cutover-attempts <n>", "cutover tries before giving up (each failure rolls back the fence)", positive("--cutover-attempts"), 3)
    .option("--lag-changes <n>", "cut over once a catch-up pass applies at most this many changes", positive("--lag-changes"), 200);

export function moveOptions(flags: CommonFlags, output: Output = out, stop?: AbortSignal): MoveOptions {
  return {
    out: output,
    ...(stop ? { stop } : {}),
    quietTimeoutMs: flags.quietTimeout,
    cutoverAttempts: flags.cutoverAttempts,
    cutoverLagChanges: flags.lagChanges,
    ...(flags.dryRun ? { dryRun: true } : {}),
    ...(process.env.TENANTCTL_TEST_PAUSE_AT ? { pauseAt: process.env.TENANTCTL_TEST_PAUSE_AT } : {}),
  };
}

/** The tenant references a command names: one argument, a file of ids or codes (one a line, # comments), or every tenant. */
export async function tenantRefs(dbs: Databases, one: string | undefined, flags: { batch?: string; all?: boolean }): Promise<string[]> {
  const given = [one !== undefined, flags.batch !== undefined, flags.all === true].filter(Boolean).length;
  if (given !== 1) throw new TenantctlError("name the tenants one way: a tenant id or code, --batch <file>, or --all", 2);
  if (one !== undefined) return [one];
  if (flags.batch !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.batch, "utf8");
    } catch (error) {
      throw new TenantctlError(`cannot read --batch ${flags.batch}: ${(error as Error).message}`, 2);
    }
    const refs = text.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
    if (refs.length === 0) throw new TenantctlError(`--batch ${flags.batch} names no tenant`, 2);
    return refs;
  }
  const home = await dbs.home();
  return (await home.pool.query<{ id: string }>("SELECT id::text FROM platform.tenants ORDER BY created_at, id")).rows.map((r) => r.id);
}

/**
 * Runs `work` for each tenant, at most `concurrency` at once, recording the run in the operations log, and exits with
 * the worst failure's code (a partial wave is reported tenant by tenant; rerunning the same command resumes it).
 * Ctrl-C, SIGTERM or SIGHUP stop the wave without leaving a tenant fenced: no tenant starts after it, and each in flight
 * stops at its next safe point (see MoveOptions.stop) or, in a cutover, goes to its end. A second signal exits at once.
 */
export async function runWave<R>(
  command: string,
  args: Record<string, unknown>,
  refs: readonly string[],
  concurrency: number,
  options: { dryRun?: boolean },
  work: (dbs: Databases, tenant: { id: string; code: string }, output: Output, stop: AbortSignal) => Promise<R>,
  summarize: (results: R[]) => string[],
): Promise<void> {
  const dbs = new Databases(process.env, Math.max(4, concurrency * 4));
  const home = await dbs.home().catch(async (error) => {
    await dbs.close();
    throw error;
  });
  // The run holds one session of its own on the home database until it ends and records that session with the
  // operation: a tenantctl that is killed (or whose terminal or machine goes) leaves a row still 'running' whose session
  // is gone, which both status commands list as ABANDONED and the next run closes. A pooled connection cannot stand
  // for the run: the pool closes idle ones while the run goes on.
  const held = await home.client().catch(async (error) => {
    await dbs.close();
    throw error;
  });
  let operation: number;
  let closed: AbandonedOperation[];
  try {
    closed = await closeAbandonedOperations(held, { shardctlLockHeld: false });
    operation = await startOperation(held, `tenantctl ${command}`, { ...args, tenants: refs.length <= 20 ? refs : `${refs.length} tenants` }, { heldSession: true });
  } catch (error) {
    await held.end().catch(() => {});
    await dbs.close();
    throw error;
  }
  for (const line of describeAbandoned(closed, true)) out.line(line);
  // Node's default for these signals kills the process at once: a tenant in its cutover would stay fenced (refused
  // everywhere) until someone ran the command again.
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      out.line(`${signal} again: exiting now. A tenant in its cutover stays fenced until the same command runs again (tenantctl status shows each move's phase)`);
      process.exit(130);
    }
    stop.abort(signal);
    out.line(`${signal}: stopping. No tenant starts from now on; each in flight stops where it is served, and a cutover under way goes to its end. ${signal} again exits at once`);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  const interactive = process.stdout.isTTY && refs.length > 1;
  const bars = interactive ? new MultiBar({ format: `${command} {bar} {value}/{total} tenants | {status}`, hideCursor: true }, Presets.shades_classic) : undefined;
  const bar = bars?.create(refs.length, 0, { status: "" });
  // Above a bar, lines are logged past it; without a terminal they are plain lines.
  const output: Output = bars ? { line: (t) => bars.log(`${t}\n`) } : out;
  const results: R[] = [];
  const failures: { ref: string; error: Error & { exitCode?: number } }[] = [];
  let next = 0;
  let done = 0;
  const inFlight = new Set<string>();
  const workers = Array.from({ length: Math.min(concurrency, refs.length) }, async () => {
    while (next < refs.length && !stop.signal.aborted) {
      const ref = refs[next++]!;
      inFlight.add(ref);
      bar?.update(done, { status: `in flight: ${[...inFlight].slice(0, 4).join(", ")}${inFlight.size > 4 ? ", ..." : ""}` });
      try {
        const tenant = await resolveTenant(home, ref);
        results.push(await work(dbs, tenant, output, stop.signal));
      } catch (error) {
        const e = error as Error & { exitCode?: number };
        e.message = redact(e.message);
        failures.push({ ref, error: e });
        output.line(`tenant ${ref}: FAILED (exit ${e.exitCode ?? 4}): ${e.message}`);
      } finally {
        inFlight.delete(ref);
        done++;
        bar?.update(done, { status: failures.length ? `${failures.length} failed` : "" });
      }
    }
  });
  await Promise.all(workers);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  bars?.stop();
  const interrupted = stop.signal.aborted ? String(stop.signal.reason) : undefined;
  const notStarted = refs.length - next;
  const lines = summarize(results);
  for (const line of lines) out.line(line);
  const worst = failures.reduce((code, f) => Math.max(code, f.error.exitCode ?? 4), 0);
  const record = (client: ClientBase) =>
    finishOperation(client, operation, options.dryRun && !interrupted ? "dry-run" : failures.length || interrupted ? "failed" : "succeeded", {
      ...(interrupted ? { interrupted, notStarted } : {}),
      results: results.length <= 200 ? results : `${results.length} results`,
      failures: failures.map((f) => ({ tenant: f.ref, exit: f.error.exitCode ?? 4, error: f.error.message.slice(0, 500) })),
      summary: lines,
    });
  try {
    // On the held session; if it was lost (a network cut, a restart of home), on a pooled one: the row may have been
    // closed as abandoned meanwhile, and this records how the run really ended.
    await record(held).catch(async () => {
      const pooled = await home.pool.connect();
      try {
        await record(pooled);
      } finally {
        pooled.release();
      }
    });
  } finally {
    await held.end().catch(() => {});
    await dbs.close();
  }
  if (interrupted) {
    throw new TenantctlError(
      `interrupted (${interrupted}): ${results.length} of ${refs.length} tenants done, ${failures.length} stopped or failed (above), ${notStarted} not started. ` +
        "Each stopped at a safe point, none inside a cutover; run the same command again to resume",
      4,
    );
  }
  if (failures.length > 0) {
    const first = failures[0]!;
    throw new TenantctlError(refs.length === 1 ? first.error.message : `${failures.length} of ${refs.length} tenants failed (first: ${first.ref}: ${first.error.message}); run the same command again to resume them`, (worst || 4) as 2 | 3 | 4 | 5);
  }
}

/** p-th percentile of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
