import { Construct } from "constructs";
import { StorageBucket } from "../google.js";
import type { ITerraformDependable } from "cdktf";
import { ignoreTrivy, skipCheckov } from "../policy/checkov-skips.js";

export interface BackupsBucketProps {
  readonly projectId: string;
  readonly name: string;
  readonly location: string;
  readonly kmsKey: string;
  /** Move objects to Nearline after this many days. */
  readonly nearlineAfterDays: number;
  /** Delete any object older than this: a safety net behind pgBackRest's own retention. */
  readonly maxAgeDays: number;
  /** Keep overwritten or deleted versions this long, to undo an accidental or malicious delete. */
  readonly noncurrentVersionDays: number;
  /** Refuse to destroy a bucket that still holds objects. */
  readonly forceDestroy?: boolean;
  readonly labels: Record<string, string>;
  /** The storage agent's grant on the key must exist before the bucket uses it. */
  readonly dependsOn?: ITerraformDependable[];
}

/** The pgBackRest repository: private, versioned, CMEK-encrypted, with lifecycle rules. */
export class BackupsBucket extends Construct {
  readonly bucket: StorageBucket;

  constructor(scope: Construct, id: string, props: BackupsBucketProps) {
    super(scope, id);
    if (props.nearlineAfterDays >= props.maxAgeDays) {
      throw new Error(`${props.name}: nearlineAfterDays (${props.nearlineAfterDays}) must be smaller than maxAgeDays (${props.maxAgeDays})`);
    }
    this.bucket = new StorageBucket(this, "Resource", {
      project: props.projectId,
      name: props.name,
      location: props.location,
      storageClass: "STANDARD",
      uniformBucketLevelAccess: true,
      publicAccessPrevention: "enforced",
      versioning: { enabled: true },
      encryption: { defaultKmsKeyName: props.kmsKey },
      forceDestroy: props.forceDestroy ?? false,
      softDeletePolicy: { retentionDurationSeconds: 7 * 86400 },
      lifecycleRule: [
        { condition: { age: props.nearlineAfterDays, matchesStorageClass: ["STANDARD"] }, action: { type: "SetStorageClass", storageClass: "NEARLINE" } },
        { condition: { age: props.maxAgeDays }, action: { type: "Delete" } },
        { condition: { daysSinceNoncurrentTime: props.noncurrentVersionDays, withState: "ARCHIVED" }, action: { type: "Delete" } },
        { condition: { age: 7 }, action: { type: "AbortIncompleteMultipartUpload" } },
      ],
      labels: props.labels,
      dependsOn: props.dependsOn,
    });
    // Checkov and Trivy ask the same thing (a usage-log bucket), for the same reason not done here.
    const accessLogs =
      "Usage logs are Cloud Storage's legacy per-bucket access log; Google's record of object access is Data Access " +
      "audit logs, set for the project or organization, not by this stack, which grants roles on this bucket only to the Citus nodes' service accounts";
    skipCheckov(this.bucket, { id: "CKV_GCP_62", reason: accessLogs });
    ignoreTrivy(this.bucket, { id: "GCP-0077", reason: accessLogs });
  }
}
