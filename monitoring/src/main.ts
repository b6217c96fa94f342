/** Writes monitoring/dist/<env>/ (src/synth.ts). The root `pnpm synth` runs the same beside the other layers. */
import { runEntry } from "@platform/cli";
import { loadAllEnvironments } from "@platform/config";
import { writeMonitoring } from "./synth.js";

await runEntry("monitoring synth", () => {
  writeMonitoring(loadAllEnvironments(), process.env.MONITORING_OUTDIR ?? "dist");
  return true;
});
