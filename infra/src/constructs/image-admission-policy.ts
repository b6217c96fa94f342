import { Construct } from "constructs";
import { BinaryAuthorizationPolicy } from "../google.js";

export interface ImageAdmissionPolicyProps {
  readonly projectId: string;
  /** Allowlist name patterns: the repositories the platform's workloads run from (`admittedImagePatterns`). */
  readonly admittedImages: readonly string[];
}

/**
 * The project's Binary Authorization policy, which a cluster in PROJECT_SINGLETON_POLICY_ENFORCE mode evaluates.
 * Without one the project's default policy admits every image, and enforcing it changes nothing. This one denies
 * every image except Google-maintained system images (global policy evaluation) and the platform's own repositories,
 * and blocks and audit-logs each denial. It is a project singleton: one per environment project.
 */
export class ImageAdmissionPolicy extends Construct {
  readonly policy: BinaryAuthorizationPolicy;

  constructor(scope: Construct, id: string, props: ImageAdmissionPolicyProps) {
    super(scope, id);
    if (props.admittedImages.length === 0) {
      throw new Error("ImageAdmissionPolicy: no admitted images; the policy would deny every workload the platform runs");
    }
    this.policy = new BinaryAuthorizationPolicy(this, "Resource", {
      project: props.projectId,
      description: "Managed by @platform/infra: only the platform's image repositories and Google's system images",
      globalPolicyEvaluationMode: "ENABLE",
      admissionWhitelistPatterns: props.admittedImages.map((namePattern) => ({ namePattern })),
      defaultAdmissionRule: { evaluationMode: "ALWAYS_DENY", enforcementMode: "ENFORCED_BLOCK_AND_AUDIT_LOG" },
    });
  }
}
