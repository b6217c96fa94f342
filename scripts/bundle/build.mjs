// @ts-check
/**
 * Builds one TypeScript entry point and everything it imports into two ES module files with esbuild, and lists what
 * went into each (so scripts/bundle/run.mjs can tell when either is stale):
 * - the program: our sources, about 80 files, in about 0.15 s (0.35 s the first time: see `program`). An edit, a
 *   pull or a checkout rebuilds only this.
 * - its dependencies: every npm module our sources reach, in about 0.7 s, rebuilt only when the set of modules our
 *   sources import changes or the installed packages do (the lockfile, a file's size or time).
 * Plain JavaScript, because it runs before any TypeScript loader: that is the point (README.md, "The main job").
 *
 * How the two meet: an import of ours that resolves into node_modules becomes, in the program, a CommonJS module of
 * one line that asks the dependencies' bundle for that file (`globalThis[VENDOR]("<path>")`), and the dependencies'
 * bundle is one function that `require`s each such file by its resolved path. So each npm file is still bundled exactly
 * once (one `constructs`, one `cdktf`: their `instanceof` checks hold), it is initialized when first asked for, as in
 * one bundle, and esbuild's own CommonJS/ES interop applies on both sides. The resolved path, not the name, is the key:
 * pnpm gives each workspace package its own node_modules, so the same name can resolve to different files.
 *
 * Three things a bundle would otherwise get wrong, each made right here:
 * - `import.meta.url` in our sources would be the bundle's own URL: each module's is written in as the file it was.
 *   They read files beside themselves (the VM bootstrap scripts, the override file), at run time, from the tree.
 * - `requireCommonJs(r, "id")` (@platform/cli/commonjs, which loads big CommonJS libraries past tsx's hooks) is a
 *   dynamic require that esbuild cannot follow: it becomes `require("id")`, which esbuild inlines. An id that is not a
 *   string literal stops the build, saying where, since the bundle would otherwise fail only when it reached that line.
 * - `__dirname` and `__filename` in a CommonJS dependency are given that file's own values.
 */
