import { UNRESOLVED_DIGEST, imageAdmitted } from "@platform/config";
import type { KubernetesObject } from "../app.js";

/**
 * The platform's own manifest rules: what none of the engines that `pnpm test` runs over the manifests checks
 * (kube-score and Trivy at their defaults, Polaris where the module proxy serves it: k8s/test/engines.test.ts).
 * k8s/README.md, "Which engine checks what", maps every rule this suite used to have to the check that replaced it.
 * An object may be exempted from one rule by an annotation next to it, `policy.platform.io/exempt.<RULE>: <reason>`;
 * the reason is required.
 */

export interface ManifestViolation {
  readonly rule: string;
  /** kind/namespace/name */
  readonly object: string;
  readonly reason: string;
  /** What the finding stops: synthesis itself, or only a deployment (scripts/deploy refuses it). */
  readonly blocks: "synth" | "deploy";
}

/** What some rules compare the objects with: the environment's Binary Authorization allowlist. */
export interface PolicyContext {
  /** Allowlist name patterns (`admittedImagePatterns(config)`). */
  readonly admittedImages: readonly string[];
}

type Json = Record<string, unknown>;
interface PodOwner {
  readonly object: KubernetesObject;
  readonly pod: Json;
  readonly podLabels: Record<string, string>;
}

export interface ManifestRule {
  readonly id: string;
  readonly title: string;
  /** "synth": a finding stops synthesis. "deploy": synthesis reports it and writes the manifests, which are not deployable. @default "synth" */
  readonly blocks?: "synth" | "deploy";
  readonly check: (objects: readonly KubernetesObject[], context: PolicyContext) => [KubernetesObject, string][];
}

