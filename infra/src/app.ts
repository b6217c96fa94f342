import { readFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "cdktf";
import type { EnvironmentConfig } from "@platform/config";
import { PlatformStack } from "./stack.js";

export interface SynthesizedStack {
  readonly name: string;
  readonly json: TerraformJson;
}

/** The subset of Terraform JSON the tests and the policy suite read. */
export interface TerraformJson {
  readonly resource?: Record<string, Record<string, Record<string, unknown>>>;
  readonly data?: Record<string, Record<string, Record<string, unknown>>>;
  readonly output?: Record<string, { value: unknown }>;
  readonly locals?: Record<string, unknown>;
  readonly terraform?: Record<string, unknown>;
  readonly provider?: Record<string, unknown>;
}

/**
 * cdktf records a complete stack trace (no depth limit) for every token it creates, that is for every resource
 * attribute reference and nested block, only to decorate rare token errors. Formatting those traces, through
 * source maps when tsx has them on, was half of synthesis time. Inside `run` traces are left unformatted: error
 * messages are unchanged, their stacks are empty. PLATFORM_SYNTH_STACK_TRACES=1 keeps them for debugging.
 */
export function withoutTokenStackTraces<T>(run: () => T): T {
  if (process.env.PLATFORM_SYNTH_STACK_TRACES === "1") return run();
  const sourceMaps = process.sourceMapsEnabled;
  const prepare = Error.prepareStackTrace;
  const limit = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit");
  process.setSourceMapsEnabled(false);
  Error.prepareStackTrace = () => "";
  // cdktf raises the limit to "unlimited" around each capture; an accessor that reads 0 and ignores writes makes
  // V8 skip walking the stack altogether. V8 and cdktf behaviour, not an API: test/internals.test.ts checks both.
  Object.defineProperty(Error, "stackTraceLimit", { configurable: true, get: () => 0, set: () => {} });
  try {
    return run();
  } finally {
    if (limit) Object.defineProperty(Error, "stackTraceLimit", limit);
    Error.prepareStackTrace = prepare;
    process.setSourceMapsEnabled(sourceMaps);
  }
}

/** Builds one stack per environment, named after it, so `cdktf deploy dev` deploys dev. */
export function buildApp(configs: readonly EnvironmentConfig[], outdir: string): App {
  const app = new App({ outdir });
  for (const config of configs) new PlatformStack(app, config.name, { config });
  return app;
}

export function synthesize(configs: readonly EnvironmentConfig[], outdir: string): SynthesizedStack[] {
  withoutTokenStackTraces(() => buildApp(configs, outdir).synth());
  return configs.map((config) => ({
    name: config.name,
    json: JSON.parse(readFileSync(join(outdir, "stacks", config.name, "cdk.tf.json"), "utf8")) as TerraformJson,
  }));
}
