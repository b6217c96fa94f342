// @ts-check
/**
 * Builds one TypeScript entry point and everything it imports, our sources and their npm dependencies, into one
 * ES module file with esbuild, and lists what went into it (so scripts/bundle/run.mjs can tell when it is stale).
 * Plain JavaScript, because it runs before any TypeScript loader: that is the point (README.md, "The main job").
 *
 * Three things a bundle would otherwise get wrong, each made right here:
 * - `import.meta.url` in our sources would be the bundle's own URL: each module's is written in as the file it was.
 *   They read files beside themselves (the VM bootstrap scripts, the override file), at run time, from the tree.
 * - `requireCommonJs(r, "id")` (@platform/cli/commonjs, which loads big CommonJS libraries past tsx's hooks) is a
 *   dynamic require that esbuild cannot follow: it becomes `require("id")`, which esbuild inlines. An id that is not a
 *   string literal stops the build, saying where, since the bundle would otherwise fail only when it reached that line.
 * - `__dirname` and `__filename` in a CommonJS dependency are given that file's own values.
 */
import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { dirname, relative } from "node:path";
import { pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

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
 * The plugin, recording the SHA-256 of each source of ours as it read it: the manifest records what was bundled, not
 * what the file holds a moment later (an edit saved during the build makes the next run rebuild, as it should).
 * @param {Map<string, string>} read
 * @returns {esbuild.Plugin}
 */
const platform = (read) => ({
  name: "platform",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes("/node_modules/")) return undefined;
      try {
        const bytes = await readFile(args.path);
        read.set(args.path, createHash("sha256").update(bytes).digest("hex"));
        return { contents: rewriteSource(bytes.toString("utf8"), args.path), loader: "ts", resolveDir: dirname(args.path) };
      } catch (error) {
        return { errors: [{ text: /** @type {Error} */ (error).message }] };
      }
    });
    build.onLoad({ filter: /\.c?js$/ }, async (args) => {
      const bytes = await readFile(args.path);
      // Most have neither: esbuild then reads the file itself, which is faster than handing it the text.
      if (!bytes.includes("__dirname") && !bytes.includes("__filename")) return undefined;
      const text = bytes.toString("utf8");
      const values = `var __filename = ${JSON.stringify(args.path)}, __dirname = ${JSON.stringify(dirname(args.path))};\n`;
      return { contents: values + text, loader: "js" };
    });
  },
});

/**
 * Bundles `entry` into `outfile` and returns the files that went in, relative to `root`, and the SHA-256 of each of
 * our sources (by path relative to `root`) as it was bundled.
 * @param {{ entry: string, outfile: string, root: string }} options
 * @returns {Promise<{ inputs: string[], sha256: Record<string, string> }>}
 */
export async function buildBundle({ entry, outfile, root }) {
  /** @type {Map<string, string>} */
  const read = new Map();
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: `node${process.versions.node.split(".")[0]}`,
    // Node's builtins, required by the CommonJS dependencies, need a require in an ES module.
    banner: { js: 'import { createRequire as __platformCreateRequire } from "node:module"; const require = __platformCreateRequire(import.meta.url);' },
    plugins: [platform(read)],
    absWorkingDir: root,
    metafile: true,
    logLevel: "silent",
    legalComments: "none",
  });
  // Paths relative to absWorkingDir; esbuild's own virtual inputs (none today) have a namespace prefix.
  return {
    inputs: Object.keys(result.metafile.inputs).filter((file) => !file.includes(":")),
    sha256: Object.fromEntries([...read].map(([path, hash]) => [relative(root, path), hash])),
  };
}
