/**
 * What Terraform itself makes of the synthesized strings. Terraform parses every JSON string as a template, so a
 * generated file carried as a string (the Citus startup scripts) must come out of Terraform byte for byte. The real
 * `terraform` CLI renders them here through built-in `terraform_data` resources: no provider, no network. The same
 * stand-ins let Terraform check each stack's dependency graph. Skipped with the reason when terraform is not installed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { SynthesizedStack } from "../src/app.js";
import { block } from "../src/policy/index.js";
import { terraformLiteral } from "../src/terraform-literal.js";
import { citusSharedScript } from "../src/citus/startup-script.js";
import { renderedStartupScript, resourcesOf } from "./helpers.js";
import { synthesizedStacks } from "./synthesized.js";

const terraformMissing = spawnSync("terraform", ["version"]).error ? "the terraform CLI is not installed" : undefined;
if (terraformMissing) console.warn(`skipping Terraform rendering tests: ${terraformMissing}`);

interface Plan {
  planned_values: { root_module: { resources: { name: string; values: { input: string } }[] } };
}

/** Runs the real CLI in `dir`; Terraform's refusal is thrown with its stderr. */
function terraformIn(dir: string): (...args: string[]) => string {
  const env = { ...process.env, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1" };
  return (...args: string[]) => {
    const result = spawnSync("terraform", args, { cwd: dir, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
    if (result.status !== 0) throw new Error(`terraform ${args[0]} failed: ${result.stderr}`);
    return result.stdout;
  };
}

/** Plans a provider-free configuration with the real CLI. */
function planWithTerraform(config: Record<string, unknown>): Plan {
  const dir = mkdtempSync(join(tmpdir(), "tf-render-"));
  try {
    writeFileSync(join(dir, "main.tf.json"), JSON.stringify(config));
    const run = terraformIn(dir);
    run("init", "-input=false", "-backend=false", "-no-color");
    run("plan", "-input=false", "-lock=false", "-no-color", "-out=plan");
    return JSON.parse(run("show", "-json", "plan")) as Plan;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Renders each string as Terraform would (a terraform_data input each, beside `locals`) and returns the results. */
function renderWithTerraform(strings: readonly string[], locals: Record<string, unknown> = {}): string[] {
  const plan = planWithTerraform({ locals, resource: { terraform_data: Object.fromEntries(strings.map((s, i) => [`s${i}`, { input: s }])) } });
  const byName = new Map(plan.planned_values.root_module.resources.map((r) => [r.name, r.values.input]));
  return strings.map((_, i) => byName.get(`s${i}`)!);
}

/**
 * The stack's resources as provider-free stand-ins: one terraform_data per resource, named after its address, with
 * its depends_on rewritten to the stand-ins; the stack's `terraform` block without its backend.
 */
function dependencyStandIn(stack: SynthesizedStack): { terraform: Record<string, unknown>; resource: { terraform_data: Record<string, { depends_on?: string[] }> } } {
  const standIn = (address: string) => `terraform_data.${address.replace(".", "__")}`;
  const resources: Record<string, { depends_on?: string[] }> = {};
  for (const [type, byName] of Object.entries(stack.json.resource ?? {})) {
    for (const [name, conf] of Object.entries(byName)) {
      const dependsOn = conf.depends_on as string[] | undefined;
      resources[standIn(`${type}.${name}`).slice("terraform_data.".length)] = dependsOn ? { depends_on: dependsOn.map(standIn) } : {};
    }
  }
  return { terraform: { required_version: stack.json.terraform?.required_version }, resource: { terraform_data: resources } };
}

describe.skipIf(terraformMissing)("Terraform renders the synthesized strings as intended", () => {
  let stacks: SynthesizedStack[];
  beforeAll(() => {
    stacks = synthesizedStacks();
  });

  it("every Citus VM's startup script (its header, then the stack's shared body) reaches the VM byte for byte", () => {
    for (const stack of stacks) {
      // The Citus VMs (the etcd VMs' scripts are built the same way, with a body of their own).
      const vms = resourcesOf(stack.json, "google_compute_instance").filter((vm) => (vm.conf.labels as Record<string, string>)["citus-role"]);
      const scripts = vms.map((vm) => (block(vm.conf.metadata) as Record<string, string>)["startup-script"]!);
      expect(scripts.length).toBeGreaterThan(3);
      const rendered = renderWithTerraform(scripts, stack.json.locals);
      rendered.forEach((text, i) => {
        expect(text).toBe(renderedStartupScript(stack.json, vms[i]!.conf));
        // The shared part byte for byte (the bootstrap's libraries, programs and main script at its end), after a header of the node's variables.
        expect(text.endsWith(citusSharedScript())).toBe(true);
        expect(text.startsWith("#!/bin/bash\n# Generated by @platform/infra for ")).toBe(true);
        expect(text).toContain('"${PSQL[@]}"');
      });
    }
  }, 180_000);

  it("accepts each stack's dependency graph (APIs first, no cycle) under the stack's required_version", () => {
    for (const stack of stacks) {
      const config = dependencyStandIn(stack);
      const planned = planWithTerraform(config).planned_values.root_module.resources;
      expect(planned.length).toBe(Object.keys(config.resource.terraform_data).length);
    }
    // The same check refuses a cycle (an API that waited for a resource waiting for the APIs) and a version the CLI
    // does not meet, so passing above means something.
    const config = dependencyStandIn(stacks[0]!);
    const service = Object.keys(config.resource.terraform_data).find((n) => n.startsWith("google_project_service__"))!;
    const gated = Object.entries(config.resource.terraform_data).find(([n]) => n.startsWith("google_dns_managed_zone__"))!;
    expect(gated[1].depends_on?.some((d) => d.startsWith("terraform_data.terraform_data__"))).toBe(true);
    config.resource.terraform_data[service] = { depends_on: [`terraform_data.${gated[0]}`] };
    expect(() => planWithTerraform(config)).toThrow(/Cycle/);
    expect(() => planWithTerraform({ ...dependencyStandIn(stacks[0]!), terraform: { required_version: ">= 99.0.0" } })).toThrow(
      /Unsupported Terraform Core version/,
    );
  }, 180_000);

  it("orders an API enabled later before the resources that wait on the gate, though the gate itself is unchanged", () => {
    const dir = mkdtempSync(join(tmpdir(), "tf-order-"));
    try {
      const run = terraformIn(dir);
      const config = dependencyStandIn(stacks[0]!);
      const gate = Object.keys(config.resource.terraform_data).find((n) => n.startsWith("terraform_data__"))!;
      writeFileSync(join(dir, "main.tf.json"), JSON.stringify(config));
      run("init", "-input=false", "-no-color");
      run("apply", "-input=false", "-auto-approve", "-no-color");
      // A new API (slow to enable) and a new resource behind the gate, as when production turns on an API.
      const resources = config.resource.terraform_data as Record<string, Record<string, unknown>>;
      resources.google_project_service__NewApi = { provisioner: [{ "local-exec": { command: "sleep 2" } }] };
      resources[gate]!.depends_on = [...(resources[gate]!.depends_on as string[]), "terraform_data.google_project_service__NewApi"];
      resources.google_dns_record_set__NewRecord = { depends_on: [`terraform_data.${gate}`] };
      writeFileSync(join(dir, "main.tf.json"), JSON.stringify(config));
      const log = run("apply", "-input=false", "-auto-approve", "-no-color");
      expect(log).toMatch(/Resources: 2 added, 0 changed, 0 destroyed/);
      expect(log.indexOf("google_project_service__NewApi: Creation complete")).toBeGreaterThan(-1);
      expect(log.indexOf("google_dns_record_set__NewRecord: Creating")).toBeGreaterThan(log.indexOf("google_project_service__NewApi: Creation complete"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("terraformLiteral round-trips text full of template syntax; unescaped, Terraform refuses it", () => {
    const text = 'echo "${PSQL[@]}" ${3:-postgres} %{ if x } $${already} %%{also} $HOME {} }\n\\n';
    expect(renderWithTerraform([terraformLiteral(text)])).toEqual([text]);
    expect(() => renderWithTerraform([text])).toThrow(/Invalid character|Invalid expression/);
  }, 60_000);
});
