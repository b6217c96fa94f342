/**
 * The steps of `scripts/deploy <env>`: every layer in order, as docs/DEPLOYMENT.md describes them. Infrastructure
 * (policy-gated synthesis, `cdktf deploy`), the database schema and queue (as the migration role), then the
 * Kubernetes files in their apply order (setup first; Hydra's migration Job waited for), then the rollouts.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { envVarName, platformNames, unresolvedImages, type EnvironmentConfig, type EnvironmentName } from "@platform/config";
import type { CommandSpec, Step } from "./workflow.js";
import { runCloudSqlBootstrap } from "./cloudsql-bootstrap.js";

export interface DeployOptions {
  readonly environment: EnvironmentName;
  readonly config: EnvironmentConfig;
  readonly root: string;
  /** cdktf --auto-approve. */
  readonly yes: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The manifests of one environment, in apply order, with the namespace and applyset each is pruned by. */
export function applyOrder(config: EnvironmentConfig): { file: string; namespace?: string; applyset?: string }[] {
  const k = config.kubernetes;
  return [
    { file: "00-setup.k8s.yaml" },
    { file: "10-auth.k8s.yaml", namespace: k.hydra.namespace, applyset: "platform-auth" },
    { file: "10-gateway.k8s.yaml", namespace: k.gateway.namespace, applyset: "platform-gateway" },
    { file: "20-tenants.k8s.yaml", namespace: k.tenantService.namespace, applyset: "platform-tenants" },
    { file: "30-monitoring.k8s.yaml", namespace: k.grafana.namespace, applyset: "platform-monitoring" },
  ];
}

const TOOLS = ["terraform", "gcloud", "kubectl"] as const;
const onPath = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;

/** Everything a deploy needs before it changes anything; an empty list means go. */
export function deployPreflight(
  o: DeployOptions,
  hasTool: (tool: string) => boolean = onPath,
  unresolved: () => string[] = unresolvedImages,
): string[] {
  const problems: string[] = [];
  const upper = o.environment.toUpperCase();
  if (o.config.gcp.placeholder) {
    problems.push(`${o.environment} still uses the example project "${o.config.gcp.projectId}": set ${envVarName(o.environment, "PROJECT_ID")} and ${envVarName(o.environment, "STATE_BUCKET")} (or platform.config.json)`);
  }
  if (o.config.kubernetes.images.placeholder) {
    problems.push(`the tenant-service image is the example digest: set ${envVarName(o.environment, "TENANT_SERVICE_IMAGE")}=registry/repo:tag@sha256:...`);
  }
  if (!o.env?.MIGRATE_DATABASE_URL) {
    const database = o.config.database.engine === "postgres" ? "Cloud SQL instance" : "coordinator";
    problems.push(`MIGRATE_DATABASE_URL is not set: the migration role's connection to the ${upper} ${database} (through an IAP tunnel; docs/DEPLOYMENT.md)`);
  }
  // Phases 2-3: the Citus cluster beside Cloud SQL takes the same migrations before any tenant can move into it.
  if (o.config.database.citusAlongside && !o.env?.MIGRATE_DATABASE_URL_CITUS) {
    problems.push(`MIGRATE_DATABASE_URL_CITUS is not set: the migration role's connection to the ${upper} Citus coordinator beside Cloud SQL (database.citusAlongside; through an IAP tunnel, docs/DEPLOYMENT.md)`);
  }
  // The zero digest would reach the cluster as an image that cannot be pulled: every such pod in ImagePullBackOff.
  const unpinned = unresolved();
  if (unpinned.length > 0) {
    problems.push(`third-party images without a digest: ${unpinned.join(", ")}. Resolve each (crane digest <repository>:<tag>) and record it in config/src/images.ts`);
  }
  for (const tool of TOOLS) if (!hasTool(tool)) problems.push(`${tool} is not on PATH (docs/DEPLOYMENT.md, prerequisites)`);
  return problems;
}

