import { Construct, type IConstruct } from "constructs";
import { TerraformResource, type IAspect } from "cdktf";
import { ProjectService } from "../google.js";

export interface ProjectServicesProps {
  readonly projectId: string;
  /** APIs the stack's resources need. */
  readonly services: readonly string[];
}

/**
 * The APIs the stack uses, enabled by the stack itself so a new project converges in one deploy. Destroying the
 * stack leaves them enabled: turning an API off can break resources this stack does not own.
 *
 * `enabled` is a gate that completes once every API is on; `EnabledApisFirst` makes every other resource wait for
 * it. Without that ordering Terraform creates a service account or a DNS zone in parallel with enabling its API, the
 * call fails with SERVICE_DISABLED, and the first deploy of a new project needs a second run.
 */
export class ProjectServices extends Construct {
  readonly resources: ProjectService[];
  readonly enabled: TerraformResource;

  constructor(scope: Construct, id: string, props: ProjectServicesProps) {
    super(scope, id);
    this.resources = [...new Set(props.services)].sort().map(
      (service) =>
        new ProjectService(this, service.split(".")[0]!, {
          project: props.projectId,
          service,
          disableOnDestroy: false,
          disableDependentServices: false,
        }),
    );
    // A bare `terraform_data` (built into Terraform >= 1.4, no provider to download). Not cdktf's DataResource class:
    // that one checks the Terraform version at synthesis by running `terraform version`, which fails `pnpm synth` on
    // a machine without Terraform and costs a process per stack. The stack states `required_version` instead.
    this.enabled = new TerraformResource(this, "Enabled", { terraformResourceType: "terraform_data", dependsOn: this.resources });
  }
}

/**
 * Orders every managed resource in its scope after the project's APIs are enabled: one edge per resource to the
 * gate, rather than one per API. Data sources are left alone on purpose: `depends_on` defers a data source's read to
 * apply whenever the gate has pending changes, and the project number read from one would then be unknown at plan
 * time, forcing the replacement of every IAM grant built from it.
 */
export class EnabledApisFirst implements IAspect {
  private readonly visited = new WeakSet<TerraformResource>();

  constructor(private readonly services: ProjectServices) {}

  visit(node: IConstruct): void {
    if (!(node instanceof TerraformResource) || node === this.services.enabled || node instanceof ProjectService) return;
    if (this.visited.has(node)) return;
    this.visited.add(node);
    // The reference as Terraform writes it in depends_on (`fqn` is a `${...}` interpolation token).
    const gate = this.services.enabled;
    node.dependsOn = [...(node.dependsOn ?? []), `${gate.terraformResourceType}.${gate.friendlyUniqueId}`];
  }
}
