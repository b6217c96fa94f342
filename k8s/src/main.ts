/**
 * Synthesizes every environment's manifests into k8s/dist/<env>/: setup.k8s.yaml (namespaces, priority classes:
 * apply first) and one file per application. Fails on output that breaks schema validation or a platform rule
 * (src/policy/); says which manifests are not deployable because an image's digest is the placeholder. kube-score,
 * Trivy and Polaris are not run here: `pnpm test` runs them (test/engines.test.ts). `pnpm synth` (root) runs this;
 * so does `cdk8s synth` inside k8s/.
 */
import { ConfigError, admittedImagePatterns, loadAllEnvironments } from "@platform/config";
import { synthesizeEnvironment } from "./app.js";
import { MANIFEST_RULES, checkManifests, formatManifestViolations } from "./policy/index.js";

const SYNTH_RULES = MANIFEST_RULES.filter((r) => (r.blocks ?? "synth") === "synth").length;

try {
  const outRoot = process.env.K8S_OUTDIR ?? "dist";
  let failed = false;
  for (const config of loadAllEnvironments()) {
    const result = synthesizeEnvironment(config, `${outRoot}/${config.name}`);
    const findings = checkManifests(result.objects, { admittedImages: admittedImagePatterns(config) });
    const violations = findings.filter((f) => f.blocks === "synth");
    if (violations.length > 0) {
      console.error(formatManifestViolations(config.name, violations));
      failed = true;
      continue;
    }
    console.log(`synthesized ${config.name}: ${result.objects.length} objects, the ${SYNTH_RULES} platform rules that stop synthesis pass -> ${outRoot}/${config.name}/ (${result.files.join(", ")})`);
    // Not a failure: the manifests are right but for digests no registry here can resolve; scripts/deploy refuses them.
    const unpinned = [...new Set(findings.filter((f) => f.blocks === "deploy").map((f) => f.reason.replace(/^container [^:]+: image (\S+) .*$/, "$1")))];
    if (unpinned.length > 0) {
      console.warn(
        `warning: ${config.name} is NOT deployable: ${unpinned.length} image(s) carry the placeholder digest sha256:000..., which is not a pin: ${unpinned.join(", ")} ` +
          `(third-party digests: config/src/images.ts; the tenant service's: PLATFORM_${config.name.toUpperCase()}_TENANT_SERVICE_IMAGE); scripts/deploy refuses them`,
      );
    }
  }
  console.log("kube-score, Trivy and Polaris are not run by synth: pnpm test runs them over every environment's manifests (k8s/test/engines.test.ts)");
  if (failed) process.exit(1);
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