import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { isBuiltin } from "node:module";
import { dirname, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

/** The global through which the program's bundle asks the dependencies' bundle for a module; the latter sets it. */
const VENDOR = "platform.bundle.vendor";
/** The dependencies' bundle's entry, written here, not read from a file. */
const DEPENDENCIES_ENTRY = "platform-dependencies.js";

/** `requireCommonJs(<a name or createRequire(import.meta.url)>, "<id>")`, as our sources write it. */
const REQUIRE_COMMONJS = /requireCommonJs\(\s*(?:[\w$]+|createRequire\(import\.meta\.url\))\s*,\s*("[^"\n]+")\s*\)/g;
/** Any call of it at all, to catch the ones the pattern above does not rewrite. */
const ANY_REQUIRE_COMMONJS = /requireCommonJs\(/g;

/** The file that defines requireCommonJs, where its name appears without a call to rewrite. */
const isDefinition = (path) => path.endsWith("/cli/src/commonjs.ts");

/**
 * Our TypeScript, as the bundle needs it. Exported for the tests.
 * @param {string} text
 * @param {string} path
 * @returns {string}
 */
export function rewriteSource(text, path) {
  let out = text.replace(REQUIRE_COMMONJS, "require($1)");
  if (!isDefinition(path)) {
    const left = [...out.matchAll(ANY_REQUIRE_COMMONJS)];
    if (left.length > 0) {
      const line = out.slice(0, left[0].index).split("\n").length;
      throw new Error(
        `${path}:${line}: requireCommonJs is called with an id that is not a string literal; the main job's bundle can only include a module named by a literal, so write the id out (scripts/bundle/build.mjs)`,
      );
    }
  }
  return out.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(path).href));
}

/**
 * A pattern for an import path that names a package, except Node's own (`node:`) and our workspace's (`@platform/`),
 * which esbuild then resolves without asking the plugin (each question is a round trip to esbuild's process). Go's
 * regular expressions have no lookahead, so "does not start with" is spelled out: for each prefix, every proper start
 * of it followed by the end or by another character. Bare builtins (`fs`) still reach the plugin, which lets them be.
 * Exported for the tests.
 */
export function packagePath(/** @type {string[]} */ excluded) {
  const escape = (/** @type {string} */ text) => text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
  const firsts = excluded.map((prefix) => prefix[0]);
  const alternatives = [`[^./${escape(firsts.join(""))}]`];
  for (const prefix of excluded) {
    for (let i = 1; i < prefix.length; i++) alternatives.push(`${escape(prefix.slice(0, i))}(?:$|[^${escape(prefix[i] ?? "")}])`);
  }
  return new RegExp(`^(?:${alternatives.join("|")})`);
}
const PACKAGE_PATH = packagePath(["node:", "@platform/"]);

/**
 * Our sources, with their SHA-256 recorded as read: the manifest records what was bundled, not what the file holds a
 * moment later (an edit saved during the build makes the next run rebuild, as it should). Every import that resolves
 * into node_modules is left to the dependencies' bundle, and recorded in `vendor` by its path relative to `root`.
 * @param {Map<string, string>} read
 * @param {Set<string>} vendor
 * @param {string} root
 * @param {Map<string, string>} known the npm resolutions of the build before (question -> path relative to root):
 *   asking esbuild again cost about 0.25 s of the 0.35 s a rebuild of the program takes. Filled with this build's.
 * @param {Set<string>} asked the questions this build asked whose answer is an npm file
 * @returns {esbuild.Plugin}
 */
const program = (read, vendor, root, known, asked) => ({
  name: "platform-program",
  setup(build) {
    /** @type {Map<string, Promise<esbuild.ResolveResult>>} */
    const resolved = new Map();
    build.onResolve({ filter: PACKAGE_PATH }, async (args) => {
      if (args.pluginData === "resolving" || isBuiltin(args.path)) return undefined;
      // The question, with the importer's directory relative to the root (a tree moved keeps its answers valid).
      const question = `${args.kind}\0${relative(root, args.resolveDir)}\0${args.path}`;
      const before = known.get(question);
      // An answer of the build before still holds while its file is there: the cache key (the lockfile) covers
      // what an install changes, and a file gone is asked again.
      if (before !== undefined && existsSync(resolve(root, before))) {
        asked.add(question);
        vendor.add(before);
        return { path: before, namespace: "platform-vendor" };
      }
      // Many files of one directory import the same package: asked once.
      let answer = resolved.get(question);
      if (!answer) {
        answer = build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: "resolving" });
        resolved.set(question, answer);
      }
      const found = await answer;
      if (found.errors.length > 0) return { errors: found.errors };
      if (!found.path.includes("/node_modules/")) return found;
      const path = relative(root, found.path);
      known.set(question, path);
      asked.add(question);
      vendor.add(path);
      return { path, namespace: "platform-vendor" };
    });
    build.onLoad({ filter: /.*/, namespace: "platform-vendor" }, (args) => ({
      contents: `module.exports = globalThis[Symbol.for(${JSON.stringify(VENDOR)})](${JSON.stringify(args.path)});`,
      loader: "js",
    }));
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      try {
        const bytes = await readFile(args.path);
        read.set(args.path, createHash("sha256").update(bytes).digest("hex"));
        // Most have nothing to rewrite: esbuild then reads the file itself, faster than being handed the text.
        if (!bytes.includes("import.meta.url") && !bytes.includes("requireCommonJs")) return undefined;
        return { contents: rewriteSource(bytes.toString("utf8"), args.path), loader: "ts", resolveDir: dirname(args.path) };
      } catch (error) {
        return { errors: [{ text: /** @type {Error} */ (error).message }] };
      }
    });
  },
});

/**
 * esbuild's wrapper of a CommonJS module in its output: `__commonJS({\n  "<path relative to the root>"(exports, module) {\n`.
 * (Its "use strict", if any, may follow what is declared there: the bundle is an ES module, strict throughout.)
 */
