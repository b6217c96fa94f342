import { z } from "zod";
import type { EnvironmentConfig, PlatformNames } from "@platform/config";

/**
 * What the stack exports for operators and the ops tools. The Kubernetes layer does not read these: it takes the
 * same names from the config (platformNames), so manifests synthesize without a deploy. `pnpm outputs <env> <file>`
 * (src/outputs-cli.ts) reads a deployed stack's `cdktf output --outputs-file`, checks it against this schema and
 * the names the manifests carry (KUBERNETES_EXPECTS), and prints what only exists after a deploy (addresses).
 */
export const StackOutputsSchema = z.object({
  environment: z.string(),
  project_id: z.string(),
  region: z.string(),
  cluster_name: z.string(),
  cluster_location: z.string(),
  workload_pool: z.string(),
  coordinator_host: z.string(),
  coordinator_ip: z.string(),
  worker_hosts: z.array(z.string()),
  postgres_port: z.number(),
  database: z.string(),
  redis_host: z.string(),
  redis_ip: z.string(),
  redis_port: z.number(),
  /** pgBackRest's bucket: where the Citus cluster runs (the citus engine, or beside Cloud SQL). */
  backups_bucket: z.string().optional(),
  /** Phases 2-3 (database.citusAlongside): the Citus coordinator beside Cloud SQL, DATABASE_URL_CITUS's host, and its secrets' ids. */
  citus_alongside_host: z.string().optional(),
  citus_alongside_secret_ids: z.record(z.string(), z.string()).optional(),
  tenant_service_account: z.string(),
  tenant_worker_account: z.string(),
  secret_ids: z.record(z.string(), z.string()),
});

export type StackOutputs = z.infer<typeof StackOutputsSchema>;
export type StackOutputName = keyof StackOutputs;

/** Bad input to `pnpm outputs` (exit 2), or a deployed stack that disagrees with the config (exit 1). */
export class StackOutputsError extends Error {
  override readonly name = "StackOutputsError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
  }
}

/** Parses one stack's section of `cdktf output --outputs-file`; says which output is missing or malformed. */
export function parseStackOutputs(environment: string, raw: unknown): StackOutputs {
  const result = StackOutputsSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new StackOutputsError(`outputs of stack "${environment}" do not match the schema (${problems}); redeploy with \`cdktf deploy ${environment}\``);
  }
  return result.data;
}

/**
 * The whole `--outputs-file` (one section per stack, keyed by its name) to the environment's outputs: says when the
 * text is not JSON or holds no section for the environment.
 */
export function readStackOutputs(environment: string, text: string, source: string): StackOutputs {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (error) {
    throw new StackOutputsError(`${source} is not JSON (${(error as Error).message}): write it with \`cdktf output ${environment} --outputs-file ${source}\``);
  }
  if (typeof file !== "object" || file === null || Array.isArray(file)) throw new StackOutputsError(`${source} is not an object of stacks: write it with \`cdktf output ${environment} --outputs-file ${source}\``);
  const section = (file as Record<string, unknown>)[environment];
  if (section === undefined) {
    const stacks = Object.keys(file);
    throw new StackOutputsError(`${source} has no outputs of stack "${environment}" (it has ${stacks.length > 0 ? stacks.join(", ") : "none"}): run \`cdktf output ${environment} --outputs-file ${source}\` after deploying it`);
  }
  return parseStackOutputs(environment, section);
}

/** An output the Kubernetes layer carries from the config: what it must be, and where the manifests use it. */
export interface ExpectedOutput {
  readonly expected: (config: EnvironmentConfig, names: PlatformNames) => unknown;
  readonly usedBy: string;
}

/**
 * The outputs whose values the manifests (k8s/, `pnpm synth`) carry from the config instead of reading the stack.
 * A deployed stack that disagrees was deployed from another config: the manifests would point at a host, port,
 * account or secret it did not create.
 */
export const KUBERNETES_EXPECTS = {
  project_id: { expected: (c) => c.gcp.projectId, usedBy: "the SecretProviderClasses' secret paths" },
  cluster_name: { expected: (_, n) => n.cluster, usedBy: "the cluster scripts/deploy applies the manifests to" },
  coordinator_host: { expected: (_, n) => n.database.host, usedBy: "DATABASE_URL of the tenant service and worker, Hydra's DSN" },
  postgres_port: { expected: (_, n) => n.postgresPort, usedBy: "DATABASE_URL, Hydra's DSN, the NetworkPolicies' egress" },
  database: { expected: (_, n) => n.citusDatabase, usedBy: "DATABASE_URL" },
  redis_host: { expected: (_, n) => n.redis.host, usedBy: "REDIS_URL, Kong's rate limiting" },
  redis_port: { expected: (_, n) => n.redis.port, usedBy: "REDIS_URL, Kong's rate limiting, the NetworkPolicies' egress (TLS port)" },
  tenant_service_account: { expected: (_, n) => n.serviceAccounts.tenantService.email, usedBy: "the tenant-service ServiceAccount's Workload Identity annotation" },
  tenant_worker_account: { expected: (_, n) => n.serviceAccounts.tenantWorker.email, usedBy: "the tenant-worker ServiceAccount's Workload Identity annotation" },
  secret_ids: { expected: (_, n) => n.secrets, usedBy: "the SecretProviderClasses (Secret Manager ids)" },
  citus_alongside_host: { expected: (_, n) => n.citusAlongside?.host, usedBy: "DATABASE_URL_CITUS of the tenant service and worker (database.citusAlongside)" },
  citus_alongside_secret_ids: { expected: (_, n) => n.citusAlongside?.secrets, usedBy: "the tenant namespace's SecretProviderClass (database.citusAlongside)" },
} satisfies Partial<Record<StackOutputName, ExpectedOutput>>;

/** Outputs that exist only after a deploy, which `pnpm outputs` prints for DNS and firewall checks. */
export const DEPLOYED_ONLY = {
  coordinator_ip: "the coordinator's internal load balancer, or Cloud SQL's private address (postgres engine): what coordinator_host resolves to",
  redis_ip: "Memorystore's address: what redis_host resolves to",
} satisfies Partial<Record<StackOutputName, string>>;

/** Each output the manifests carry whose deployed value differs from the config's, as one line (a map's differing keys each). */
export function outputsDisagreeingWithConfig(outputs: StackOutputs, config: EnvironmentConfig, names: PlatformNames): string[] {
  const differ = (name: string, got: unknown, want: unknown, usedBy: string): string[] => {
    const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
    if (isMap(got) && isMap(want)) {
      // Terraform returns a map's keys sorted; the config has its own order.
      return [...new Set([...Object.keys(want), ...Object.keys(got)])].flatMap((key) => differ(`${name}.${key}`, got[key], want[key], usedBy));
    }
    return JSON.stringify(got) === JSON.stringify(want) ? [] : [`${name} is ${JSON.stringify(got) ?? "missing"}, the config says ${JSON.stringify(want) ?? "nothing"} (${usedBy})`];
  };
  return Object.entries(KUBERNETES_EXPECTS).flatMap(([name, { expected, usedBy }]) => differ(name, outputs[name as StackOutputName], expected(config, names), usedBy));
}
