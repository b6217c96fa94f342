/** Writes <outRoot>/<env>/ for each environment: prometheus.yml, the rules, the exporter queries, the dashboards. */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EnvironmentConfig } from "@platform/config";
import { renderMonitoring } from "./render.js";

export function writeMonitoring(configs: readonly EnvironmentConfig[], outRoot: string, log: (line: string) => void = console.log): void {
  for (const config of configs) {
    const dir = join(outRoot, config.name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const { files } = renderMonitoring(config);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    log(`monitoring ${config.name}: ${Object.keys(files).join(", ")} -> ${dir}/`);
  }
}
