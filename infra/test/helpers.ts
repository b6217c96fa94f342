import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENVIRONMENT_NAMES, loadEnvironment, type EnvironmentConfig } from "@platform/config";
import { synthesize, type SynthesizedStack } from "../src/app.js";
import { resourcesOf, type TerraformResource } from "../src/policy/index.js";

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
