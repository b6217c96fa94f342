/**
 * Every environment's manifests into <outRoot>/<env>/: 00-setup.k8s.yaml (namespaces, priority classes: apply first)
 * and one file per application. Refuses output that breaks schema validation or a platform rule (src/policy/); says
 * which manifests are not deployable because an image's digest is the placeholder. Called by src/main.ts (`cdk8s
 * synth` inside k8s/) and by the root `pnpm synth`, which runs all three layers in one process.
 */
import { admittedImagePatterns, type EnvironmentConfig } from "@platform/config";
import { synthesizeEnvironment } from "./app.js";
import { MANIFEST_RULES, checkManifests, formatManifestViolations } from "./policy/index.js";

const SYNTH_RULES = MANIFEST_RULES.filter((r) => (r.blocks ?? "synth") === "synth").length;

/** Where the summary goes: the console, or a caller's collector. */
export type SynthOutput = Pick<Console, "log" | "warn" | "error">;

/** Writes the manifests; false when an environment's objects break a rule that stops synthesis. */
export function synthesizeManifests(configs: readonly EnvironmentConfig[], outRoot: string, out: SynthOutput = console): boolean {
  let ok = true;
  for (const config of configs) {
    const result = synthesizeEnvironment(config, `${outRoot}/${config.name}`);
    const findings = checkManifests(result.objects, { admittedImages: admittedImagePatterns(config) });
    const violations = findings.filter((f) => f.blocks === "synth");
    if (violations.length > 0) {
      out.error(formatManifestViolations(config.name, violations));
      ok = false;
      continue;
    }
    out.log(`synthesized ${config.name}: ${result.objects.length} objects, the ${SYNTH_RULES} platform rules that stop synthesis pass -> ${outRoot}/${config.name}/ (${result.files.join(", ")})`);
    // Not a failure: the manifests are right but for digests no registry here can resolve; scripts/deploy refuses them.
    const unpinned = [...new Set(findings.filter((f) => f.blocks === "deploy").map((f) => f.reason.replace(/^container [^:]+: image (\S+) .*$/, "$1")))];
    if (unpinned.length > 0) {
      out.warn(
        `warning: ${config.name} is NOT deployable: ${unpinned.length} image(s) carry the placeholder digest sha256:000..., which is not a pin: ${unpinned.join(", ")} ` +
          `(third-party digests: config/src/images.ts; the tenant service's: PLATFORM_${config.name.toUpperCase()}_TENANT_SERVICE_IMAGE); scripts/deploy refuses them`,
      );
    }
  }
  out.log("kube-score, Trivy and Polaris are not run by synth: pnpm test runs them over every environment's manifests (k8s/test/engines.test.ts)");
  return ok;
}
