import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { App, YamlOutputType } from "cdk8s";
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
export function buildApp(config: EnvironmentConfig, outdir: string): App {
  const app = new App({ outdir, yamlOutputType: YamlOutputType.FILE_PER_CHART, outputFileExtension: ".k8s.yaml" });
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
 * file order: each chart's own JSON, which is what its file holds (read back and parsed, it cost as much again as
 * writing it).
 */
export function synthesizeEnvironment(config: EnvironmentConfig, outdir: string): SynthesisResult {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const app = buildApp(config, outdir);
  app.synth();
  const files = readdirSync(outdir).filter((f) => f.endsWith(".k8s.yaml")).sort();
  const charts = [...app.charts].sort((a, b) => a.node.id.localeCompare(b.node.id));
  const objects = charts.flatMap((chart) => chart.toJson() as KubernetesObject[]);
  return { objects, files };
}
