/**
 * Exceptions to the engines' checks (kube-score, Trivy), written on the object they concern with the reason next to
 * them. kube-score reads its own annotation, `kube-score/ignore`. Trivy reads no annotation and no comment in a
 * Kubernetes manifest, only an ignore file (.trivyignore.yaml, an id with the paths it covers and a statement); so
 * the object carries `policy.platform.io/trivy.<ID>: <reason>`, and whoever runs Trivy writes that file from these
 * annotations, scoped to the one object (k8s/test/engines.test.ts does).
 */

export const KUBE_SCORE_IGNORE = "kube-score/ignore";
const REASON_PREFIX = "policy.platform.io/";

/** Check id -> reason, per engine. A reason is a sentence a reviewer can check. */
export interface EngineExceptions {
  readonly kubeScore?: Readonly<Record<string, string>>;
  readonly trivy?: Readonly<Record<string, string>>;
}

export const kubeScoreReasonKey = (check: string) => `${REASON_PREFIX}kube-score.${check}`;
export const trivyReasonKey = (id: string) => `${REASON_PREFIX}trivy.${id}`;

/** The annotations that carry the exceptions: each engine's own form where it has one, and every reason. */
export function engineExceptionAnnotations(exceptions: EngineExceptions): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const [engine, byCheck] of Object.entries(exceptions) as [keyof EngineExceptions, Record<string, string>][]) {
    for (const [check, reason] of Object.entries(byCheck)) {
      if (reason.trim().length < 20) throw new Error(`the ${engine} exception ${check} needs its reason, a sentence a reviewer can check`);
      annotations[engine === "kubeScore" ? kubeScoreReasonKey(check) : trivyReasonKey(check)] = reason;
    }
  }
  const kubeScore = Object.keys(exceptions.kubeScore ?? {});
  if (kubeScore.length > 0) annotations[KUBE_SCORE_IGNORE] = kubeScore.join(",");
  return annotations;
}

/** The exceptions written on an object, read back from its annotations: engine -> check -> reason. */
export function engineExceptionsOf(annotations: Readonly<Record<string, string>> | undefined): { kubeScore: Record<string, string>; trivy: Record<string, string> } {
  const read = (prefix: string) =>
    Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return { kubeScore: read(`${REASON_PREFIX}kube-score.`), trivy: read(`${REASON_PREFIX}trivy.`) };
}

/**
 * Every workload's containers pull IfNotPresent (hardened-container.ts); kube-score wants Always
 * (container-image-pull-policy), so that imagePullSecrets are checked on every start.
 */
export const PULL_POLICY_EXCEPTION: EngineExceptions = {
  kubeScore: {
    "container-image-pull-policy":
      "images are pinned by digest, so a cached image is the image asked for; no pod uses imagePullSecrets (GKE nodes pull with their own service account); Always would add a registry round trip to every container start, and Docker Hub's pull limits through Cloud NAT or a registry outage could then stop restarts",
  },
};
