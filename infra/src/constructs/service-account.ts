import { Construct } from "constructs";
import { ProjectIamMember, ServiceAccount } from "../google.js";
import type { ServiceAccountName } from "@platform/config";

export interface DedicatedServiceAccountProps {
  readonly projectId: string;
  readonly name: ServiceAccountName;
  readonly displayName: string;
  /** Project-level roles. Prefer resource-level grants (a secret, a bucket) where the API has them. */
  readonly projectRoles?: readonly string[];
}

/**
 * A service account for exactly one workload, with only the project roles it lists. Never a key: VMs and nodes use
 * the metadata server, pods use Workload Identity.
 */
export class DedicatedServiceAccount extends Construct {
  readonly account: ServiceAccount;
  readonly email: string;
  /** IAM member string, "serviceAccount:<email>". */
  readonly member: string;

  constructor(scope: Construct, id: string, props: DedicatedServiceAccountProps) {
    super(scope, id);
    this.account = new ServiceAccount(this, "Resource", {
      project: props.projectId,
      accountId: props.name.accountId,
      displayName: props.displayName,
    });
    this.email = this.account.email;
    this.member = this.account.member;
    for (const role of props.projectRoles ?? []) {
      if (/^roles\/(owner|editor)$/.test(role)) {
        throw new Error(`${props.name.accountId}: ${role} is a basic role; grant the predefined roles the workload needs`);
      }
      new ProjectIamMember(this, role.replace(/^roles\//, ""), { project: props.projectId, role, member: this.member });
    }
  }
}
