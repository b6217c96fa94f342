/**
 * `cdk8s synth` inside k8s/ runs this: every environment's manifests into k8s/dist/<env>/ (src/synth.ts). The root
 * `pnpm synth` runs the same beside the other layers, in one process.
 */
import { ConfigError, loadAllEnvironments } from "@platform/config";
import { synthesizeManifests } from "./synth.js";

try {
  if (!synthesizeManifests(loadAllEnvironments(), process.env.K8S_OUTDIR ?? "dist")) process.exit(1);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  // A construct refusing its input (a name too long, a replica count below 2) names the problem in its message.
  console.error(`k8s synth: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.DEBUG) console.error(error);
  process.exit(1);
}
