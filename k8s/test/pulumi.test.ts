import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnvironment } from "@platform/config";
import { waitFor } from "@platform/testing";
import { synthesizeEnvironment, type KubernetesObject } from "../src/app.js";

/** Pulumi's own mocks: the program runs in-process, every resource it registers is recorded, nothing is applied. */
const registered: { type: string; name: string; inputs: Record<string, unknown> }[] = [];
pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    // The provider's YAML decoding is an invoke; the mock decodes as the provider would.
    call: (args) =>
      args.token === "kubernetes:yaml:decode"
        ? { result: parseAllDocuments(String(args.inputs.text)).map((d) => d.toJSON()).filter((d) => d !== null) }
        : args.inputs,
  },
  "platform-k8s",
  "dev",
  false,
);

const dir = mkdtempSync(join(tmpdir(), "pulumi-"));
let objects: KubernetesObject[];
beforeAll(() => {
  writeFileSync(join(dir, "empty.json"), "{}");
  const config = loadEnvironment("dev", { env: {}, overrideFile: join(dir, "empty.json") });
  objects = synthesizeEnvironment(config, join(dir, "dist", "dev")).objects;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the Pulumi program over the synthesized manifests", () => {
  it("registers one ConfigGroup per file and every object in them", async () => {
    const { applyManifests } = await import("../src/pulumi/apply.js");
    const groups = applyManifests({ environment: "dev", distDir: join(dir, "dist") });
    await new Promise<void>((resolve) => pulumi.all(Object.values(groups)).apply(() => resolve()));
    // The ConfigGroups read their files and register their children after they resolve: wait for as many children as
    // the manifests hold (bounded; a loaded machine took longer than a fixed pause), then compare them exactly.
    const isChild = (r: { type: string }) => r.type !== "kubernetes:yaml:ConfigGroup" && r.type !== "kubernetes:yaml:ConfigFile";
    // On a timeout the exact comparison below says which objects are missing, which a timeout's message would not.
    await waitFor("every manifest's object registered", () => registered.filter(isChild).length >= objects.length, { intervalMs: 100 }).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    const expected = ["00-setup", "10-auth", "10-gateway", "20-tenants", "30-monitoring"];
    expect(Object.keys(groups)).toEqual(expected);
    expect(registered.filter((r) => r.type === "kubernetes:yaml:ConfigGroup").map((r) => r.name)).toEqual(expected);
    const children = registered.filter(isChild);
    expect(children.length).toBe(objects.length);
    const deployment = children.find((r) => r.type === "kubernetes:apps/v1:Deployment" && String(r.name).endsWith("tenant-service"));
    expect(deployment, "the tenant-service Deployment is registered").toBeDefined();
  });

  it("refuses to run before `pnpm synth`, saying so", async () => {
    const { applyManifests } = await import("../src/pulumi/apply.js");
    expect(() => applyManifests({ environment: "staging", distDir: join(dir, "dist") })).toThrow(/run `pnpm synth` at the repository root first/);
  });
});
