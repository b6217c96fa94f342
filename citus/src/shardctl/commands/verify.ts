/** `shardctl verify`: row counts (and checksums) of every distributed table, to keep or compare with a saved snapshot. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { SQL } from "../catalog.js";
import { out, withClient } from "../context.js";
import { ShardctlError, compareVerification, verifySnapshot } from "../operations.js";

export function register(program: Command): void {
  program
    .command("verify")
    .description("row counts (and checksums) of every distributed table")
    .option("--checksum")
    .option("--before <file>", "compare with a snapshot saved by an earlier `verify --json`")
    .option("--json")
    .action((o: { checksum?: boolean; before?: string; json?: boolean }) =>
      withClient(program, async (c) => {
        const tables = (await c.query<{ name: string }>(SQL.distributedTables)).rows.map((r) => r.name);
        const now = await verifySnapshot(c, tables, o.checksum ?? false);
        if (o.before) {
          const problems = compareVerification(JSON.parse(readFileSync(o.before, "utf8")), now);
          if (problems.length > 0) throw new ShardctlError(`differs from ${o.before}: ${problems.join("; ")}`, 5);
          out.line(`matches ${o.before}`);
        }
        if (o.json) out.json(now);
        else for (const [t, v] of Object.entries(now)) out.line(`${t.padEnd(40)} ${String(v.rows).padStart(12)}${v.checksum ? `  ${v.checksum}` : ""}`);
      }),
    );
}
