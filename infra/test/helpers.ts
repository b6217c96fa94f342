import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENVIRONMENT_NAMES, loadEnvironment, type EnvironmentConfig } from "@platform/config";
import { synthesize, type SynthesizedStack, type TerraformJson } from "../src/app.js";
import { renderedByTerraform } from "../src/terraform-literal.js";
import { resourcesOf, type TerraformResource } from "../src/policy/index.js";

/** The operator's override that puts production on the postgres engine (config/README.md, operator overrides). */
export const POSTGRES_ENGINE_OVERRIDE = { PLATFORM_PRODUCTION_DATABASE_ENGINE: "postgres" };

/** And with the Citus cluster beside Cloud SQL, to move tenants into (database.citusAlongside, docs/SCALING.md "Phase 2-3"). */
export const CITUS_ALONGSIDE_OVERRIDE = { ...POSTGRES_ENGINE_OVERRIDE, PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE: "true" };

/** Loads configs hermetically: no operator override file, no PLATFORM_* variables from the shell. */
export function hermeticConfigs(env: Record<string, string> = {}): EnvironmentConfig[] {
  const dir = mkdtempSync(join(tmpdir(), "platform-config-"));
  const overrideFile = join(dir, "empty.json");
  writeFileSync(overrideFile, "{}");
  try {
    return ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env, overrideFile }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Synthesizes the given environments into a throwaway directory (the real App, not Testing.synth). */
export function synthesizeAll(configs: EnvironmentConfig[] = hermeticConfigs()): SynthesizedStack[] {
  const outdir = mkdtempSync(join(tmpdir(), "platform-synth-"));
  try {
    return synthesize(configs, outdir);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

export function only(stack: SynthesizedStack, type: string): TerraformResource {
  const found = resourcesOf(stack.json, type);
  if (found.length !== 1) throw new Error(`expected exactly one ${type} in ${stack.name}, found ${found.length}`);
  return found[0]!;
}

export { resourcesOf };

/**
 * The startup script a Citus VM receives, as Terraform renders it: the instance's header followed by the stack's
 * shared body (a Terraform local), both unescaped.
 */
export function renderedStartupScript(json: TerraformJson, conf: Record<string, unknown>): string {
  const metadata = (Array.isArray(conf.metadata) ? conf.metadata[0] : conf.metadata) as Record<string, string>;
  return metadata["startup-script"]!
    .split(/(?<!\$)(\$\{local\.[A-Za-z0-9_-]+\})/)
    .map((part) => {
      const local = /^\$\{local\.([A-Za-z0-9_-]+)\}$/.exec(part);
      if (!local) return renderedByTerraform(part);
      const value = json.locals?.[local[1]!];
      if (typeof value !== "string") throw new Error(`the stack has no string local ${local[1]}`);
      return renderedByTerraform(value);
    })
    .join("");
}
