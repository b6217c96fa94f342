/**
 * What every shardctl command shares: where it prints, how it reads host:port and numbers, how it connects to the
 * coordinator, and how it asks before it changes anything.
 */
import { createInterface } from "node:readline/promises";
import { type Command, InvalidArgumentError } from "commander";
import pg from "pg";
import { parseNode } from "./analysis.js";
import { ShardctlError } from "./operations.js";

export interface Output {
  line(text: string): void;
  json(value: unknown): void;
}

export const out: Output = { line: (t) => console.log(t), json: (v) => console.log(JSON.stringify(v, null, 2)) };

/** host:port from the command line; a malformed one is bad input (exit 2). */
export function node(spec: string): { host: string; port: number } {
  try {
    return parseNode(spec);
  } catch (error) {
    throw new ShardctlError((error as Error).message, 2);
  }
}

export const number = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0 (got "${v}")`);
  return n;
};

/** The coordinator's connection string: --coordinator on the program, or CITUS_URL. */
export function coordinatorUrl(program: Command): string {
  const url = program.opts<{ coordinator?: string }>().coordinator ?? process.env.CITUS_URL;
  if (!url) throw new ShardctlError("no coordinator: pass --coordinator postgresql://... or set CITUS_URL", 2);
  return url;
}

export async function connect(url: string, applicationName = "shardctl"): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  try {
    await client.connect();
  } catch (error) {
    throw new ShardctlError(`cannot connect to the coordinator: ${(error as Error).message}`, 4);
  }
  const citus = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  if (citus.rows.length === 0) {
    await client.end();
    throw new ShardctlError("the database has no citus extension: point --coordinator at the Citus coordinator's database", 2);
  }
  return client;
}

/** Runs `run` with a connection to the coordinator, closed afterwards. `url` lets a command open a second one. */
export async function withClient(program: Command, run: (client: pg.Client, url: string) => Promise<void>): Promise<void> {
  const url = coordinatorUrl(program);
  const client = await connect(url);
  try {
    await run(client, url);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Every mutating command asks the same way: `--yes` answers for the operator; without it a terminal must be there to
 * ask, and a run with no terminal (a pipeline that forgot --yes) is refused before anything changes.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new ShardctlError("confirmation needed: run in a terminal or pass --yes", 2);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new ShardctlError("not confirmed: nothing was changed", 3);
}

/** The options every mutating command takes. */
export interface MutationFlags {
  readonly dryRun?: boolean;
  readonly verify: boolean;
  readonly checksum?: boolean;
  readonly yes?: boolean;
}

export const mutation = (cmd: Command) =>
  cmd
    .option("--dry-run", "print the SQL, change nothing")
    .option("--yes", "do not ask for confirmation (needed without a terminal)")
    .option("--no-verify", "skip row counts before and after")
    .option("--checksum", "also compare content checksums (slow; only meaningful while nothing writes)");