const COMMONJS_WRAPPER = /__commonJS\(\{\n {2}("(?:[^"\\\n]|\\.)+")\((?:exports(?:, module)?)?\) \{\n/g;
const FILE_LOCATION = /\b__(?:dirname|filename)\b/;

/**
 * Gives each CommonJS module of the dependencies' bundle that names `__dirname` or `__filename` its own file's values,
 * declared first in esbuild's wrapper of it. Done on the output, not per file as it is loaded:
 * a plugin that read every npm file in JavaScript to find the two that use them cost about 0.25 s of a 0.85 s build.
 * The bundle is read as latin1, one character a byte, so offsets are bytes and nothing is decoded or encoded whole.
 * Exported for the tests.
 * @param {Uint8Array} bundle the bundle as esbuild wrote it
 * @param {string} root what its paths are relative to
 * @returns {Buffer}
 */
export function giveFileLocations(bundle, root) {
  const bytes = Buffer.from(bundle.buffer, bundle.byteOffset, bundle.byteLength);
  const text = bytes.toString("latin1");
  const wrappers = [...text.matchAll(COMMONJS_WRAPPER)];
  const first = wrappers[0]?.index ?? text.length;
  if (FILE_LOCATION.test(text.slice(0, first))) {
    // Not a module's to mend: esbuild wrote its output otherwise than this expects (a new esbuild version?).
    throw new Error(
      "the dependencies' bundle names __dirname or __filename outside any CommonJS module esbuild wrapped as scripts/bundle/build.mjs expects (COMMONJS_WRAPPER): update that pattern for this esbuild",
    );
  }
  /** @type {Buffer[]} */
  const pieces = [];
  let done = 0;
  wrappers.forEach((wrapper, i) => {
    const at = /** @type {number} */ (wrapper.index);
    const start = at + wrapper[0].length;
    const end = wrappers[i + 1]?.index ?? text.length;
    if (!FILE_LOCATION.test(text.slice(start, end))) return;
    // The path's own bytes, as UTF-8 (latin1 would garble a name outside ASCII).
    const key = at + wrapper[0].indexOf('"');
    const file = resolve(root, JSON.parse(bytes.toString("utf8", key, key + /** @type {string} */ (wrapper[1]).length)));
    pieces.push(bytes.subarray(done, start), Buffer.from(`    var __filename = ${JSON.stringify(file)}, __dirname = ${JSON.stringify(dirname(file))};\n`));
    done = start;
  });
  pieces.push(bytes.subarray(done));
  return Buffer.concat(pieces);
}

/** What both builds share. */
const common = (/** @type {string} */ root) => /** @type {const} */ ({
  bundle: true,
  platform: "node",
  format: "esm",
  target: `node${process.versions.node.split(".")[0]}`,
  // Node's builtins, required by CommonJS modules, need a require in an ES module.
  banner: { js: 'import { createRequire as __platformCreateRequire } from "node:module"; const require = __platformCreateRequire(import.meta.url);' },
  absWorkingDir: root,
  metafile: true,
  logLevel: "silent",
  legalComments: "none",
});

/** Paths relative to absWorkingDir; our virtual modules have a namespace prefix, and the dependencies' entry is virtual. */
const files = (/** @type {esbuild.Metafile} */ metafile) => Object.keys(metafile.inputs).filter((file) => !file.includes(":") && file !== DEPENDENCIES_ENTRY);

/**
 * Bundles our sources from `entry` into `outfile`. Returns the files that went in and the SHA-256 of each as it was
 * bundled (by path relative to `root`), the npm files it needs from the dependencies' bundle, sorted, and how each
 * npm import was resolved, for the next build (`resolutions`: the previous build's, when nothing installed changed).
 * @param {{ entry: string, outfile: string, root: string, resolutions?: Record<string, string> }} options
 * @returns {Promise<{ inputs: string[], sha256: Record<string, string>, vendor: string[], resolutions: Record<string, string> }>}
 */
export async function buildProgram({ entry, outfile, root, resolutions = {} }) {
  /** @type {Map<string, string>} */
  const read = new Map();
  /** @type {Set<string>} */
  const vendor = new Set();
  const known = new Map(Object.entries(resolutions));
  /** @type {Set<string>} */
  const asked = new Set();
  const result = await esbuild.build({ ...common(root), entryPoints: [entry], outfile, plugins: [program(read, vendor, root, known, asked)] });
  return {
    inputs: files(result.metafile),
    sha256: Object.fromEntries([...read].map(([path, hash]) => [relative(root, path), hash])),
    vendor: [...vendor].sort(),
    // Only the questions this program still asks: a removed import leaves nothing behind.
    resolutions: Object.fromEntries([...asked].sort().map((question) => [question, /** @type {string} */ (known.get(question))])),
  };
}

/**
 * Bundles the npm files `modules` (paths relative to `root`) into `outfile`. Importing it makes `load(path)` what the
 * program's bundle calls: the module at that path, initialized on its first call. Returns the files that went in.
 * @param {{ modules: string[], outfile: string, root: string }} options
 * @returns {Promise<{ inputs: string[] }>}
 */
export async function buildDependencies({ modules, outfile, root }) {
  const cases = modules.map((path) => `    case ${JSON.stringify(path)}: return require(${JSON.stringify(resolve(root, path))});`);
  const contents = [
    "export function load(path) {",
    "  switch (path) {",
    ...cases,
    "    default: throw new Error(`the dependencies' bundle has no ${path}: rebuild it (delete the bundle cache)`);",
    "  }",
    "}",
    `globalThis[Symbol.for(${JSON.stringify(VENDOR)})] = load;`,
  ].join("\n");
  const result = await esbuild.build({
    ...common(root),
    stdin: { contents, resolveDir: root, sourcefile: DEPENDENCIES_ENTRY, loader: "js" },
    outfile,
    write: false,
  });
  await writeFile(outfile, giveFileLocations(result.outputFiles[0].contents, root));
  return { inputs: files(result.metafile) };
}