const ref = (o: KubernetesObject) => `${o.kind}/${o.metadata.namespace ?? "-"}/${o.metadata.name}`;
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]);
const PIN = /^[a-z0-9][a-z0-9._/:-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/;

function podOwners(objects: readonly KubernetesObject[]): PodOwner[] {
  return objects
    .filter((o) => WORKLOAD_KINDS.has(o.kind))
    .map((o) => {
      const spec = o.spec as Json;
      const template = (o.kind === "CronJob" ? ((spec.jobTemplate as Json).spec as Json).template : spec.template) as Json;
      return { object: o, pod: template.spec as Json, podLabels: ((template.metadata as Json)?.labels ?? {}) as Record<string, string> };
    });
}

const containers = (pod: Json): Json[] => [...((pod.initContainers as Json[]) ?? []), ...((pod.containers as Json[]) ?? [])];

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

/** For each workload, one finding per container problem. */
function perContainer(objects: readonly KubernetesObject[], test: (c: Json, pod: Json, owner: KubernetesObject) => string | undefined): [KubernetesObject, string][] {
  return podOwners(objects).flatMap(({ object, pod }) =>
    containers(pod).flatMap((c) => {
      const problem = test(c, pod, object);
      return problem ? [[object, `container ${String(c.name)}: ${problem}`] as [KubernetesObject, string]] : [];
    }),
  );
}

export const MANIFEST_RULES: readonly ManifestRule[] = [
  {
    // kube-score asks for probes only on pods a Service targets, and grades a missing liveness probe "almost OK".
    id: "PROBES",
    title: "long-running containers have readiness and liveness probes on ports they declare, whether or not a Service targets them",
    check: (objects) =>
      perContainer(objects, (c, pod, owner) => {
        // Init containers and Jobs run to completion: nothing to be ready for (Kubernetes rejects init-container probes).
        if (((pod.initContainers as Json[] | undefined) ?? []).includes(c) || owner.kind === "Job" || owner.kind === "CronJob") return undefined;
        const readiness = c.readinessProbe as Json | undefined;
        const liveness = c.livenessProbe as Json | undefined;
        if (!readiness || !liveness) return "readiness and liveness probes are both required";
        const declared = new Set(((c.ports as Json[]) ?? []).flatMap((p) => [p.containerPort, p.name]));
        for (const [name, probe] of [["readiness", readiness], ["liveness", liveness], ["startup", c.startupProbe as Json | undefined]] as const) {
          const port = ((probe?.httpGet ?? probe?.tcpSocket) as Json | undefined)?.port;
          if (port !== undefined && !declared.has(port as number | string)) return `${name} probe uses port ${String(port)}, which the container does not declare`;
        }
        return undefined;
      }),
  },
  {
    // kube-score (container-image-tag) and Trivy (KSV-0013) refuse latest and a missing tag; neither asks for a digest.
    id: "IMAGE_PINNED",
    title: "images are pinned as registry/repository:tag@sha256:<digest>",
    check: (objects) =>
      perContainer(objects, (c) => (PIN.test(String(c.image)) ? undefined : `image ${String(c.image)} is not registry/repository:tag@sha256:<digest>`)),
  },
  {
    id: "IMAGE_DIGEST_RESOLVED",
    title: "no image carries the placeholder digest sha256:000…, which pins nothing (synthesis writes such manifests; scripts/deploy refuses them)",
    blocks: "deploy",
    check: (objects) =>
      perContainer(objects, (c) => (String(c.image).endsWith(`@${UNRESOLVED_DIGEST}`) ? `image ${String(c.image).split("@")[0]} has the placeholder digest, which is not a pin` : undefined)),
  },
  {
    id: "IMAGE_ADMITTED",
    title: "every image is admitted by the environment's Binary Authorization allowlist",
    check: (objects, context) =>
      perContainer(objects, (c) => (imageAdmitted(String(c.image), context.admittedImages) ? undefined : `image ${String(c.image)} is not admitted by Binary Authorization (${context.admittedImages.join(", ")})`)),
  },
  {
    // Trivy's KSV-0036 reads automountServiceAccountToken on the object's own spec, which only a bare Pod has;
    // kube-score has no such check.
    id: "SERVICE_ACCOUNT_TOKEN",
    title: "pods do not mount a Kubernetes API token unless they need the API",
    check: (objects) => podOwners(objects).flatMap(({ object, pod }) => (pod.automountServiceAccountToken === false ? [] : [[object, "automountServiceAccountToken is not false"] as [KubernetesObject, string]])),
  },
  {
    // kube-score checks replicas and host anti-affinity; the zone spread and StatefulSet replicas are ours.
    id: "AVAILABILITY",
    title: "Deployments and StatefulSets spread across zones, and StatefulSets run 2+ replicas",
    check: (objects) =>
      objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet").flatMap((o) => {
        const spec = o.spec as Json;
        const problems: string[] = [];
        if (o.kind === "StatefulSet" && ((spec.replicas as number) ?? 1) < 2) problems.push(`${String(spec.replicas ?? 1)} replica(s)`);
        const pod = (spec.template as Json).spec as Json;
        const spreads = ((pod.topologySpreadConstraints as Json[]) ?? []).map((t) => t.topologyKey);
        if (!spreads.includes("topology.kubernetes.io/zone")) problems.push("no topology spread across zones");
        return problems.map((p) => [o, p] as [KubernetesObject, string]);
      }),
  },
  {
    // kube-score checks that a PDB exists and has a policy; what the policy allows is ours.
    id: "DISRUPTION_BUDGET",
    title: "PodDisruptionBudgets always allow one disruption and evict unhealthy pods, so a node drain makes progress",
    check: (objects) =>
      objects.filter((p) => p.kind === "PodDisruptionBudget").flatMap((p) => {
        const spec = p.spec as Json;
        const problems: string[] = [];
        if (spec.maxUnavailable === 0 || spec.maxUnavailable === "0%") problems.push("maxUnavailable is 0");
        if (spec.minAvailable === "100%") problems.push("minAvailable is 100%");
        if (!spec.unhealthyPodEvictionPolicy) problems.push("unhealthyPodEvictionPolicy is not set");
        return problems.map((m) => [p, m] as [KubernetesObject, string]);
      }),
  },
  {
    // kube-score checks that some NetworkPolicy governs each pod's ingress and egress; the namespace default deny is ours.
    id: "DEFAULT_DENY",
    title: "every namespace that runs pods denies all ingress and egress by default",
    check: (objects) => {
      const denying = new Set(
        objects
          .filter((p) => p.kind === "NetworkPolicy")
          .filter((p) => {
            const spec = p.spec as Json;
            const types = (spec.policyTypes as string[]) ?? [];
            return Object.keys(((spec.podSelector as Json)?.matchLabels as Json) ?? {}).length === 0 && !spec.ingress && !spec.egress && types.includes("Ingress") && types.includes("Egress");
          })
          .map((p) => p.metadata.namespace),
      );
      return podOwners(objects)
        .filter(({ object }) => !denying.has(object.metadata.namespace))
        .map(({ object }) => [object, `namespace ${String(object.metadata.namespace)} has no default-deny NetworkPolicy`] as [KubernetesObject, string]);
    },
  },
  {
    // kube-score checks that a Service's selector matches pods; the ports are ours.
    id: "SERVICE_TARGET_PORTS",
    title: "every Service port targets a port its pods declare",
    check: (objects) =>
      objects
        .filter((o) => o.kind === "Service" && (o.spec as Json).selector)
        .flatMap((s) => {
          const spec = s.spec as Json;
          const targets = podOwners(objects).filter(({ object, podLabels }) => object.metadata.namespace === s.metadata.namespace && matches(spec.selector as Record<string, string>, podLabels));
          const declared = new Set(targets.flatMap(({ pod }) => containers(pod).flatMap((c) => ((c.ports as Json[]) ?? []).flatMap((p) => [p.containerPort, p.name]))));
          return ((spec.ports as Json[]) ?? [])
            .filter((p) => !declared.has((p.targetPort ?? p.port) as string | number))
            .map((p) => [s, `port ${String(p.name ?? p.port)} targets ${String(p.targetPort ?? p.port)}, which no selected container declares`] as [KubernetesObject, string]);
        }),
  },
];

const EXEMPT_PREFIX = "policy.platform.io/exempt.";

export function checkManifests(objects: readonly KubernetesObject[], context: PolicyContext, rules: readonly ManifestRule[] = MANIFEST_RULES): ManifestViolation[] {
  return rules.flatMap((rule) =>
    rule.check(objects, context)
      .filter(([o]) => {
        const reason = o.metadata.annotations?.[`${EXEMPT_PREFIX}${rule.id}`];
        return !(reason && reason.trim().length > 0);
      })
      .map(([o, reason]) => ({ rule: rule.id, object: ref(o), reason, blocks: rule.blocks ?? "synth" })),
  );
}

export function formatManifestViolations(env: string, violations: readonly ManifestViolation[]): string {
  return `manifest policy (${env}): ${violations.length} violation(s):\n${violations.map((v) => `  ${v.rule} ${v.object}: ${v.reason}`).join("\n")}`;
}
