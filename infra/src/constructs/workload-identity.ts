import { Construct } from "constructs";
import { SecretManagerSecretIamMember, ServiceAccountIamMember } from "../google.js";
import type { ITerraformDependable } from "cdktf";
import type { ServiceAccountName } from "@platform/config";
import { DedicatedServiceAccount } from "./service-account.js";

export interface WorkloadIdentityAccountProps {
  readonly projectId: string;
  readonly name: ServiceAccountName;
  readonly displayName: string;
  /** "<project>.svc.id.goog" */
  readonly workloadPool: string;
  readonly kubernetesNamespace: string;
  readonly kubernetesServiceAccount: string;
  /** Secret Manager secret ids (the resource's `secret_id`) this workload may read, and nothing else. */
  readonly secretIds: readonly string[];
  readonly projectRoles?: readonly string[];
  /** The binding names the cluster's identity pool, which exists once the cluster does. */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * A Google service account that exactly one Kubernetes service account impersonates through Workload Identity,
 * with read access to its own secrets only.
 */
export class WorkloadIdentityAccount extends Construct {
  readonly account: DedicatedServiceAccount;
  /** The IAM member the Kubernetes service account acts as. */
  readonly kubernetesMember: string;

  constructor(scope: Construct, id: string, props: WorkloadIdentityAccountProps) {
    super(scope, id);
    this.account = new DedicatedServiceAccount(this, "Account", {
      projectId: props.projectId,
      name: props.name,
      displayName: props.displayName,
      projectRoles: props.projectRoles,
    });
    this.kubernetesMember = `serviceAccount:${props.workloadPool}[${props.kubernetesNamespace}/${props.kubernetesServiceAccount}]`;
    new ServiceAccountIamMember(this, "WorkloadIdentityUser", {
      serviceAccountId: this.account.account.name,
      role: "roles/iam.workloadIdentityUser",
      member: this.kubernetesMember,
      dependsOn: props.dependsOn,
    });
    props.secretIds.forEach((secretId, i) => {
      new SecretManagerSecretIamMember(this, `Secret${i}`, {
        project: props.projectId,
        secretId,
        role: "roles/secretmanager.secretAccessor",
        member: this.account.member,
      });
    });
  }
}
