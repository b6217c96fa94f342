/**
 * `pnpm synth`, the main job, run as operators run it (the root package.json's command: scripts/src/synth.ts from its
 * bundle, scripts/bundle/run.mjs, in a process of its own, from a cache of this test's own, built cold): every layer in
 * one process, the same files as each layer's own entry point writes under tsx (`cdktf synth` through
 * infra/src/main.ts, monitoring's and k8s's main.ts), byte for byte, and the exit codes it documents.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../src/paths.js";

const tsx = join(REPO_ROOT, "node_modules", ".bin", "tsx");
const dir = mkdtempSync(join(tmpdir(), "synth-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `pnpm synth`'s command, as the root package.json has it, run without pnpm in front (the same process). */
const synthCommand = (() => {
  const command = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.synth!;
  const [program, ...args] = command.split(" ");
  return { program: program === "tsx" ? tsx : program!, args };
})();
const synth = (env: Record<string, string>) =>
  spawnSync(synthCommand.program, synthCommand.args, { cwd: REPO_ROOT, env: { ...process.env, PLATFORM_BUNDLE_CACHE: join(dir, "bundles"), ...env }, encoding: "utf8" });

/** Every file under `root`, by its path relative to it, with its content. */
function tree(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else files[relative(root, path)] = readFileSync(path, "utf8");
    }
  };
  walk(root);
  return files;
}

const outputs = (base: string) => ({ CDKTF_OUTDIR: join(base, "infra"), MONITORING_OUTDIR: join(base, "monitoring"), K8S_OUTDIR: join(base, "k8s") });

describe("pnpm synth", () => {
  it("writes every layer in one process, the same files as the layers' own entry points", () => {
    const one = join(dir, "one");
    const run = synth(outputs(one));
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/synthesized production: \d+ resources/);
    expect(run.stdout).toMatch(/monitoring production: prometheus\.yml/);
    expect(run.stdout).toMatch(/synthesized production: \d+ objects/);

    const separate = join(dir, "separate");
    const env = { ...process.env, ...outputs(separate) };
    for (const pkg of ["infra", "monitoring", "k8s"]) execFileSync(tsx, [join("src", "main.ts")], { cwd: join(REPO_ROOT, pkg), env, stdio: "ignore" });
    for (const layer of ["infra", "monitoring", "k8s"]) {
      const expected = tree(join(separate, layer));
      expect(Object.keys(expected).length, `${layer} wrote files`).toBeGreaterThan(2);
      expect(tree(join(one, layer)), `${layer}: the one-process job against the layer's own entry point`).toEqual(expected);
    }
  }, 180_000);

  it("exits 2 with one line on a config error", () => {
    const run = synth({ ...outputs(join(dir, "bad")), PLATFORM_ENVIRONMENTS: "dev,prod" });
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe("synth: PLATFORM_ENVIRONMENTS names unknown environment(s) prod; use any of dev, staging, production");
  }, 60_000);
});
