/**
 * `cdk8s synth` inside k8s/ runs this: every environment's manifests into k8s/dist/<env>/ (src/synth.ts). The root
 * `pnpm synth` runs the same beside the other layers, in one process.
 */
import { runEntry } from "@platform/cli";
import { loadAllEnvironments } from "@platform/config";
import { synthesizeManifests } from "./synth.js";

await runEntry("k8s synth", () => synthesizeManifests(loadAllEnvironments(), process.env.K8S_OUTDIR ?? "dist"));
