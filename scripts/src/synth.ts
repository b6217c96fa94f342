/**
 * `pnpm synth`, the main job: every layer for every environment in one process, the config loaded once: the
 * Terraform JSON (infra/cdktf.out/), the monitoring files (monitoring/dist/) and the Kubernetes manifests
 * (k8s/dist/). The same functions the layers' own entry points call (`cdktf synth`, `cdk8s synth`), so the outputs are
 * those, byte for byte; one process instead of three, and no pnpm in between.
 *
 * Exit codes: 0 written; 1 a platform rule refused a layer's output (each layer still runs, so every refusal is
 * listed at once), or a construct refused its input; 2 a config error.
 *
 * PLATFORM_ENVIRONMENTS narrows the stacks, as for `cdktf deploy` (the other layers cost little and always run).
 * CDKTF_OUTDIR, MONITORING_OUTDIR and K8S_OUTDIR move an output, relative to its package as before.
 */
import { relative, resolve } from "node:path";
import { runEntry } from "@platform/cli";
import { loadAllEnvironments } from "@platform/config";
import { selectedEnvironments, synthesizeStacks } from "@platform/infra/src/synth.js";
import { synthesizeManifests } from "@platform/k8s/src/synth.js";
import { writeMonitoring } from "@platform/monitoring/synth";
import { REPO_ROOT } from "./paths.js";

/** An output directory, as a path from where synth runs (so its summary lines read "infra/cdktf.out/..."). */
const under = (pkg: string, variable: string, fallback: string) => relative(process.cwd(), resolve(REPO_ROOT, pkg, process.env[variable] ?? fallback)) || ".";

await runEntry("synth", () => {
  const configs = loadAllEnvironments();
  const stacks = selectedEnvironments();
  const infraOk = synthesizeStacks(configs.filter((c) => stacks.includes(c.name)), under("infra", "CDKTF_OUTDIR", "cdktf.out"));
  writeMonitoring(configs, under("monitoring", "MONITORING_OUTDIR", "dist"));
  // Every layer runs even when one is refused, so every refusal is listed at once.
  return synthesizeManifests(configs, under("k8s", "K8S_OUTDIR", "dist")) && infraOk;
});
