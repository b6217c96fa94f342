import type { TerraformResource } from "cdktf";

/** A Checkov check that does not apply to one resource, and why. */
export interface CheckovSkip {
  /** Checkov's check id, e.g. CKV_GCP_62. */
  readonly id: string;
  /** Why the check does not apply to this resource: a reviewer reads it in the synthesized JSON, the test prints it. */
  readonly reason: string;
}

const CHECK_ID = /^CKV2?_[A-Z0-9]+_\d+$/;
const written = new WeakMap<TerraformResource, CheckovSkip[]>();

/**
 * Writes a skip of a Checkov check on the resource itself, in its Terraform JSON comment property, next to the
 * metadata cdktf writes there:
 *
 *   "//": { "metadata": {...}, "checkov": { "skip": [{ "id": "CKV_GCP_62", "comment": "<reason>" }] } }
 *
 * Terraform ignores "//". The shape is the one Checkov's maintainers proposed for cdktf output
 * (bridgecrewio/checkov#4634) and the one Checkov reads from CloudFormation Metadata. Checkov 3.3's Terraform JSON
 * runner reads no skip at all, so src/policy/checkov.ts matches Checkov's failed checks against these: a failure
 * without a skip on its resource fails the scan, and so does a skip that no failure needs.
 */
export function skipCheckov(resource: TerraformResource, ...skips: CheckovSkip[]): void {
  for (const skip of skips) {
    if (!CHECK_ID.test(skip.id)) throw new Error(`${resource.node.path}: "${skip.id}" is not a Checkov check id (CKV_GCP_62, CKV2_GCP_12)`);
    if (skip.reason.trim().length < 20) throw new Error(`${resource.node.path}: the skip of ${skip.id} needs its reason, a sentence a reviewer can check`);
  }
  const all = [...(written.get(resource) ?? []), ...skips];
  written.set(resource, all);
  resource.addOverride("//.checkov.skip", all.map((s) => ({ id: s.id, comment: s.reason })));
}

/** The skips written on a resource of synthesized Terraform JSON (its configuration object). */
export function checkovSkipsOf(conf: Record<string, unknown>): CheckovSkip[] {
  const comment = conf["//"] as { checkov?: { skip?: { id?: unknown; comment?: unknown }[] } } | undefined;
  return (comment?.checkov?.skip ?? []).map((s) => ({ id: String(s.id), reason: String(s.comment ?? "") }));
}

/** A Trivy check that does not apply to one resource, and why. */
export interface TrivyIgnore {
  /** Trivy's check id, e.g. GCP-0077. */
  readonly id: string;
  readonly reason: string;
}

const TRIVY_ID = /^[A-Z]+-\d{4}$/;
const trivyWritten = new WeakMap<TerraformResource, TrivyIgnore[]>();

/**
 * Writes an exception to a Trivy check on the resource, beside its Checkov skips: `"//": { "trivy": { "ignore":
 * [{ "id", "comment" }] } }`. Trivy reads cdktf's HCL rendering of the stack, where infra/test/trivy.test.ts turns it
 * into Trivy's own `#trivy:ignore:<id>` above the resource.
 */
export function ignoreTrivy(resource: TerraformResource, ...ignores: TrivyIgnore[]): void {
  for (const ignore of ignores) {
    if (!TRIVY_ID.test(ignore.id)) throw new Error(`${resource.node.path}: "${ignore.id}" is not a Trivy check id (GCP-0077)`);
    if (ignore.reason.trim().length < 20) throw new Error(`${resource.node.path}: the exception to ${ignore.id} needs its reason, a sentence a reviewer can check`);
  }
  const all = [...(trivyWritten.get(resource) ?? []), ...ignores];
  trivyWritten.set(resource, all);
  resource.addOverride("//.trivy.ignore", all.map((i) => ({ id: i.id, comment: i.reason })));
}
