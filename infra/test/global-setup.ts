/**
 * The infra suites' one synthesis per run: the three environments from the checked-in config (hermeticConfigs),
 * and production once more with the postgres engine (database.engine, set the way an operator sets it: a
 * PLATFORM_PRODUCTION_DATABASE_ENGINE override), the strictest environment on the other engine,
 * handed to every test file through vitest's provide/inject (synthesized.ts), instead of each file synthesizing the
 * same stacks in its own beforeAll. Files that synthesize on purpose (another config, a variant of the app) still do.
 */
import type { TestProject } from "vitest/node";
import type { SynthesizedStack } from "../src/app.js";
import { POSTGRES_ENGINE_OVERRIDE, hermeticConfigs, synthesizeAll } from "./helpers.js";

export default function setup(project: TestProject): void {
  project.provide("stacks", synthesizeAll(hermeticConfigs()));
  const production = hermeticConfigs(POSTGRES_ENGINE_OVERRIDE).find((c) => c.name === "production")!;
  project.provide("postgresStack", synthesizeAll([production])[0]!);
}

declare module "vitest" {
  export interface ProvidedContext {
    /** dev, staging and production, as synthesizeAll(hermeticConfigs()) returns them. */
    stacks: SynthesizedStack[];
    /** production with the postgres engine (Cloud SQL), as synthesizeAll returns it. */
    postgresStack: SynthesizedStack;
  }
}
