/**
 * Loading large CommonJS libraries (jsii bindings: cdktf's Google provider, cdk8s-plus's Kubernetes API objects; the
 * Grafana SDK's builders; zod's CommonJS build) from a TypeScript entry point at the speed of plain Node.
 *
 * Under tsx, every .js file goes through its require hook, which scans it for import or export statements in case it
 * is an ES module to compile, and Node, with source maps on for TypeScript stack traces, decodes and parses each
 * file's source map: the inline base64 map that is 70% of a jsii binding's bytes, or the .js.map beside each of the
 * Grafana SDK's ~300 files. For the main job (`pnpm synth`) both were about a tenth of its time (`pnpm bench:synth`)
 * and bought nothing: compiled JavaScript has nothing worth mapping here, and none of it is ES modules.
 */
import { readFileSync } from "node:fs";
import Module from "node:module";

// Module._extensions and module._compile are Node internals (no supported synchronous hook on Node 20):
// infra/test/internals.test.ts fails, saying what to do, when Node no longer loads a .js file through them.

type JsLoader = (module: { _compile(code: string, filename: string): void }, filename: string) => void;
// Node's table of loaders by file extension: deprecated for applications, still what every require hook (tsx's
// among them) uses, and the only way to load a file without them.
const loaders = (Module as unknown as { _extensions: Record<string, JsLoader> })._extensions;

/**
 * Node's own loading of a CommonJS file (.js or .cjs), read and compiled, less its trailing inline source map, which V8 would
 * otherwise scan and keep in memory with the source for nothing, since source maps are off while it loads.
 */
const compileCommonJs: JsLoader = (module, filename) => {
  const code = readFileSync(filename, "utf8");
  const map = code.lastIndexOf("\n//# sourceMappingURL=data:");
  module._compile(map === -1 ? code : code.slice(0, map), filename);
};

/**
 * `require(id)` through `require` (made with createRequire in the caller's package, so the caller's dependencies
 * resolve), with every .js file of it and of what it loads compiled by Node alone, and source maps off. tsx's hook
 * and the source-map setting are restored before this returns, so the caller's own TypeScript loads as before. Only
 * for plain CommonJS packages: an ES module file among them would fail to compile.
 */
export function requireCommonJs(require: NodeJS.Require, id: string): unknown {
  const sourceMaps = process.sourceMapsEnabled;
  const { ".js": js, ".cjs": cjs } = loaders;
  process.setSourceMapsEnabled(false);
  loaders[".js"] = compileCommonJs;
  loaders[".cjs"] = compileCommonJs;
  try {
    return require(id);
  } finally {
    loaders[".js"] = js!;
    loaders[".cjs"] = cjs!;
    process.setSourceMapsEnabled(sourceMaps);
  }
}
