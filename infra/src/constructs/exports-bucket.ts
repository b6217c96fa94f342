import { Construct } from "constructs";
import { ServiceAccountIamMember, StorageBucket, StorageBucketIamMember } from "../google.js";
import { ignoreTrivy, skipCheckov } from "../policy/checkov-skips.js";
import { privateBucketConfig, skipUsageLogs, type PrivateBucketProps } from "./private-bucket.js";

export interface ExportsBucketProps extends PrivateBucketProps {
  /** Objects are deleted this many days after they are written (config/: exports.retentionDays); 1 to 30. */
  readonly retentionDays: number;
  /** The tenant worker's Google service account: writes the exports and, on a tenant's erasure, deletes them. */
  readonly writer: { readonly member: string };
  /**
   * The tenant service's Google service account: reads objects through the V4 URLs it signs, and signs them with
   * signBlob as itself (no key file on GKE). Its `name` is the account's resource name.
   */
  readonly signer: { readonly member: string; readonly name: string };
}

/**
 * Tenant exports (services/tenant-service README "Export"): private, encrypted with a key of its own, objects deleted
 * by lifecycle after `retentionDays`, no versioning and no soft delete (an overwritten or deleted export is gone, as a
 * tenant's erasure requires), and access for exactly the two workloads that use it.
 */
export class ExportsBucket extends Construct {
  readonly bucket: StorageBucket;

  constructor(scope: Construct, id: string, props: ExportsBucketProps) {
    super(scope, id);
    if (!Number.isInteger(props.retentionDays) || props.retentionDays < 1 || props.retentionDays > 30) {
      throw new Error(`${props.name}: retentionDays must be a whole number of days from 1 to 30 (got ${props.retentionDays})`);
    }
    this.bucket = new StorageBucket(this, "Resource", {
      ...privateBucketConfig(props),
      versioning: { enabled: false },
      // Soft delete would keep an erased tenant's exports a further week: off, so a delete is a delete.
      softDeletePolicy: { retentionDurationSeconds: 0 },
      lifecycleRule: [
        { condition: { age: props.retentionDays }, action: { type: "Delete" } },
        { condition: { age: 1 }, action: { type: "AbortIncompleteMultipartUpload" } },
      ],
    });
    // The worker creates objects, overwrites them when a failed export is retried (which needs delete) and lists and
    // deletes a tenant's prefix on erasure: objectUser, on this bucket only. objectCreator alone could do neither.
    new StorageBucketIamMember(this, "WorkerObjectUser", { bucket: this.bucket.name, role: "roles/storage.objectUser", member: props.writer.member });
    // A signed URL acts with its signer's permissions: the service must be able to read what it signs for.
    new StorageBucketIamMember(this, "ServiceObjectViewer", { bucket: this.bucket.name, role: "roles/storage.objectViewer", member: props.signer.member });
    // signBlob on its own account only (iam.serviceAccounts.signBlob): the service signs as itself and as no one else.
    new ServiceAccountIamMember(this, "ServiceSignsAsItself", { serviceAccountId: props.signer.name, role: "roles/iam.serviceAccountTokenCreator", member: props.signer.member });

    skipUsageLogs(this.bucket, "the tenant service's and worker's accounts");
    // Checkov and Trivy both ask for versioning; the answer is the same.
    const noVersioning =
      "Versioning is off on purpose: an export is a short-lived copy (deleted after exports.retentionDays), a retry " +
      "rewrites it whole from the database, and an erased tenant's exports must not survive as noncurrent versions";
    skipCheckov(this.bucket, { id: "CKV_GCP_78", reason: noVersioning });
    ignoreTrivy(this.bucket, { id: "GCP-0078", reason: noVersioning });
  }
}
