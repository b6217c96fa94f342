/**
 * scripts/scale-out <env> --workers N [--yes] [--dry-run] [--reset]
 *
 * Adds Citus workers to a running environment: the config change, synthesis, `cdktf deploy`, `shardctl add-node`
 * for each new worker, a rebalance (row counts verified), and a final check. Every step is recorded as it ends;
 * after a failure, fix the cause and run the same command again: it resumes at the step that failed.
 * The coordinator comes from CITUS_URL (a superuser connection, e.g. through an IAP tunnel).
 * Exit codes: 0 done, 2 bad input, 3 refused (another run unfinished), 4 a step failed.
 */
import { Command, InvalidArgumentError } from "commander";
import { ENVIRONMENT_NAMES, isEnvironmentName } from "@platform/config";
import { main } from "@platform/cli";
import { REPO_ROOT, overrideFile, stateFile } from "./paths.js";
import { planScaleOut, scaleOutSteps } from "./scale-out.js";
import { WorkflowError, readState, runWorkflow } from "./workflow.js";

const program = new Command()
  .name("scale-out")
  .argument("<env>", `environment: ${ENVIRONMENT_NAMES.join(", ")}`)
  .requiredOption("--workers <n>", "the worker count to end with", (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a whole number >= 1 (got "${v}")`);
    return n;
  })
  .option("--yes", "no confirmations: cdktf --auto-approve, shardctl rebalance --yes")
  .option("--dry-run", "print the steps and commands, change nothing")
  .option("--reset", "abandon an unfinished scale-out of another size recorded in the state file")
  .action(async (environment: string, o: { workers: number; yes?: boolean; dryRun?: boolean; reset?: boolean }) => {
    if (!isEnvironmentName(environment)) throw new WorkflowError(`unknown environment "${environment}"; use one of ${ENVIRONMENT_NAMES.join(", ")}`, 2);
    const citusUrl = process.env.CITUS_URL ?? "";
    if (!citusUrl && !o.dryRun) throw new WorkflowError("CITUS_URL is not set: point it at the coordinator (a superuser, e.g. through an IAP tunnel) so the new workers can be added", 2);
    const file = stateFile("scale-out", environment);
    const previous = readState(file);
    const resuming = previous !== undefined && !previous.finishedAt && previous.params.workers === o.workers;
    const options = { environment, workers: o.workers, overrideFile: overrideFile(), citusUrl, root: REPO_ROOT, yes: o.yes ?? false, env: process.env };
    const plan = planScaleOut(options, resuming);
    await runWorkflow({
      workflow: "scale-out",
      environment,
      params: { workers: o.workers },
      steps: scaleOutSteps(options, plan),
      stateFile: file,
      dryRun: o.dryRun,
      reset: o.reset,
    });
  });

await main("scale-out", program);
