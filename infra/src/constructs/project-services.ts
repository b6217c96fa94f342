import { Construct } from "constructs";
import { ProjectService } from "../google.js";

export interface ProjectServicesProps {
  readonly projectId: string;
  /** APIs the stack's resources need. */
  readonly services: readonly string[];
}

/**
 * The APIs the stack uses, enabled by the stack itself so a new project converges in one deploy. Destroying the
 * stack leaves them enabled: turning an API off can break resources this stack does not own.
 */
export class ProjectServices extends Construct {
  readonly resources: ProjectService[];

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
  }
}
