/**
 * The infra suites' one synthesis per run: the three environments from the checked-in config (hermeticConfigs),
 * and production once more with the postgres engine (database.engine, set the way an operator sets it: a
 * PLATFORM_PRODUCTION_DATABASE_ENGINE override), the strictest environment on the other engine, and once with Citus
 * beside Cloud SQL (PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE),
 * handed to every test file through vitest's provide/inject (synthesized.ts), instead of each file synthesizing the
 * same stacks in its own beforeAll. Files that synthesize on purpose (another config, a variant of the app) still do.
 */
import type { TestProject } from "vitest/node";
import type { SynthesizedStack } from "../src/app.js";
import { CITUS_ALONGSIDE_OVERRIDE, POSTGRES_ENGINE_OVERRIDE, hermeticConfigs, synthesizeAll } from "./helpers.js";

export default function setup(project: TestProject): void {
  project.provide("stacks", synthesizeAll(hermeticConfigs()));
  const production = hermeticConfigs(POSTGRES_ENGINE_OVERRIDE).find((c) => c.name === "production")!;
  project.provide("postgresStack", synthesizeAll([production])[0]!);
  const alongside = hermeticConfigs(CITUS_ALONGSIDE_OVERRIDE).find((c) => c.name === "production")!;
  project.provide("alongsideStack", synthesizeAll([alongside])[0]!);
}

declare module "vitest" {
  export interface ProvidedContext {
    /** dev, staging and production, as synthesizeAll(hermeticConfigs()) returns them. */
    stacks: SynthesizedStack[];
    /** production with the postgres engine (Cloud SQL), as synthesizeAll returns it. */
    postgresStack: SynthesizedStack;
    /** production with the postgres engine and the Citus cluster beside it (database.citusAlongside). */
    alongsideStack: SynthesizedStack;
  }
}
