// @ts-check
/**
 * Runs a TypeScript entry point from a bundle of it, built once and reused until one of its inputs changes:
 *
 *   node scripts/bundle/run.mjs <entry.ts> [arguments...]       (`pnpm synth` is this, for scripts/src/synth.ts)
 *
 * Why: the main job spent most of its time loading modules, not synthesizing: Node resolving and reading about a
 * thousand files, tsx compiling forty TypeScript files on its loader thread. One file, already JavaScript, loads in
 * a fraction of that (infra/README.md, "Figures: synthesis time"). The outputs are the same byte for byte
 * (scripts/test/synth.test.ts runs both ways and compares).
 *
 * When the bundle is rebuilt (scripts/bundle/build.mjs, about a second): on the first run, and whenever any file that
 * went into it differs from when it was built: our sources by content (SHA-256), the npm dependencies by size and
 * modification time; or Node, esbuild, the lockfile or the builder changed. Files the program reads at run time (the
 * VM bootstrap scripts, platform.config.json, the environment) are read from the tree as ever, never cached.
 *
 * The cache is node_modules/.cache/platform-bundles/ (PLATFORM_BUNDLE_CACHE moves it); deleting it is always safe.
 * PLATFORM_BUNDLE_VERBOSE=1 says on stderr whether the bundle was reused or rebuilt, and why. To run the sources
 * themselves (TypeScript stack traces, a debugger): `pnpm exec tsx <entry.ts>`.
 *
 * Plain JavaScript, run by plain Node: a TypeScript loader here would cost what the bundle saves.
 */
import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BUILDER = join(ROOT, "scripts", "bundle", "build.mjs");
const verbose = process.env.PLATFORM_BUNDLE_VERBOSE === "1";

/**
 * @typedef {{ file: string, sha256: string } | { file: string, size: number, mtimeMs: number }} Input
 * @typedef {{ key: string, bundle: string, inputs: Input[] }} Manifest
 */

const sha256 = (/** @type {string | Buffer} */ data) => createHash("sha256").update(data).digest("hex");

/** What every bundle depends on beyond its inputs: a change here makes every bundle stale. */
function cacheKey() {
  const esbuild = JSON.parse(readFileSync(createRequire(BUILDER).resolve("esbuild/package.json"), "utf8")).version;
  return [
    `node ${process.version}`,
    `esbuild ${esbuild}`,
    `builder ${sha256(readFileSync(BUILDER)).slice(0, 16)}`,
    `lockfile ${lockfile()}`,
  ].join(", ");
}

/** The lockfile's hash: what was installed. A tree without one (an unpacked archive) has only its node_modules. */
function lockfile() {
  try {
    return sha256(readFileSync(join(ROOT, "pnpm-lock.yaml"))).slice(0, 16);
  } catch {
    return "none";
  }
}

/** An input as it is now: ours by content, a dependency's by size and time (the header). */
function describe(/** @type {string} */ file) {
  const path = resolve(ROOT, file);
  if (file.includes("node_modules/")) {
    const { size, mtimeMs } = statSync(path);
    return { file, size, mtimeMs };
  }
  return { file, sha256: sha256(readFileSync(path)) };
}

/** Why the cached bundle cannot be used, or undefined when it can. */
function staleness(/** @type {Manifest | undefined} */ manifest, /** @type {string} */ key, /** @type {string} */ cacheDir) {
  if (!manifest) return "no bundle built yet";
  if (manifest.key !== key) return `${manifest.key} became ${key}`;
  try {
    statSync(join(cacheDir, manifest.bundle));
  } catch {
    return `${manifest.bundle} is gone`;
  }
  for (const input of manifest.inputs) {
    let now;
    try {
      now = describe(input.file);
    } catch {
      return `${input.file} is gone`;
    }
    if (JSON.stringify(now) !== JSON.stringify(input)) return `${input.file} changed`;
  }
  return undefined;
}

