/** The stacks test/global-setup.ts synthesized once for this run (its own module: helpers.ts is loaded by the setup too). */
import { inject } from "vitest";
import type { EnvironmentName } from "@platform/config";
import type { SynthesizedStack } from "../src/app.js";

/** dev, staging and production, synthesized from hermeticConfigs(): each file gets its own copy to read. */
export function synthesizedStacks(): SynthesizedStack[] {
  return inject("stacks");
}

export function synthesizedStack(name: EnvironmentName): SynthesizedStack {
  const stack = synthesizedStacks().find((s) => s.name === name);
  if (!stack) throw new Error(`the run's synthesis has no stack ${name} (test/global-setup.ts)`);
  return stack;
}

/** production with the postgres engine (Cloud SQL), synthesized once by test/global-setup.ts. */
export function synthesizedPostgresStack(): SynthesizedStack {
  return inject("postgresStack");
}

/** production with the postgres engine and the Citus cluster beside it (database.citusAlongside), synthesized once by test/global-setup.ts. */
export function synthesizedAlongsideStack(): SynthesizedStack {
  return inject("alongsideStack");
}
