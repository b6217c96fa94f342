/**
 * scripts/bundle/: a TypeScript entry point run from a bundle that is rebuilt exactly when something that went into it
 * changed. Run as `pnpm synth` runs it (plain node, scripts/bundle/run.mjs), on entry points of this test's own in a
 * scratch directory, with a cache of its own. The main job's own outputs through it: synth.test.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: plain JavaScript with JSDoc types, which this package's TypeScript config does not read.
import { giveFileLocations, packagePath, rewriteSource } from "../bundle/build.mjs";
import { REPO_ROOT } from "../src/paths.js";

const dir = mkdtempSync(join(tmpdir(), "bundle-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cache = join(dir, "cache");
/** run.mjs with these arguments: an entry and its own, or a flag of run.mjs's first. */
const run = (...args: string[]) =>
  spawnSync("node", [join(REPO_ROOT, "scripts", "bundle", "run.mjs"), ...args], {
    cwd: dir,
    env: { ...process.env, PLATFORM_BUNDLE_CACHE: cache, PLATFORM_BUNDLE_VERBOSE: "1" },
    encoding: "utf8",
  });

describe("a TypeScript entry point run from its bundle", () => {
  it("builds once, reuses it while nothing changed, and rebuilds when a source's content changed, even at the same size and time", () => {
    const dep = join(dir, "dep.ts");
    const entry = join(dir, "entry.ts");
    writeFileSync(dep, `export const word: string = "alpha";\n`);
    // A whole second, so that setting it again below gives the very same modification time.
    const sameTime = Math.floor(Date.now() / 1000) - 60;
    utimesSync(dep, sameTime, sameTime);
    writeFileSync(entry, `import { word } from "./dep.ts";\nconsole.log(word, JSON.stringify(process.argv.slice(2)), process.argv[1]);\n`);

    const first = run("entry.ts", "--flag", "two words");
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe(`alpha ["--flag","two words"] ${entry}`);
    expect(first.stderr).toMatch(/entry\.ts rebuilt in \d+ ms \(not built yet\)/);

    const second = run("entry.ts");
    expect(second.stdout.trim()).toBe(`alpha [] ${entry}`);
    expect(second.stderr).toMatch(/entry\.ts reused \(2 inputs unchanged\)/);

    // The same length and modification time: only the content tells.
    const before = statSync(dep);
    writeFileSync(dep, `export const word: string = "omega";\n`);
    utimesSync(dep, sameTime, sameTime);
    expect([statSync(dep).size, statSync(dep).mtimeMs]).toEqual([before.size, before.mtimeMs]);
    const third = run("entry.ts");
    expect(third.stdout.trim()).toBe(`omega [] ${entry}`);
    expect(third.stderr).toMatch(/rebuilt in \d+ ms \(.*dep\.ts changed\)/);
    expect(third.stderr).toMatch(/its 0 npm modules reused/);
    // One bundle per build, the older kept for a while for a run that may still be loading it.
    expect(readdirSync(cache).filter((f) => /_entry-[0-9a-f]{16}\.mjs$/.test(f))).toHaveLength(2);
  });

  it("with --build-only builds what is stale and runs nothing, so the next run only loads (pnpm install's postinstall)", () => {
    const marker = join(dir, "prepared-ran");
    writeFileSync(join(dir, "prepared.ts"), `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "ran");\nconsole.log("ran");\n`);
    const built = run("--build-only", "prepared.ts");
    expect(built.status, built.stderr).toBe(0);
    expect(built.stdout).toBe("");
    expect(built.stderr).toMatch(/prepared\.ts rebuilt in \d+ ms \(not built yet\)/);
    expect(existsSync(marker)).toBe(false);
    const ran = run("prepared.ts");
    expect(ran.status, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe("ran");
    expect(ran.stderr).toMatch(/prepared\.ts reused/);
    expect(ran.stderr).not.toMatch(/rebuilt/);
  });

  it("refuses a source that does not compile, saying where, and runs nothing", () => {
    const entry = join(dir, "broken.ts");
    writeFileSync(entry, `console.log("ran");\nconst x: number = ;\n`);
    const result = run("broken.ts");
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/broken\.ts:2:\d+: Unexpected ";"/);
    expect(result.stderr).toContain("broken.ts: not run, since its bundle could not be built");
  });

  it("says where it could not write its bundle and what to do, and runs nothing", () => {
    const entry = join(dir, "unwritable.ts");
    writeFileSync(entry, `console.log("ran");\n`);
    const file = join(dir, "a-file");
    writeFileSync(file, "not a directory\n");
    const result = spawnSync("node", [join(REPO_ROOT, "scripts", "bundle", "run.mjs"), entry], {
      env: { ...process.env, PLATFORM_BUNDLE_CACHE: join(file, "cache") },
      encoding: "utf8",
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/not run: its bundle cannot be written to .*a-file\/cache \(ENOTDIR.*\); set PLATFORM_BUNDLE_CACHE to a directory this user can write/);
  });

  it("gives a module the URL of its own file, not the bundle's, so what it reads beside itself is found", () => {
    const sub = join(dir, "nested");
    rmSync(sub, { recursive: true, force: true });
    spawnSync("mkdir", ["-p", sub]);
    writeFileSync(join(sub, "data.txt"), "beside the module\n");
    writeFileSync(join(sub, "reader.ts"), `import { readFileSync } from "node:fs";\nexport const text = readFileSync(new URL("./data.txt", import.meta.url), "utf8").trim();\n`);
    writeFileSync(join(dir, "reads.ts"), `import { text } from "./nested/reader.ts";\nconsole.log(text);\n`);
    const result = run("reads.ts");
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe("beside the module");
  });

  it("serves npm modules from a bundle of their own: one instance each, interop as Node's, rebuilt only when they change", () => {
    const project = join(dir, "project");
    rmSync(project, { recursive: true, force: true });
    const pkg = (name: string, files: Record<string, string>) => {
      const root = join(project, "node_modules", name);
      mkdirSync(root, { recursive: true });
      for (const [file, text] of Object.entries(files)) writeFileSync(join(root, file), text);
    };
    // CommonJS with a class (instanceof across two importers), and an ES module package with a default export.
    pkg("shared-cjs", {
      "package.json": `{"name":"shared-cjs","version":"1.0.0","main":"index.js"}`,
      "index.js": `"use strict";\nclass Thing {}\nlet count = 0;\nmodule.exports = { Thing, made: () => ++count, here: __dirname, file: __filename };\n`,
    });
    pkg("only-esm", {
      "package.json": `{"name":"only-esm","version":"1.0.0","type":"module","exports":"./index.js"}`,
      "index.js": `export default function greet(who) { return "hello " + who; }\nexport const version = 1;\n`,
    });
    writeFileSync(join(project, "a.ts"), `import { Thing, made } from "shared-cjs";\nexport const a = new Thing();\nexport const first = made();\n`);
    writeFileSync(
      join(project, "main.ts"),
      [
        `import { a, first } from "./a.ts";`,
        `import shared from "shared-cjs";`,
        `import greet, { version } from "only-esm";`,
        `console.log(JSON.stringify({ same: a instanceof shared.Thing, second: shared.made(), first, greeting: greet("you"), version, here: shared.here, file: shared.file }));`,
      ].join("\n"),
    );
    const runIn = () =>
      spawnSync("node", [join(REPO_ROOT, "scripts", "bundle", "run.mjs"), "main.ts"], {
        cwd: project,
        env: { ...process.env, PLATFORM_BUNDLE_CACHE: join(project, "cache"), PLATFORM_BUNDLE_VERBOSE: "1" },
        encoding: "utf8",
      });

    const first = runIn();
    expect(first.status, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({
      same: true,
      second: 2,
      first: 1,
      greeting: "hello you",
      version: 1,
      here: join(project, "node_modules", "shared-cjs"),
      file: join(project, "node_modules", "shared-cjs", "index.js"),
    });
    expect(first.stderr).toMatch(/main\.ts rebuilt in \d+ ms \(not built yet\)/);
    expect(first.stderr).toMatch(/its 2 npm modules rebuilt in \d+ ms \(not built yet\)/);

    // An edit of ours: the program alone is rebuilt.
    writeFileSync(join(project, "a.ts"), `import { Thing, made } from "shared-cjs";\nexport const a = new Thing();\nexport const first = made() + 10;\n`);
    const edited = runIn();
    expect(JSON.parse(edited.stdout)).toMatchObject({ first: 11, same: true });
    expect(edited.stderr).toMatch(/main\.ts rebuilt in \d+ ms \(.*\/a\.ts changed\)/);
    expect(edited.stderr).toMatch(/its 2 npm modules reused \(2 inputs unchanged\)/);

    // The program's build before answered its npm imports; the next asks esbuild only where that answer's file is gone.
    const manifest = JSON.parse(readFileSync(join(project, "cache", readdirSync(join(project, "cache")).find((f) => f.endsWith("_main.json"))!), "utf8")) as { resolutions: Record<string, string> };
    // One question per kind of import, directory and name: main.ts and a.ts ask the same one for shared-cjs.
    expect(Object.values(manifest.resolutions).sort()).toEqual([
      expect.stringMatching(/node_modules\/only-esm\/index\.js$/),
      expect.stringMatching(/node_modules\/shared-cjs\/index\.js$/),
    ]);
    writeFileSync(join(project, "node_modules", "shared-cjs", "package.json"), `{"name":"shared-cjs","version":"1.0.1","main":"lib.js"}`);
    writeFileSync(join(project, "node_modules", "shared-cjs", "lib.js"), `class Thing {}\nlet count = 100;\nmodule.exports = { Thing, made: () => ++count, here: __dirname };\n`);
    rmSync(join(project, "node_modules", "shared-cjs", "index.js"));
    writeFileSync(join(project, "a.ts"), `import { Thing, made } from "shared-cjs";\nexport const a = new Thing();\nexport const first = made() + 1000;\n`);
    const moved = runIn();
    expect(moved.status, moved.stderr).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({ first: 1101, second: 102, same: true });
    expect(moved.stderr).toMatch(/its 2 npm modules rebuilt in \d+ ms \(not built yet\)/);

    // A dependency changed (as an install changes it): the dependencies alone are rebuilt.
    writeFileSync(join(project, "node_modules", "only-esm", "index.js"), `export default function greet(who) { return "hi " + who; }\nexport const version = 2;\n`);
    const installed = runIn();
    expect(JSON.parse(installed.stdout)).toMatchObject({ greeting: "hi you", version: 2 });
    expect(installed.stderr).toMatch(/main\.ts reused/);
    expect(installed.stderr).toMatch(/its 2 npm modules rebuilt in \d+ ms \(.*node_modules\/only-esm\/index\.js changed\)/);
  });

  it("lets four runs build the same bundles at once, each running whole", async () => {
    const sub = join(dir, "concurrent");
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(join(sub, "node_modules", "dep"), { recursive: true });
    writeFileSync(join(sub, "node_modules", "dep", "package.json"), `{"name":"dep","version":"1.0.0","main":"index.js"}`);
    writeFileSync(join(sub, "node_modules", "dep", "index.js"), `module.exports = { twice: (n) => 2 * n };\n`);
    writeFileSync(join(sub, "main.ts"), `import { twice } from "dep";\nconsole.log(twice(Number(process.argv[2])));\n`);
    const cacheOf = join(sub, "cache");
    const start = (n: number) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn("node", [join(REPO_ROOT, "scripts", "bundle", "run.mjs"), "main.ts", String(n)], {
          cwd: sub,
          env: { ...process.env, PLATFORM_BUNDLE_CACHE: cacheOf, PLATFORM_BUNDLE_VERBOSE: "1" },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
      });
    const runs = await Promise.all([1, 2, 3, 4].map(start));
    for (const [i, result] of runs.entries()) {
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(String(2 * (i + 1)));
    }
    // Whatever raced, what is left is whole: the next run reuses both.
    const after = await start(5);
    expect(after.stdout.trim()).toBe("10");
    expect(after.stderr).toMatch(/main\.ts reused/);
    expect(after.stderr).toMatch(/its 1 npm module reused/);
    expect(readdirSync(cacheOf).filter((f) => f.includes(".tmp."))).toEqual([]);
  });

  it("asks the plugin about every package path but Node's own and the workspace's, whatever their length", () => {
    const pattern = packagePath(["node:", "@platform/"]) as RegExp;
    const asked = ["zod", "cdktf", "n", "no", "nod", "node", "nodemailer", "node-fetch", "@", "@p", "@plat", "@platform", "@platformx/y", "@cdktf/provider-google/lib/x"];
    const notAsked = ["node:fs", "node:", "@platform/config", "@platform/config/dead-peers", "./a.ts", "../b", "/abs/c.js"];
    expect(asked.filter((path) => !pattern.test(path))).toEqual([]);
    expect(notAsked.filter((path) => pattern.test(path))).toEqual([]);
  });

  it("declares __dirname and __filename only in the wrapped CommonJS modules that name them, and refuses a bundle shaped otherwise", () => {
    const wrapped = (path: string, body: string) => `var require_x = __commonJS({\n  ${JSON.stringify(path)}(exports, module) {\n    ${body}\n  }\n});\n`;
    const bundle = [
      "var __commonJS = (cb, mod) => () => mod;\n",
      wrapped("node_modules/a/plain.js", "module.exports = 1;"),
      wrapped("node_modules/ü/named.js", "module.exports = __dirname;"),
    ].join("");
    const out = giveFileLocations(Buffer.from(bundle), "/repo").toString("utf8");
    // The file's own path, its name outside ASCII kept as written; nothing added to the module that does not ask.
    expect(out).toBe(
      bundle.replace(
        `"node_modules/ü/named.js"(exports, module) {\n`,
        `"node_modules/ü/named.js"(exports, module) {\n    var __filename = "/repo/node_modules/ü/named.js", __dirname = "/repo/node_modules/ü";\n`,
      ),
    );
    expect(() => giveFileLocations(Buffer.from(`console.log(__dirname);\n${bundle}`), "/repo")).toThrow(/names __dirname or __filename outside any CommonJS module esbuild wrapped/);
  });

  it("turns requireCommonJs with a literal id into a require the bundler follows, and refuses any other", () => {
    const file = "/repo/infra/src/x.ts";
    expect(rewriteSource(`const a = requireCommonJs(requireModule, "@cdktf/provider-google/lib/x") as T;`, file)).toBe(`const a = require("@cdktf/provider-google/lib/x") as T;`);
    expect(rewriteSource(`const { z } = requireCommonJs(createRequire(import.meta.url), "zod");`, file)).toBe(`const { z } = require("zod");`);
    expect(rewriteSource(`new URL("./b", import.meta.url)`, file)).toBe(`new URL("./b", "file:///repo/infra/src/x.ts")`);
    expect(() => rewriteSource(`// one\nconst k = requireCommonJs(r, MODULE);`, file)).toThrow(/x\.ts:2: requireCommonJs is called with an id that is not a string literal/);
    // Its own definition names it without a call to rewrite.
    expect(rewriteSource(`export function requireCommonJs(require: NodeJS.Require, id: string) {}`, "/repo/cli/src/commonjs.ts")).toContain("requireCommonJs(");
  });
});
