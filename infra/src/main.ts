/**
 * The CDKTF app: one stack per environment. `cdktf synth` / `cdktf deploy <env>` run this through cdktf.json, and
 * `pnpm synth` runs it directly. Synthesis fails (exit 1) when the policy suite finds a violation, so a stack that
 * breaks a security invariant never reaches `terraform apply`.
 */
import { ConfigError, ENVIRONMENT_NAMES, UNRESOLVED_DIGEST, admittedImagePatterns, isEnvironmentName, loadEnvironment, unresolvedImages } from "@platform/config";
import { synthesize } from "./app.js";
import { POLICY_RULES, checkPolicies, formatViolations } from "./policy/index.js";

function selectedEnvironments(): readonly string[] {
  // PLATFORM_ENVIRONMENTS=dev narrows synthesis, e.g. for an operator who only has dev's project configured.
  const raw = process.env.PLATFORM_ENVIRONMENTS?.trim();
  if (!raw) return ENVIRONMENT_NAMES;
  const names = raw.split(/[\s,]+/).filter(Boolean);
  const unknown = names.filter((n) => !isEnvironmentName(n));
  if (unknown.length > 0) {
    throw new ConfigError(`PLATFORM_ENVIRONMENTS names unknown environment(s) ${unknown.join(", ")}; use any of ${ENVIRONMENT_NAMES.join(", ")}`);
  }
  return names;
}

try {
  const configs = selectedEnvironments().map((name) => loadEnvironment(name));
  for (const config of configs) {
    if (config.gcp.placeholder) {
      console.warn(
        `warning: ${config.name} uses the example project "${config.gcp.projectId}"; set PLATFORM_${config.name.toUpperCase()}_PROJECT_ID ` +
          `and PLATFORM_${config.name.toUpperCase()}_STATE_BUCKET (or platform.config.json) before deploying (docs/DEPLOYMENT.md)`,
      );
    }
  }
  const outdir = process.env.CDKTF_OUTDIR ?? "cdktf.out";
  const stacks = synthesize(configs, outdir);
  const violations = stacks.flatMap((stack) => checkPolicies(stack));
  if (violations.length > 0) {
    console.error(formatViolations(violations));
    process.exit(1);
  }
  // Says what was checked, and nothing more: Checkov's checks run in `pnpm test`, not here.
  const unpinned = unresolvedImages();
  for (const [i, stack] of stacks.entries()) {
    const resources = Object.values(stack.json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
    console.log(`synthesized ${stack.name}: ${resources} resources, the ${POLICY_RULES.length} platform rules pass -> ${outdir}/stacks/${stack.name}/cdk.tf.json`);
    const config = configs[i]!;
    if (config.gke.binaryAuthorization && unpinned.length > 0) {
      console.warn(
        `warning: ${stack.name} is not pinned: Binary Authorization admits ${admittedImagePatterns(config).length} repositories, and ${unpinned.length} third-party images run ` +
          `with the placeholder digest ${UNRESOLVED_DIGEST.slice(0, 13)}..., which pins nothing: ${unpinned.join(", ")} (config/src/images.ts)`,
      );
    }
  }
  console.log("Checkov's Terraform checks are not run by synth: pnpm test runs them (infra/test/checkov.test.ts)");
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
