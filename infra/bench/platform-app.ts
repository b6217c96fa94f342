// The platform app as `pnpm synth` runs it: three environments, synthesized and policy-checked.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { synthesize } from "../src/app.js";
import { checkPolicies } from "../src/policy/index.js";
import { hermeticConfigs } from "../test/helpers.js";

const outdir = mkdtempSync(join(tmpdir(), "bench-platform-"));
const stacks = synthesize(hermeticConfigs(), outdir);
const violations = stacks.flatMap((s) => checkPolicies(s)).length;
rmSync(outdir, { recursive: true, force: true });
if (violations > 0) throw new Error(`${violations} policy violations`);
process.stdout.write(JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS }));
