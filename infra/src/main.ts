/**
 * The CDKTF app: one stack per environment. `cdktf synth` / `cdktf deploy <env>` run this through cdktf.json.
 * Synthesis fails (exit 1) when the policy suite finds a violation, so a stack that breaks a security invariant never
 * reaches `terraform apply`. The root `pnpm synth` runs the same synthesis (src/synth.ts) beside the other layers.
 */
import { ConfigError, loadEnvironment } from "@platform/config";
import { selectedEnvironments, synthesizeStacks } from "./synth.js";

try {
  const configs = selectedEnvironments().map((name) => loadEnvironment(name));
  if (!synthesizeStacks(configs, process.env.CDKTF_OUTDIR ?? "cdktf.out")) process.exit(1);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  // A construct refusing its input (a name too long, a replica count below 2) names the problem in its message.
  console.error(`synth: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.DEBUG) console.error(error);
  process.exit(1);
}
