import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { App, Yaml } from "cdk8s";
import type { EnvironmentConfig } from "@platform/config";
import { SetupChart } from "./charts/setup.js";
import { TenantsChart } from "./charts/tenants.js";
import { GatewayChart } from "./charts/gateway.js";
import { AuthChart } from "./charts/auth.js";
import { MonitoringChart } from "./charts/monitoring/index.js";
import { chartContext } from "./topology.js";

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
export function buildApp(config: EnvironmentConfig): App {
  const app = new App();
  // File names sort in apply order: the setup file (namespaces, priority classes) first.
  const ctx = chartContext(config);
  new SetupChart(app, "00-setup", ctx);
  new AuthChart(app, "10-auth", ctx);
  new GatewayChart(app, "10-gateway", ctx);
  new TenantsChart(app, "20-tenants", ctx);
  new MonitoringChart(app, "30-monitoring", ctx);
  return app;
}

/**
 * Synthesizes into `outdir` (emptied first, so a removed object does not linger) and returns the objects written, in
 * file order. What cdk8s's `App.synth()` does with one file per chart (`<chart id>.k8s.yaml`, through its own YAML
 * writer), but keeping each chart's JSON: `synth()` drops it, and asking each chart for it again rendered every
 * object twice (about a fifth of the manifests' synthesis, `pnpm bench:synth`); reading the files back cost as much.
 */
export function synthesizeEnvironment(config: EnvironmentConfig, outdir: string): SynthesisResult {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const objects: KubernetesObject[] = [];
  const files: string[] = [];
  for (const chart of [...buildApp(config).charts].sort((a, b) => a.node.id.localeCompare(b.node.id))) {
    const chartObjects = chart.toJson() as KubernetesObject[];
    const file = `${chart.node.id}.k8s.yaml`;
    Yaml.save(join(outdir, file), chartObjects);
    objects.push(...chartObjects);
    files.push(file);
  }
  return { objects, files };
}
