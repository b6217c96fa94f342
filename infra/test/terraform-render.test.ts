/**
 * What Terraform itself makes of the synthesized strings. Terraform parses every JSON string as a template, so a
 * generated file carried as a string (the Citus startup scripts) must come out of Terraform byte for byte. The real
 * `terraform` CLI renders them here through built-in `terraform_data` resources: no provider, no network.
 * Skipped with the reason when terraform is not installed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { SynthesizedStack } from "../src/app.js";
import { block } from "../src/policy/index.js";
import { renderedByTerraform, terraformLiteral } from "../src/terraform-literal.js";
import { resourcesOf, synthesizeAll } from "./helpers.js";

const terraformMissing = spawnSync("terraform", ["version"]).error ? "the terraform CLI is not installed" : undefined;
if (terraformMissing) console.warn(`skipping Terraform rendering tests: ${terraformMissing}`);

/** Renders each string as Terraform would (a terraform_data input each) and returns what the plan holds. */
function renderWithTerraform(strings: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "tf-render-"));
  try {
    const config = { resource: { terraform_data: Object.fromEntries(strings.map((s, i) => [`s${i}`, { input: s }])) } };
    writeFileSync(join(dir, "main.tf.json"), JSON.stringify(config));
    const env = { ...process.env, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1" };
    const run = (...args: string[]) => execFileSync("terraform", args, { cwd: dir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 });
    run("init", "-input=false", "-backend=false");
    run("plan", "-input=false", "-lock=false", "-out=plan");
    const plan = JSON.parse(run("show", "-json", "plan")) as { planned_values: { root_module: { resources: { name: string; values: { input: string } }[] } } };
    const byName = new Map(plan.planned_values.root_module.resources.map((r) => [r.name, r.values.input]));
    return strings.map((_, i) => byName.get(`s${i}`)!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(terraformMissing)("Terraform renders the synthesized strings as intended", () => {
  let stacks: SynthesizedStack[];
  beforeAll(() => {
    stacks = synthesizeAll();
  });

  it("every Citus VM's startup script reaches the VM byte for byte, shell ${VAR} expansions included", () => {
    const scripts = stacks.flatMap((s) =>
      resourcesOf(s.json, "google_compute_instance").map((vm) => (block(vm.conf.metadata) as Record<string, string>)["startup-script"]!),
    );
    expect(scripts.length).toBeGreaterThan(10);
    const rendered = renderWithTerraform(scripts);
    rendered.forEach((text, i) => {
      expect(text).toBe(renderedByTerraform(scripts[i]!));
      expect(text).toContain('"${PSQL[@]}"');
      expect(text.startsWith("#!/bin/bash\n")).toBe(true);
    });
  }, 120_000);

  it("terraformLiteral round-trips text full of template syntax; unescaped, Terraform refuses it", () => {
    const text = 'echo "${PSQL[@]}" ${3:-postgres} %{ if x } $${already} %%{also} $HOME {} }\n\\n';
    expect(renderWithTerraform([terraformLiteral(text)])).toEqual([text]);
    expect(() => renderWithTerraform([text])).toThrow(/Invalid character|Invalid expression/);
  }, 60_000);
});
