/**
 * Synthesizes every environment's manifests into k8s/dist/<env>/: setup.k8s.yaml (namespaces, priority classes:
 * apply first) and one file per application. Refuses to write output that fails schema validation or the manifest
 * policy suite. `pnpm synth` (root) runs it; so does `cdk8s synth` inside k8s/.
 */
import { ConfigError, loadAllEnvironments, unresolvedImages } from "@platform/config";
import { synthesizeEnvironment } from "./app.js";
import { checkManifests, formatManifestViolations } from "./policy/index.js";

try {
  const outRoot = process.env.K8S_OUTDIR ?? "dist";
  let failed = false;
  const unresolved = unresolvedImages();
  if (unresolved.length > 0) {
    console.warn(`warning: images without a recorded digest (config/src/images.ts): ${unresolved.join(", ")}; resolve them before deploying`);
  }
  for (const config of loadAllEnvironments()) {
    if (config.kubernetes.images.placeholder) {
      console.warn(`warning: ${config.name} uses the example tenant-service image; the release pipeline sets PLATFORM_${config.name.toUpperCase()}_TENANT_SERVICE_IMAGE`);
    }
    const result = synthesizeEnvironment(config, `${outRoot}/${config.name}`);
    const violations = checkManifests(result.objects);
    if (violations.length > 0) {
      console.error(formatManifestViolations(config.name, violations));
      failed = true;
      continue;
    }
    console.log(`synthesized ${config.name}: ${result.objects.length} objects, valid and policy clean -> ${outRoot}/${config.name}/ (${result.files.join(", ")})`);
  }
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
