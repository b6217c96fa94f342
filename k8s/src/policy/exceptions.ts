/**
 * Exceptions to the engines' checks (kube-score, Trivy, Polaris), written on the object they concern with the reason
 * next to them. kube-score reads its own annotation, `kube-score/ignore`; Polaris its own per check,
 * `polaris.fairwinds.com/<check>-exempt: "true"`. Trivy reads no annotation and no comment in a Kubernetes manifest,
 * only an ignore file (.trivyignore.yaml, an id with the paths it covers and a statement); so the object carries
 * `policy.platform.io/trivy.<ID>: <reason>`, and whoever runs Trivy writes that file from these annotations, scoped to
 * the one object (k8s/test/engines.test.ts does). Every reason is `policy.platform.io/<engine>.<check>`.
 */

export const KUBE_SCORE_IGNORE = "kube-score/ignore";
const REASON_PREFIX = "policy.platform.io/";

/** Check id -> reason, per engine. A reason is a sentence a reviewer can check. */
export interface EngineExceptions {
  readonly kubeScore?: Readonly<Record<string, string>>;
  readonly trivy?: Readonly<Record<string, string>>;
  readonly polaris?: Readonly<Record<string, string>>;
}

export const kubeScoreReasonKey = (check: string) => `${REASON_PREFIX}kube-score.${check}`;
export const trivyReasonKey = (id: string) => `${REASON_PREFIX}trivy.${id}`;
export const polarisReasonKey = (check: string) => `${REASON_PREFIX}polaris.${check}`;
/** Polaris's own exemption of one check on an object (its validator reads it from the controller's annotations). */
export const polarisExemptKey = (check: string) => `polaris.fairwinds.com/${check}-exempt`;

const REASON_KEY: Record<keyof EngineExceptions, (check: string) => string> = { kubeScore: kubeScoreReasonKey, trivy: trivyReasonKey, polaris: polarisReasonKey };

/** The annotations that carry the exceptions: each engine's own form where it has one, and every reason. */
export function engineExceptionAnnotations(exceptions: EngineExceptions): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const [engine, byCheck] of Object.entries(exceptions) as [keyof EngineExceptions, Record<string, string>][]) {
    for (const [check, reason] of Object.entries(byCheck)) {
      if (reason.trim().length < 20) throw new Error(`the ${engine} exception ${check} needs its reason, a sentence a reviewer can check`);
      annotations[REASON_KEY[engine](check)] = reason;
      if (engine === "polaris") annotations[polarisExemptKey(check)] = "true";
    }
  }
  const kubeScore = Object.keys(exceptions.kubeScore ?? {});
  if (kubeScore.length > 0) annotations[KUBE_SCORE_IGNORE] = kubeScore.join(",");
  return annotations;
}

/** The exceptions written on an object, read back from its annotations: engine -> check -> reason. */
export function engineExceptionsOf(annotations: Readonly<Record<string, string>> | undefined): { kubeScore: Record<string, string>; trivy: Record<string, string>; polaris: Record<string, string> } {
  const read = (prefix: string) =>
    Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return { kubeScore: read(`${REASON_PREFIX}kube-score.`), trivy: read(`${REASON_PREFIX}trivy.`), polaris: read(`${REASON_PREFIX}polaris.`) };
}

const PULL_POLICY_REASON =
  "images are pinned by digest, so a cached image is the image asked for; no pod uses imagePullSecrets (GKE nodes pull with their own service account); Always would add a registry round trip to every container start, and Docker Hub's pull limits through Cloud NAT or a registry outage could then stop restarts";

/**
 * Every workload's containers pull IfNotPresent (hardened-container.ts); kube-score (container-image-pull-policy) and
 * Polaris (pullPolicyNotAlways) want Always, so that imagePullSecrets are checked on every start.
 */
export const PULL_POLICY_EXCEPTION: EngineExceptions = {
  kubeScore: { "container-image-pull-policy": PULL_POLICY_REASON },
  polaris: { pullPolicyNotAlways: PULL_POLICY_REASON },
};

/** A Deployment under an HPA has no replicas field, which Polaris (deploymentMissingReplicas) reads as one replica. */
export const HPA_REPLICAS_EXCEPTION: EngineExceptions = {
  polaris: {
    deploymentMissingReplicas:
      "the HorizontalPodAutoscaler owns the replica count (minReplicas 2 or more, checked by HardenedDeployment); a replicas field in the manifest would reset it to that number on every apply",
  },
};

/**
 * Polaris's missingNetworkPolicy wants a NetworkPolicy whose podSelector.matchLabels holds exactly one of the pod's
 * labels (its schema is a oneOf over them) and that has both ingress and egress rules. The platform's policies select
 * a workload's pods by both of its selector labels (name and component), and a workload that takes no connection in,
 * or makes none out, has an empty list on that side: both fail the check although the policy governs the pods.
 */
export const NETWORK_POLICY_EXCEPTION: EngineExceptions = {
  polaris: {
    missingNetworkPolicy:
      "the workload's NetworkPolicy (named after it) selects its pods by their two selector labels and governs both directions, an empty side denying all; Polaris accepts only a selector of exactly one pod label and a non-empty list on each side",
  },
};

/**
 * Polaris's sensitiveContainerEnvVar matches a variable's name, not what it holds: `*_PASSWORD_FILE` (and Grafana's
 * `*__FILE`) name a file mounted from Secret Manager, which `reader` reads; the secret is never in the manifest.
 */
export function passwordFileException(variables: readonly string[], reader: string): EngineExceptions {
  const [only] = variables;
  const named = variables.length === 1 ? `${only} holds the path of a file` : `${variables.slice(0, -1).join(", ")} and ${variables.at(-1)} hold the paths of files`;
  return { polaris: { sensitiveContainerEnvVar: `${named} mounted from Secret Manager, not ${variables.length === 1 ? "the password" : "the passwords"}: ${reader} reads ${variables.length === 1 ? "it" : "them"}` } };
}

/** Merges several sets of exceptions (each engine's checks together). */
export function mergeExceptions(...sets: readonly EngineExceptions[]): EngineExceptions {
  const merged: { kubeScore?: Record<string, string>; trivy?: Record<string, string>; polaris?: Record<string, string> } = {};
  for (const set of sets) for (const engine of Object.keys(set) as (keyof EngineExceptions)[]) merged[engine] = { ...merged[engine], ...set[engine] };
  return merged;
}
