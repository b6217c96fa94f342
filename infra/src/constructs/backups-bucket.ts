import { Construct } from "constructs";
import { StorageBucket } from "../google.js";
import { privateBucketConfig, skipUsageLogs, type PrivateBucketProps } from "./private-bucket.js";

export interface BackupsBucketProps extends PrivateBucketProps {
  /** Move objects to Nearline after this many days. */
  readonly nearlineAfterDays: number;
  /** Delete any object older than this: a safety net behind pgBackRest's own retention. */
  readonly maxAgeDays: number;
  /** Keep overwritten or deleted versions this long, to undo an accidental or malicious delete. */
  readonly noncurrentVersionDays: number;
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
      ...privateBucketConfig(props),
      versioning: { enabled: true },
      softDeletePolicy: { retentionDurationSeconds: 7 * 86400 },
      lifecycleRule: [
        { condition: { age: props.nearlineAfterDays, matchesStorageClass: ["STANDARD"] }, action: { type: "SetStorageClass", storageClass: "NEARLINE" } },
        { condition: { age: props.maxAgeDays }, action: { type: "Delete" } },
        { condition: { daysSinceNoncurrentTime: props.noncurrentVersionDays, withState: "ARCHIVED" }, action: { type: "Delete" } },
        { condition: { age: 7 }, action: { type: "AbortIncompleteMultipartUpload" } },
      ],
    });
    skipUsageLogs(this.bucket, "the Citus nodes' service accounts");
  }
}
