// @ts-check
/**
 * Runs a TypeScript entry point from a bundle of it, built once and reused until one of its inputs changes:
 *
 *   node scripts/bundle/run.mjs <entry.ts> [arguments...]       (`pnpm synth` is this, for scripts/src/synth.ts)
 *   node scripts/bundle/run.mjs --build-only <entry.ts>          (builds what is stale, runs nothing: `pnpm install`
 *                                                                 does this for synth, so its first run is not a build)
 *
 * Why: the main job spent most of its time loading modules, not synthesizing: Node resolving and reading about a
 * thousand files, tsx compiling forty TypeScript files on its loader thread. One file, already JavaScript, loads in
 * a fraction of that (infra/README.md, "Figures: synthesis time"). The outputs are the same byte for byte
 * (scripts/test/synth.test.ts runs both ways and compares).
 *
 * Two bundles (scripts/bundle/build.mjs): the program (our sources) and its dependencies (the npm modules they reach).
 * Each is rebuilt only when something that went into it differs from when it was built:
 * - the program (about 0.15 s, reusing its npm imports' resolutions): one of our sources, by content (SHA-256). An
 *   edit, a pull or a checkout rebuilds this. A package.json edited by hand in node_modules, without an install (the
 *   lockfile), is not seen: delete the cache.
 * - the dependencies (about 0.7 s): the set of npm modules the program imports, or one of their files by size and
 *   modification time. A new import of a package, or an install that changed a package, rebuilds this.
 * - both: Node, esbuild, the lockfile or the builder changed, or the cache is empty (a fresh clone's first run).
 * Files the program reads at run time (the VM bootstrap scripts, platform.config.json, the environment) are read from
 * the tree as ever, never cached.
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
  if (!manifest) return "not built yet";
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

/** Reads a manifest, or undefined when there is none (or it is not whole: it is then rebuilt). */
function readManifest(/** @type {string} */ path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * Builds one bundle with `build(scratch)`, then writes it and its manifest `${name}.json`, each by a rename, so a
 * concurrent run reads one whole or the other. `extra` goes into the manifest beside what every manifest has. Files of
 * the cache that `family` matches (older bundles, other manifests of the kind) are removed after an hour.
 * @template {Record<string, unknown>} T
 * @param {{ name: string, family: RegExp, key: string, cacheDir: string, build: (scratch: string) => Promise<{ inputs: string[], sha256?: Record<string, string>, extra: T }> }} options
 * @returns {Promise<Manifest & T>}
 */
async function rebuild({ name, family, key, cacheDir, build }) {
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
    const { inputs, sha256: bundled = {}, extra } = await build(scratch);
    const bundle = `${name}-${sha256(readFileSync(scratch)).slice(0, 16)}.mjs`;
    renameSync(scratch, join(cacheDir, bundle));
    // A source as it was bundled (the builder hashed what it read), the rest as it is now.
    const manifest = { key, bundle, inputs: inputs.map((file) => (bundled[file] ? { file, sha256: bundled[file] } : describe(file))), ...extra };
    const manifestScratch = join(cacheDir, `${name}.${process.pid}.tmp.json`);
    writeFileSync(manifestScratch, `${JSON.stringify(manifest, null, 1)}\n`);
    renameSync(manifestScratch, join(cacheDir, `${name}.json`));
    // Older ones, after an hour: a run that read the old manifest a moment ago may still load its bundle.
    for (const old of readdirSync(cacheDir)) {
      if (!family.test(old) || old === bundle || old === `${name}.json`) continue;
      if (Date.now() - statSync(join(cacheDir, old)).mtimeMs > 3_600_000) rmSync(join(cacheDir, old), { force: true });
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

/** The builder, loaded only when something is rebuilt: esbuild costs its own loading time. */
const builder = async () => import(pathToFileURL(BUILDER).href);

// --build-only: bring the bundles up to date and run nothing (`pnpm install` does this for `pnpm synth`: postinstall).
const buildOnly = process.argv[2] === "--build-only";
const [entryArgument, ...args] = process.argv.slice(buildOnly ? 3 : 2);
if (!entryArgument || !entryArgument.endsWith(".ts")) {
  console.error("usage: node scripts/bundle/run.mjs [--build-only] <entry.ts> [arguments...]");
  process.exit(2);
}
const entry = resolve(entryArgument);
const name = relative(ROOT, entry).replace(/\.ts$/, "").replace(/[^\w.-]+/g, "_");
const cacheDir = resolve(process.env.PLATFORM_BUNDLE_CACHE ?? join(ROOT, "node_modules", ".cache", "platform-bundles"));
const key = cacheKey();
const log = (/** @type {string} */ what, /** @type {string | undefined} */ stale, /** @type {number} */ started, /** @type {number} */ count) => {
  if (!verbose) return;
  console.error(stale ? `bundle: ${what} rebuilt in ${Date.now() - started} ms (${stale})` : `bundle: ${what} reused (${count} inputs unchanged)`);
};

/**
 * The dependencies' bundle for `modules`, rebuilt if stale, and why it was (undefined when it was not). Named by what
 * it holds, so entries (and trees) that need the same modules share one.
 * @returns {Promise<{ manifest: Manifest, stale: string | undefined }>}
 */
async function dependenciesFor(/** @type {string[]} */ modules) {
  // "+" is in no entry's name (see `name`), so these never meet an entry's files.
  const dependenciesName = `dependencies+${sha256(`${key}\n${modules.join("\n")}`).slice(0, 16)}`;
  /** @type {Manifest | undefined} */
  const manifest = readManifest(join(cacheDir, `${dependenciesName}.json`));
  const stale = staleness(manifest, key, cacheDir);
  if (!stale) return { manifest: /** @type {Manifest} */ (manifest), stale };
  const { buildDependencies } = await builder();
  const built = await rebuild({
    name: dependenciesName,
    family: /^dependencies\+[0-9a-f]{16}(-[0-9a-f]{16}\.mjs|\.json)$/,
    key,
    cacheDir,
    build: async (outfile) => ({ ...(await buildDependencies({ modules, outfile, root: ROOT })), extra: {} }),
  });
  return { manifest: built, stale };
}
const load = (/** @type {Manifest} */ manifest) => import(pathToFileURL(join(cacheDir, manifest.bundle)).href);

/** @type {(Manifest & { modules: string[], resolutions: Record<string, string> }) | undefined} */
let program = readManifest(join(cacheDir, `${name}.json`));
let started = Date.now();
const programStale = staleness(program, key, cacheDir);
if (programStale) {
  const { buildProgram } = await builder();
  program = await rebuild({
    name,
    family: new RegExp(`^${name.replaceAll(".", "\\.")}-[0-9a-f]{16}\\.mjs$`),
    key,
    cacheDir,
    build: async (outfile) => {
      // The npm imports' resolutions of the build before, unless Node, esbuild, the builder or the lockfile changed.
      const resolutions = program?.key === key ? program.resolutions : undefined;
      const built = await buildProgram({ entry, outfile, root: ROOT, resolutions });
      return { inputs: built.inputs, sha256: built.sha256, extra: { modules: built.vendor, resolutions: built.resolutions } };
    },
  });
}
const { modules } = /** @type {Manifest & { modules: string[] }} */ (program);
log(relative(ROOT, entry), programStale, started, program?.inputs.length ?? 0);

started = Date.now();
const { manifest: dependencies, stale: dependenciesStale } = await dependenciesFor(modules);
log(`its ${modules.length} npm module${modules.length === 1 ? "" : "s"}`, dependenciesStale, started, dependencies.inputs.length);

if (buildOnly) process.exit(0);
// The dependencies first: importing them sets what the program's bundle asks for its npm modules. (Loading them while
// the program is rebuilt gained nothing: this thread then answers esbuild's plugin calls late.)
await load(dependencies);
// The program sees the command line it would under tsx: argv[1] its entry, then its own arguments.
process.argv = [process.argv[0] ?? "node", entry, ...args];
await load(/** @type {Manifest} */ (program));
