import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { App, YamlOutputType } from "cdk8s";
import { parseAllDocuments } from "yaml";
import type { EnvironmentConfig } from "@platform/config";
import { SetupChart } from "./charts/setup.js";
import { TenantsChart } from "./charts/tenants.js";
import { GatewayChart } from "./charts/gateway.js";
import { AuthChart } from "./charts/auth.js";
import { MonitoringChart } from "./charts/monitoring.js";

export interface KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  readonly [key: string]: unknown;
}

export interface SynthesisResult {
  readonly objects: KubernetesObject[];
  readonly files: string[];
}

/** Builds one environment's charts. Chart ids become file names: 00-setup first, then one file per application. */
export function buildApp(config: EnvironmentConfig, outdir: string): App {
  const app = new App({ outdir, yamlOutputType: YamlOutputType.FILE_PER_CHART, outputFileExtension: ".k8s.yaml" });
  // File names sort in apply order: the setup file (namespaces, priority classes) first.
  new SetupChart(app, "00-setup", config);
  new AuthChart(app, "10-auth", config);
  new GatewayChart(app, "10-gateway", config);
  new TenantsChart(app, "20-tenants", config);
  new MonitoringChart(app, "30-monitoring", config);
  return app;
}

/** Synthesizes into `outdir` (emptied first, so a removed object does not linger) and reads the result back. */
export function synthesizeEnvironment(config: EnvironmentConfig, outdir: string): SynthesisResult {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  buildApp(config, outdir).synth();
  const files = readdirSync(outdir).filter((f) => f.endsWith(".k8s.yaml")).sort();
  const objects = files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(outdir, file), "utf8"))
      .map((doc) => doc.toJSON() as KubernetesObject | null)
      .filter((o): o is KubernetesObject => o !== null),
  );
  return { objects, files };
}

/** Custom resources the cluster's add-ons define; kubernetes-models has no schema for them. */
export const CUSTOM_RESOURCES = new Set(["secrets-store.csi.x-k8s.io/v1/SecretProviderClass"]);

const requireModel = createRequire(import.meta.url);

/**
 * Validates an object against the Kubernetes OpenAPI schema (kubernetes-models). Returns the problem, or undefined.
 * Custom resources are checked only for their identity fields.
 */
export function validateObject(object: KubernetesObject): string | undefined {
  const key = `${object.apiVersion}/${object.kind}`;
  if (CUSTOM_RESOURCES.has(key)) return object.metadata?.name ? undefined : "custom resource without metadata.name";
  const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/") : ["", object.apiVersion];
  let Model: new (data: unknown) => { validate(): void };
  try {
    Model = requireModel(`kubernetes-models/${group ? `${group}/` : ""}${version}/${object.kind}`)[object.kind];
  } catch {
    return `unknown kind ${key} (not in the Kubernetes API schemas)`;
  }
  try {
    new Model(object).validate();
    return undefined;
  } catch (error) {
    return (error as Error).message.split("\n").slice(0, 5).join(" ");
  }
}
