/**
 * Synthesis is fast because of three things that lean on cdktf's and Node's internals rather than a supported API
 * (`pnpm bench:synth` has the figures). Each test here fails, saying which speed-up to revisit, when the internal it
 * relies on changes; until then the speed-up changes nothing but time.
 */
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App, Lazy, TerraformStack } from "cdktf";
import { synthesize, withoutTokenStackTraces } from "../src/app.js";
import { PlatformStack } from "../src/stack.js";
import { hermeticConfigs } from "./helpers.js";

afterEach(() => vi.restoreAllMocks());

describe("PlatformStack.prepareStack skips cdktf's cross-stack pass (src/stack.ts)", () => {
  const dev = hermeticConfigs().filter((c) => c.name === "dev");
  const synth = () => {
    const outdir = mkdtempSync(join(tmpdir(), "platform-prepare-"));
    try {
      return synthesize(dev, outdir)[0]!.json;
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  };

  it("overrides a method cdktf's App.synth still calls once per stack, and the one it keeps (ensureBackendExists) exists", () => {
    const ours = vi.spyOn(PlatformStack.prototype, "prepareStack");
    synth();
    expect(typeof TerraformStack.prototype.prepareStack, "cdktf's TerraformStack has no prepareStack any more: drop the override in src/stack.ts").toBe("function");
    expect(ours, "cdktf's App.synth no longer calls prepareStack: the override in src/stack.ts skips nothing; drop it").toHaveBeenCalledTimes(1);
    expect(typeof (TerraformStack.prototype as unknown as { ensureBackendExists?: unknown }).ensureBackendExists, "cdktf renamed ensureBackendExists, which the override calls").toBe("function");
  });

  it("synthesizes the same Terraform JSON as cdktf's own prepareStack", () => {
    const skipped = synth();
    vi.spyOn(PlatformStack.prototype, "prepareStack").mockImplementation(function (this: PlatformStack) {
      TerraformStack.prototype.prepareStack.call(this);
    });
    const full = synth();
    expect(skipped, "cdktf's prepareStack now adds to the stack what PlatformStack.prepareStack (src/stack.ts) skips: update the override or drop it").toEqual(full);
  });

  it("is the only override: App is cdktf's own", () => {
    expect(Object.getPrototypeOf(PlatformStack.prototype)).toBe(TerraformStack.prototype);
    expect(typeof App.prototype.synth).toBe("function");
  });
});

describe("src/google.ts loads the provider bindings through Node's Module._extensions['.js'] (@platform/cli/commonjs)", () => {
  const loaders = (Module as unknown as { _extensions?: Record<string, (module: unknown, filename: string) => void> })._extensions;
  const advice = "requireCommonJs (cli/src/commonjs.ts, used by src/google.ts, k8s/src/k8s.ts, monitoring/src/dashboards.ts and config/src/schema.ts) swaps Module._extensions['.js'] to load past tsx's require hook; on this Node it cannot: make it a plain require() or move to module.registerHooks";

  it("Node still has the loader table and Module.prototype._compile", () => {
    expect(typeof loaders?.[".js"], advice).toBe("function");
    expect(typeof (Module.prototype as unknown as { _compile?: unknown })._compile, advice).toBe("function");
  });

  it("require() still loads a .js file through the table's entry, so the swap takes effect", () => {
    const dir = mkdtempSync(join(tmpdir(), "platform-loader-"));
    const file = join(dir, "probe.cjs.js");
    writeFileSync(file, "module.exports = 42;\n");
    const original = loaders![".js"]!;
    const seen: string[] = [];
    loaders![".js"] = (module, filename) => {
      seen.push(filename);
      original(module, filename);
    };
    try {
      expect(createRequire(import.meta.url)(file)).toBe(42);
    } finally {
      loaders![".js"] = original;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(seen, advice).toEqual([file]);
  });
});

describe("withoutTokenStackTraces (src/app.ts) stops cdktf walking the stack for every token", () => {
  const token = () => Lazy.anyValue({ produce: () => 1 }).creationStack;

  it("cdktf still records a creation stack per token (otherwise the speed-up has nothing to skip: drop it)", () => {
    expect(token().length).toBeGreaterThan(0);
  });

  it("V8 walks no frame while the accessor reads 0, even where code raises the limit as cdktf does", () => {
    const frames = withoutTokenStackTraces(() => {
      const prepare = Error.prepareStackTrace;
      let walked = -1;
      Error.prepareStackTrace = (_, callSites) => {
        walked = callSites.length;
        return "";
      };
      try {
        Error.stackTraceLimit = Number.MAX_SAFE_INTEGER; // what cdktf's captureStackTrace does, ignored here
        const probe = { stack: "" };
        Error.captureStackTrace(probe);
        void probe.stack;
      } finally {
        Error.prepareStackTrace = prepare;
      }
      return walked;
    });
    expect(frames, "V8 ignores the Error.stackTraceLimit accessor that withoutTokenStackTraces (src/app.ts) defines: synthesis walks every token's stack again").toBeLessThanOrEqual(0);
    expect(withoutTokenStackTraces(token)).toEqual([]);
  });

  it("gives Error.stackTraceLimit and Error.prepareStackTrace back as they were", () => {
    const before = { limit: Object.getOwnPropertyDescriptor(Error, "stackTraceLimit"), prepare: Error.prepareStackTrace };
    withoutTokenStackTraces(token);
    expect(Object.getOwnPropertyDescriptor(Error, "stackTraceLimit")).toEqual(before.limit);
    expect(Error.prepareStackTrace).toBe(before.prepare);
  });
});