export function deploySteps(o: DeployOptions): Step[] {
  const names = platformNames(o.config);
  const dist = join(o.root, "k8s", "dist", o.environment);
  const inRoot = (argv: readonly string[], env?: Record<string, string>): CommandSpec => ({ argv, cwd: o.root, ...(env ? { env } : {}) });
  const scoped = { PLATFORM_ENVIRONMENTS: o.environment, CHECKPOINT_DISABLE: "1" };
  const migrator = { DATABASE_URL: o.env?.MIGRATE_DATABASE_URL ?? "" };
  const apply = (file: string, namespace?: string, applyset?: string): CommandSpec => ({
    argv: ["kubectl", "apply", "--server-side", ...(applyset ? ["--prune", `--applyset=configmaps/${applyset}`, "-n", namespace!] : []), "-f", join(dist, file)],
    env: { KUBECTL_APPLYSET: "true" },
  });
  const [setup, auth, gateway, tenants, monitoring] = applyOrder(o.config);
  const k = o.config.kubernetes;
  const project = o.config.gcp.projectId;
  // The postgres engine (docs/SCALING.md, "Phase 1"): Cloud SQL's service agent must exist before the stack grants it
  // the key and the CA pool (no GA Terraform resource creates it), and the users' passwords and roles after.
  const postgres = o.config.database.engine === "postgres";
  const cloudSqlAgent: Step[] = postgres
    ? [{
        name: "cloudsql-agent",
        title: "Cloud SQL's service agent, which the stack grants its key and CA pool",
        commands: [
          { argv: ["gcloud", "services", "enable", "sqladmin.googleapis.com", "privateca.googleapis.com", `--project=${project}`] },
          { argv: ["gcloud", "beta", "services", "identity", "create", "--service=sqladmin.googleapis.com", `--project=${project}`] },
        ],
      }]
    : [];
  const databaseBootstrap: Step[] = postgres
    ? [{
        name: "database-bootstrap",
        title: "Cloud SQL: passwords from Secret Manager (generated once), the queue role and grants",
        describe: `scripts/src/cloudsql-bootstrap.ts on ${names.cloudSql.instance}, as ${names.databaseRoles.superuser} over MIGRATE_DATABASE_URL's host`,
        run: (log) => runCloudSqlBootstrap(o.config, names, o.env?.MIGRATE_DATABASE_URL ?? "", log),
      }]
    : [];
  return [
    {
      name: "synth",
      title: "synthesize Terraform, monitoring and manifests; the policy suites must pass",
      commands: [inRoot(["pnpm", "--silent", "synth"], scoped)],
    },
    ...cloudSqlAgent,
    {
      name: "infra",
      title: `cdktf deploy ${o.environment}`,
      commands: [inRoot(["pnpm", "--silent", "--filter", "@platform/infra", "exec", "cdktf", "deploy", o.environment, ...(o.yes ? ["--auto-approve"] : [])], scoped)],
    },
    ...databaseBootstrap,
    {
      name: "migrate",
      title: "database migrations and the queue schema, as the migration role",
      // The queue lives in the home database only; beside Cloud SQL, Citus takes the same schema (docs/SCALING.md, "Phase 2-3").
      commands: [
        inRoot(["pnpm", "--silent", "migrate"], migrator),
        ...(o.config.database.citusAlongside ? [inRoot(["pnpm", "--silent", "migrate"], { DATABASE_URL: o.env?.MIGRATE_DATABASE_URL_CITUS ?? "" })] : []),
        inRoot(["pnpm", "--silent", "--filter", "tenant-service", "worker", "--install-queue"], migrator),
      ],
    },
    {
      name: "kube-credentials",
      title: `credentials for ${names.cluster} (private endpoint: run from inside the VPC)`,
      commands: [{ argv: ["gcloud", "container", "clusters", "get-credentials", names.cluster, "--region", o.config.gcp.region, "--project", o.config.gcp.projectId, "--internal-ip"] }],
    },
    { name: "apply-setup", title: "namespaces (restricted Pod Security) and priority classes", commands: [apply(setup!.file)] },
    {
      name: "apply-auth",
      title: "Ory Hydra, then its migration Job to completion",
      commands: [apply(auth!.file, auth!.namespace, auth!.applyset), { argv: ["kubectl", "-n", k.hydra.namespace, "wait", "--for=condition=complete", "job/hydra-migrate", "--timeout=10m"] }],
    },
    { name: "apply-gateway", title: "Kong", commands: [apply(gateway!.file, gateway!.namespace, gateway!.applyset)] },
    { name: "apply-tenants", title: "the tenant service and its worker", commands: [apply(tenants!.file, tenants!.namespace, tenants!.applyset)] },
    { name: "apply-monitoring", title: "Prometheus, Grafana, Jaeger", commands: [apply(monitoring!.file, monitoring!.namespace, monitoring!.applyset)] },
    {
      name: "rollout",
      title: "wait for every Deployment and StatefulSet of the applied files to roll out",
      describe: `kubectl rollout status for each Deployment and StatefulSet in ${dist}`,
      run: async (log, exec) => {
        const workloads = rolloutTargets(applyOrder(o.config).map((a) => readFileSync(join(dist, a.file), "utf8")));
        log(`${workloads.length} workloads`);
        for (const w of workloads) await exec({ argv: ["kubectl", "-n", w.namespace, "rollout", "status", `${w.kind.toLowerCase()}/${w.name}`, "--timeout=10m"] });
      },
    },
  ];
}

/** Deployments and StatefulSets in synthesized manifests: what a rollout waits for. */
export function rolloutTargets(files: readonly string[]): { kind: string; namespace: string; name: string }[] {
  return files.flatMap((text) =>
    parseAllDocuments(text)
      .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null)
      .filter((o): o is { kind: string; metadata: { name: string; namespace: string } } => o !== null && (o.kind === "Deployment" || o.kind === "StatefulSet"))
      .map((o) => ({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name })),
  );
}
