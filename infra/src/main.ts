/**
 * The CDKTF app: one stack per environment. `cdktf synth` / `cdktf deploy <env>` run this through cdktf.json.
 * Synthesis fails (exit 1) when the policy suite finds a violation, so a stack that breaks a security invariant never
 * reaches `terraform apply`. The root `pnpm synth` runs the same synthesis (src/synth.ts) beside the other layers.
 */
import { runEntry } from "@platform/cli";
import { loadEnvironment } from "@platform/config";
import { selectedEnvironments, synthesizeStacks } from "./synth.js";

await runEntry("synth", () => synthesizeStacks(selectedEnvironments().map((name) => loadEnvironment(name)), process.env.CDKTF_OUTDIR ?? "cdktf.out"));
