/**
 * `pnpm outputs <env> <file> [--json]`: a deployed stack's outputs, as `cdktf output <env> --outputs-file <file>`
 * wrote them, checked against the output schema and against the names the Kubernetes manifests carry from the config
 * (src/outputs.ts), then printed with the addresses that exist only after a deploy.
 * Exit codes: 0 they agree, 1 the stack disagrees with the config (it was deployed from another one), 2 bad input
 * (unknown environment, no such file, not JSON, no section for the environment, an output missing or malformed).
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { ENVIRONMENT_NAMES, isEnvironmentName, loadEnvironment, platformNames } from "@platform/config";
import { main } from "@platform/cli";
import { DEPLOYED_ONLY, KUBERNETES_EXPECTS, StackOutputsError, outputsDisagreeingWithConfig, readStackOutputs, type StackOutputName } from "./outputs.js";

const program = new Command()
  .name("outputs")
  .description("check a deployed stack's outputs against the config the Kubernetes manifests are synthesized from")
  .argument("<env>", `environment: ${ENVIRONMENT_NAMES.join(", ")}`)
  .argument("<file>", "what `cd infra && pnpm exec cdktf output <env> --outputs-file <file>` wrote")
  .option("--json", "print the checked outputs as JSON")
  .action((env: string, file: string, o: { json?: boolean }) => {
    if (!isEnvironmentName(env)) throw new StackOutputsError(`unknown environment "${env}"; use one of ${ENVIRONMENT_NAMES.join(", ")}`);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new StackOutputsError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): write it with \`cd infra && pnpm exec cdktf output ${env} --outputs-file ${file}\``);
    }
    const outputs = readStackOutputs(env, text, file);
    const config = loadEnvironment(env);
    const disagreeing = outputsDisagreeingWithConfig(outputs, config, platformNames(config));
    if (disagreeing.length > 0) {
      throw new StackOutputsError(
        `stack "${env}" was not deployed from this config, so the manifests \`pnpm synth\` writes would not match it: ${disagreeing.join("; ")}. ` +
          "Deploy again from this config (scripts/deploy), or use the config it was deployed from (platform.config.json, PLATFORM_* variables)",
        1,
      );
    }
    if (o.json) {
      console.log(JSON.stringify(outputs, null, 2));
      return;
    }
    const row = (name: string, value: unknown, note: string) => console.log(`  ${name.padEnd(24)} ${String(value).padEnd(48)} ${note}`);
    console.log(`${env}: the deployed stack matches the config the manifests are synthesized from (project ${outputs.project_id})`);
    for (const [name, { usedBy }] of Object.entries(KUBERNETES_EXPECTS)) {
      const value = outputs[name as StackOutputName];
      row(name, typeof value === "object" ? `${Object.keys(value).length} ids` : value, usedBy);
    }
    console.log("after a deploy only:");
    for (const [name, note] of Object.entries(DEPLOYED_ONLY)) row(name, outputs[name as StackOutputName], note);
  });

await main("outputs", program, 2);
