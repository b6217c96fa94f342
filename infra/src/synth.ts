/**
 * Synthesis of the stacks as the main job runs it: every selected environment's Terraform JSON into `outdir`, the
 * platform rules checked, and a summary that says what was checked and nothing more. Called by src/main.ts (the
 * CDKTF app, `cdktf synth`/`deploy`) and by the root `pnpm synth`, which runs all three layers in one process.
 */
import { mkdirSync } from "node:fs";
import { ConfigError, ENVIRONMENT_NAMES, UNRESOLVED_DIGEST, admittedImagePatterns, isEnvironmentName, type EnvironmentConfig, unresolvedImages } from "@platform/config";
import { synthesize } from "./app.js";
import { POLICY_RULES, checkPolicies, formatViolations } from "./policy/index.js";

/** PLATFORM_ENVIRONMENTS=dev narrows synthesis, e.g. for an operator who only has dev's project configured. */
export function selectedEnvironments(raw = process.env.PLATFORM_ENVIRONMENTS): readonly string[] {
  const trimmed = raw?.trim();
  if (!trimmed) return ENVIRONMENT_NAMES;
  const names = trimmed.split(/[\s,]+/).filter(Boolean);
  const unknown = names.filter((n) => !isEnvironmentName(n));
  if (unknown.length > 0) {
    throw new ConfigError(`PLATFORM_ENVIRONMENTS names unknown environment(s) ${unknown.join(", ")}; use any of ${ENVIRONMENT_NAMES.join(", ")}`);
  }
  return names;
}

/** Where the summary goes: the console, or a caller's collector. */
export type SynthOutput = Pick<Console, "log" | "warn" | "error">;

/** Writes the stacks; false when a platform rule is violated (the violations are reported through `out.error`). */
export function synthesizeStacks(configs: readonly EnvironmentConfig[], outdir: string, out: SynthOutput = console): boolean {
  for (const config of configs) {
    if (config.gcp.placeholder) {
      out.warn(
        `warning: ${config.name} uses the example project "${config.gcp.projectId}"; set PLATFORM_${config.name.toUpperCase()}_PROJECT_ID ` +
          `and PLATFORM_${config.name.toUpperCase()}_STATE_BUCKET (or platform.config.json) before deploying (docs/DEPLOYMENT.md)`,
      );
    }
  }
  // cdktf creates only the last directory of outdir; a CDKTF_OUTDIR deeper than that is the operator's to expect.
  mkdirSync(outdir, { recursive: true });
  const stacks = synthesize(configs, outdir);
  const violations = stacks.flatMap((stack) => checkPolicies(stack));
  if (violations.length > 0) {
    out.error(formatViolations(violations));
    return false;
  }
  // Says what was checked, and nothing more: Checkov's checks run in `pnpm test`, not here.
  const unpinned = unresolvedImages();
  for (const [i, stack] of stacks.entries()) {
    const resources = Object.values(stack.json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
    out.log(`synthesized ${stack.name}: ${resources} resources, the ${POLICY_RULES.length} platform rules pass -> ${outdir}/stacks/${stack.name}/cdk.tf.json`);
    const config = configs[i]!;
    if (config.gke.binaryAuthorization && unpinned.length > 0) {
      out.warn(
        `warning: ${stack.name} is not pinned: Binary Authorization admits ${admittedImagePatterns(config).length} repositories, and ${unpinned.length} third-party images run ` +
          `with the placeholder digest ${UNRESOLVED_DIGEST.slice(0, 13)}..., which pins nothing: ${unpinned.join(", ")} (config/src/images.ts)`,
      );
    }
  }
  out.log("Checkov's Terraform checks are not run by synth: pnpm test runs them (infra/test/checkov.test.ts)");
  return true;
}
