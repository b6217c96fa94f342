/**
 * The infra suites' one synthesis per run: the three environments from the checked-in config (hermeticConfigs),
 * handed to every test file through vitest's provide/inject (synthesized.ts), instead of each file synthesizing the
 * same stacks in its own beforeAll. Files that synthesize on purpose (another config, a variant of the app) still do.
 */
import type { TestProject } from "vitest/node";
import type { SynthesizedStack } from "../src/app.js";
import { hermeticConfigs, synthesizeAll } from "./helpers.js";

export default function setup(project: TestProject): void {
  project.provide("stacks", synthesizeAll(hermeticConfigs()));
}

declare module "vitest" {
  export interface ProvidedContext {
    /** dev, staging and production, as synthesizeAll(hermeticConfigs()) returns them. */
    stacks: SynthesizedStack[];
  }
}
