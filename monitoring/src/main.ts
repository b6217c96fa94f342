/** Writes monitoring/dist/<env>/: prometheus.yml, platform.rules.yml, postgres-exporter-queries.yml. */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadAllEnvironments } from "@platform/config";
import { renderMonitoring } from "./render.js";

let configs;
try {
  configs = loadAllEnvironments();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : `monitoring synth: ${(error as Error).message}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
for (const config of configs) {
  const dir = join(process.env.MONITORING_OUTDIR ?? "dist", config.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const { files } = renderMonitoring(config);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  console.log(`monitoring ${config.name}: ${Object.keys(files).join(", ")} -> ${dir}/`);
}
