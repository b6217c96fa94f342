import type { ITerraformDependable } from "cdktf";
import type { StorageBucket, StorageBucketConfig } from "../google.js";
import { ignoreTrivy, skipCheckov } from "../policy/checkov-skips.js";

/** What every platform bucket is told: where it is, its name from config/, its key. */
export interface PrivateBucketProps {
  readonly projectId: string;
  /** config/ names it (names.backupsBucket, names.exportsBucket). */
  readonly name: string;
  readonly location: string;
  /** The customer-managed key its objects are encrypted with. */
  readonly kmsKey: string;
  /** Refuse to destroy a bucket that still holds objects. @default false */
  readonly forceDestroy?: boolean;
  readonly labels: Record<string, string>;
  /** The storage agent's grant on the key must exist before the bucket uses it. */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * The settings every platform bucket shares, whatever it holds: Standard storage, uniform bucket-level access (no
 * object ACLs), public access prevention enforced, and the customer-managed key. The caller adds versioning, soft
 * delete and lifecycle, which differ by what the bucket holds.
 */
export function privateBucketConfig(props: PrivateBucketProps): StorageBucketConfig {
  return {
    project: props.projectId,
    name: props.name,
    location: props.location,
    storageClass: "STANDARD",
    uniformBucketLevelAccess: true,
    publicAccessPrevention: "enforced",
    encryption: { defaultKmsKeyName: props.kmsKey },
    forceDestroy: props.forceDestroy ?? false,
    labels: props.labels,
    dependsOn: props.dependsOn,
  };
}

/**
 * Checkov and Trivy ask the same thing of every bucket (a usage-log bucket), for the same reason not done here;
 * `grantees` says who the stack lets in, since that is what a reader of the skip wants to know.
 */
export function skipUsageLogs(bucket: StorageBucket, grantees: string): void {
  const reason =
    "Usage logs are Cloud Storage's legacy per-bucket access log; Google's record of object access is Data Access " +
    `audit logs, set for the project or organization, not by this stack, which grants roles on this bucket only to ${grantees}`;
  skipCheckov(bucket, { id: "CKV_GCP_62", reason });
  ignoreTrivy(bucket, { id: "GCP-0077", reason });
}