/** Builds the bundle, writes it and its manifest (each by a rename, so a concurrent run reads one whole or the other). */
async function rebuild(/** @type {string} */ entry, /** @type {string} */ name, /** @type {string} */ key, /** @type {string} */ cacheDir) {
  const { buildBundle } = await import(pathToFileURL(BUILDER).href);
  try {
    mkdirSync(cacheDir, { recursive: true });
    accessSync(cacheDir, constants.W_OK);
  } catch (error) {
    console.error(
      `${relative(ROOT, entry)}: not run: its bundle cannot be written to ${cacheDir} (${/** @type {Error} */ (error).message}); ` +
        "set PLATFORM_BUNDLE_CACHE to a directory this user can write, or run the sources with pnpm exec tsx",
    );
    process.exit(1);
  }
  const scratch = join(cacheDir, `${name}.${process.pid}.tmp.mjs`);
  try {
    /** @type {{ inputs: string[], sha256: Record<string, string> }} */
    const { inputs, sha256: bundled } = await buildBundle({ entry, outfile: scratch, root: ROOT });
    const bundle = `${name}-${sha256(readFileSync(scratch)).slice(0, 16)}.mjs`;
    renameSync(scratch, join(cacheDir, bundle));
    /** @type {Manifest} */
    // A source as it was bundled (the builder hashed what it read), the rest as it is now.
    const manifest = { key, bundle, inputs: inputs.map((file) => (bundled[file] ? { file, sha256: bundled[file] } : describe(file))) };
    const manifestScratch = join(cacheDir, `${name}.${process.pid}.tmp.json`);
    writeFileSync(manifestScratch, `${JSON.stringify(manifest, null, 1)}\n`);
    renameSync(manifestScratch, join(cacheDir, `${name}.json`));
    // Older bundles of this entry, after an hour: a run that read the old manifest a moment ago may still load one.
    for (const old of readdirSync(cacheDir)) {
      if (old.startsWith(`${name}-`) && old.endsWith(".mjs") && old !== bundle && Date.now() - statSync(join(cacheDir, old)).mtimeMs > 3_600_000) {
        rmSync(join(cacheDir, old), { force: true });
      }
    }
    return manifest;
  } catch (error) {
    rmSync(scratch, { force: true });
    // esbuild's errors say file:line:column; a TypeScript syntax error reads as it would under tsx.
    const errors = /** @type {{ errors?: { text: string, location?: { file: string, line: number, column: number } }[] }} */ (error).errors;
    if (!errors?.length) throw error;
    for (const e of errors) console.error(e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text);
    console.error(`${relative(ROOT, entry)}: not run, since its bundle could not be built (the errors above)`);
    process.exit(1);
  }
}

const [entryArgument, ...args] = process.argv.slice(2);
if (!entryArgument || !entryArgument.endsWith(".ts")) {
  console.error("usage: node scripts/bundle/run.mjs <entry.ts> [arguments...]");
  process.exit(2);
}
const entry = resolve(entryArgument);
const name = relative(ROOT, entry).replace(/\.ts$/, "").replace(/[^\w.-]+/g, "_");
const cacheDir = resolve(process.env.PLATFORM_BUNDLE_CACHE ?? join(ROOT, "node_modules", ".cache", "platform-bundles"));
const key = cacheKey();

/** @type {Manifest | undefined} */
let manifest;
try {
  manifest = JSON.parse(readFileSync(join(cacheDir, `${name}.json`), "utf8"));
} catch {
  manifest = undefined;
}
const stale = staleness(manifest, key, cacheDir);
if (stale) {
  const started = Date.now();
  manifest = await rebuild(entry, name, key, cacheDir);
  if (verbose) console.error(`bundle: ${relative(ROOT, entry)} rebuilt in ${Date.now() - started} ms (${stale})`);
} else if (verbose) {
  console.error(`bundle: ${relative(ROOT, entry)} reused (${manifest?.inputs.length} inputs unchanged)`);
}
// The program sees the command line it would under tsx: argv[1] its entry, then its own arguments.
process.argv = [process.argv[0] ?? "node", entry, ...args];
await import(pathToFileURL(join(cacheDir, /** @type {Manifest} */ (manifest).bundle)).href);
