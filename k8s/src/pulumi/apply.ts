import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

export interface ApplyOptions {
  readonly environment: string;
  /** k8s/dist */
  readonly distDir: string;
  readonly provider?: k8s.Provider;
}

/**
 * One ConfigGroup per synthesized file, in file order (00-setup, 10-..., 20-...), each depending on the previous:
 * namespaces and priority classes exist before anything is placed in them.
 */
export function applyManifests(options: ApplyOptions): Record<string, pulumi.Output<string>> {
  const dir = join(options.distDir, options.environment);
  if (!existsSync(dir)) {
    throw new Error(`no manifests in ${dir}: run \`pnpm synth\` at the repository root first (environment "${options.environment}")`);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith(".k8s.yaml")).sort();
  if (files.length === 0 || !files[0]!.startsWith("00-setup")) {
    throw new Error(`${dir} has no 00-setup.k8s.yaml: the setup file must be applied first; re-run \`pnpm synth\``);
  }
  const result: Record<string, pulumi.Output<string>> = {};
  let previous: k8s.yaml.ConfigGroup | undefined;
  for (const file of files) {
    const name = file.replace(/\.k8s\.yaml$/, "");
    const group: k8s.yaml.ConfigGroup = new k8s.yaml.ConfigGroup(
      name,
      { files: [join(dir, file)] },
      { provider: options.provider, dependsOn: previous ? [previous] : [] },
    );
    result[name] = group.urn;
    previous = group;
  }
  return result;
}
