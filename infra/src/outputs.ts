import { z } from "zod";

/**
 * What the stack exports for the Kubernetes layer and the ops tools. Names are derived from the same config on both
 * sides (platformNames); these outputs add what only exists after a deploy (addresses) and pin both sides to the
 * same schema. Read them with `cdktf output <env> --outputs-file <file>` and `parseStackOutputs`.
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
  backups_bucket: z.string(),
  tenant_service_account: z.string(),
  tenant_worker_account: z.string(),
  secret_ids: z.record(z.string(), z.string()),
});

export type StackOutputs = z.infer<typeof StackOutputsSchema>;
export type StackOutputName = keyof StackOutputs;

/** Parses one stack's section of `cdktf output --outputs-file`; says which output is missing or malformed. */
export function parseStackOutputs(environment: string, raw: unknown): StackOutputs {
  const result = StackOutputsSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`outputs of stack "${environment}" do not match the schema (${problems}); redeploy with \`cdktf deploy ${environment}\``);
  }
  return result.data;
}
