/** Writes monitoring/dist/<env>/ (src/synth.ts). The root `pnpm synth` runs the same beside the other layers. */
import { ConfigError, loadAllEnvironments } from "@platform/config";
import { writeMonitoring } from "./synth.js";

try {
  writeMonitoring(loadAllEnvironments(), process.env.MONITORING_OUTDIR ?? "dist");
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : `monitoring synth: ${(error as Error).message}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
