/**
 * Checkov over what `pnpm synth` wrote: `tsx infra/src/policy/checkov-cli.ts [env...]` (every environment by
 * default). Prints each stack's verdict and every skip with its reason; exit 1 on a failed check, a stale skip or
 * a resource Checkov did not evaluate, 2 when a stack has not been synthesized, 3 when Checkov cannot be had.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ENVIRONMENT_NAMES } from "@platform/config";
import type { TerraformJson } from "../app.js";
import { checkovProblems, checkovSummary, installCheckov, runCheckov } from "./checkov.js";

const outdir = process.env.CDKTF_OUTDIR ?? fileURLToPath(new URL("../../cdktf.out", import.meta.url));
const names = process.argv.length > 2 ? process.argv.slice(2) : [...ENVIRONMENT_NAMES];
const stacks = names.map((name) => {
  const file = join(outdir, "stacks", name, "cdk.tf.json");
  if (!existsSync(file)) {
    console.error(`checkov: no ${file}; run pnpm synth first`);
    process.exit(2);
  }
  return { name, json: JSON.parse(readFileSync(file, "utf8")) as TerraformJson };
});

const checkov = installCheckov();
if (!("path" in checkov)) {
  console.error(`checkov: cannot be had here: ${checkov.unavailable}`);
  process.exit(3);
}
const problems: string[] = [];
for (const verdict of runCheckov(checkov.path, stacks)) {
  console.log(checkovSummary(verdict));
  for (const s of verdict.skipped) console.log(`  skipped ${s.checkId} on ${s.address}: ${s.reason}`);
  problems.push(...checkovProblems(verdict));
}
for (const problem of problems) console.error(problem);
process.exit(problems.length > 0 ? 1 : 0);
