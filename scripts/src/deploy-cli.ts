/**
 * scripts/deploy <env> [--yes] [--dry-run] [--reset]
 *
 * Deploys every layer of one environment in order: synthesis (policy-gated), `cdktf deploy`, the database
 * migrations and queue (MIGRATE_DATABASE_URL: the migration role), then the Kubernetes files in their apply order
 * and the rollouts. Each step is recorded as it ends; after a failure, fix the cause and run the same command again:
 * it resumes at the step that failed. Exit codes: 0 done, 2 bad input or a failed preflight, 3 refused, 4 a step failed.
 */
import { Command } from "commander";
import { ENVIRONMENT_NAMES, isEnvironmentName, loadEnvironment } from "@platform/config";
import { main } from "@platform/cli";
import { REPO_ROOT, stateFile } from "./paths.js";
import { deployPreflight, deploySteps } from "./deploy.js";
import { WorkflowError, runWorkflow } from "./workflow.js";

const program = new Command()
  .name("deploy")
  .argument("<env>", `environment: ${ENVIRONMENT_NAMES.join(", ")}`)
  .option("--yes", "no confirmations: cdktf --auto-approve")
  .option("--dry-run", "print the steps and commands, change nothing")
  .option("--reset", "abandon an unfinished deploy recorded in the state file and start over")
  .action(async (environment: string, o: { yes?: boolean; dryRun?: boolean; reset?: boolean }) => {
    if (!isEnvironmentName(environment)) throw new WorkflowError(`unknown environment "${environment}"; use one of ${ENVIRONMENT_NAMES.join(", ")}`, 2);
    const options = { environment, config: loadEnvironment(environment), root: REPO_ROOT, yes: o.yes ?? false, env: process.env };
    const problems = deployPreflight(options);
    if (problems.length > 0 && !o.dryRun) throw new WorkflowError(`not ready to deploy ${environment}, nothing was changed:\n  - ${problems.join("\n  - ")}`, 2);
    for (const p of o.dryRun ? problems : []) console.log(`preflight (a real run would stop here): ${p}`);
    // A deploy's parameters are the environment and the config it deploys: a changed config is a new run.
    await runWorkflow({
      workflow: "deploy",
      environment,
      params: { projectId: options.config.gcp.projectId, image: options.config.kubernetes.images.tenantService },
      steps: deploySteps(options),
      stateFile: stateFile("deploy", environment),
      dryRun: o.dryRun,
      reset: o.reset,
    });
  });

await main("deploy", program);
