import type { KubernetesObject } from "../app.js";
import { validateObject } from "../app.js";

/**
 * The manifest policy suite: the checks kube-linter, kube-score, Polaris and the restricted Pod Security Standard
 * make, as named rules over the synthesized objects. An object may be exempted from one rule by an annotation
 * next to it, `policy.platform.io/exempt.<RULE>: <reason>`; the reason is required.
 */

export interface ManifestViolation {
  readonly rule: string;
  /** kind/namespace/name */
  readonly object: string;
  readonly reason: string;
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
  readonly check: (objects: readonly KubernetesObject[]) => [KubernetesObject, string][];
}

const ref = (o: KubernetesObject) => `${o.kind}/${o.metadata.namespace ?? "-"}/${o.metadata.name}`;
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]);
const MIN_UID = 10000;
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
    id: "SCHEMA_VALID",
    title: "every object validates against the Kubernetes API schema",
    check: (objects) => objects.flatMap((o) => {
      const problem = validateObject(o);
      return problem ? [[o, problem] as [KubernetesObject, string]] : [];
    }),
  },
  {
    id: "RESTRICTED_SECURITY_CONTEXT",
    title: "containers run as a numeric non-root user, without privilege escalation or capabilities, with RuntimeDefault seccomp",
    check: (objects) =>
      perContainer(objects, (c, pod) => {
        const sc = (c.securityContext ?? {}) as Json;
        const podSc = (pod.securityContext ?? {}) as Json;
        const uid = (sc.runAsUser ?? podSc.runAsUser) as number | undefined;
        if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) return "runAsNonRoot is not true";
        if (typeof uid !== "number" || uid < MIN_UID) return `runAsUser is ${String(uid)}, not a numeric id >= ${MIN_UID}`;
        if (sc.allowPrivilegeEscalation !== false) return "allowPrivilegeEscalation is not false";
        if (sc.privileged === true) return "privileged";
        const drop = ((sc.capabilities as Json)?.drop as string[]) ?? [];
        if (!drop.includes("ALL")) return "capabilities do not drop ALL";
        if (((sc.capabilities as Json)?.add as string[] | undefined)?.length) return "capabilities are added";
        const seccomp = ((sc.seccompProfile ?? podSc.seccompProfile) as Json | undefined)?.type;
        if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") return `seccompProfile is ${String(seccomp)}`;
        return undefined;
      }),
  },
  {
    id: "READ_ONLY_ROOT_FILESYSTEM",
    title: "containers have a read-only root filesystem",
    check: (objects) => perContainer(objects, (c) => ((c.securityContext as Json)?.readOnlyRootFilesystem === true ? undefined : "readOnlyRootFilesystem is not true")),
  },
  {
    id: "RESOURCES_SET",
    title: "containers request and limit CPU, memory and ephemeral storage",
    check: (objects) =>
      perContainer(objects, (c) => {
        const r = (c.resources ?? {}) as { requests?: Json; limits?: Json };
        for (const kind of ["requests", "limits"] as const) {
          for (const res of ["cpu", "memory", "ephemeral-storage"]) if (r[kind]?.[res] === undefined) return `${kind}.${res} is not set`;
        }
        return undefined;
      }),
  },
  {
    id: "PROBES",
    title: "long-running containers have distinct readiness and liveness probes on ports they declare",
    check: (objects) =>
      perContainer(objects, (c, pod, owner) => {
        // Init containers and Jobs run to completion: nothing to be ready for (Kubernetes rejects init-container probes).
        if (((pod.initContainers as Json[] | undefined) ?? []).includes(c) || owner.kind === "Job" || owner.kind === "CronJob") return undefined;
        const readiness = c.readinessProbe as Json | undefined;
        const liveness = c.livenessProbe as Json | undefined;
        if (!readiness || !liveness) return "readiness and liveness probes are both required";
        if (JSON.stringify(readiness) === JSON.stringify(liveness)) return "readiness and liveness probes are identical";
        const declared = new Set(((c.ports as Json[]) ?? []).flatMap((p) => [p.containerPort, p.name]));
        for (const [name, probe] of [["readiness", readiness], ["liveness", liveness], ["startup", c.startupProbe as Json | undefined]] as const) {
          const port = ((probe?.httpGet ?? probe?.tcpSocket) as Json | undefined)?.port;
          if (port !== undefined && !declared.has(port as number | string)) return `${name} probe uses port ${String(port)}, which the container does not declare`;
        }
        return undefined;
      }),
  },
  {
    id: "IMAGE_PINNED",
    title: "images are pinned by tag and digest, never latest",
    check: (objects) =>
      perContainer(objects, (c) => {
        const image = String(c.image);
        if (/:latest(@|$)/.test(image)) return `image ${image} uses latest`;
        return PIN.test(image) ? undefined : `image ${image} is not registry/repository:tag@sha256:<digest>`;
      }),
  },
  {
    id: "NO_HOST_ACCESS",
    title: "no host network, PID or IPC namespaces, hostPath volumes or host ports",
    check: (objects) =>
      podOwners(objects).flatMap(({ object, pod }) => {
        const problems: string[] = [];
        for (const key of ["hostNetwork", "hostPID", "hostIPC"]) if (pod[key] === true) problems.push(`${key} is true`);
        for (const v of (pod.volumes as Json[]) ?? []) if (v.hostPath) problems.push(`volume ${String(v.name)} is a hostPath`);
        for (const c of containers(pod)) for (const p of (c.ports as Json[]) ?? []) if (p.hostPort) problems.push(`container ${String(c.name)} uses hostPort ${String(p.hostPort)}`);
        return problems.map((p) => [object, p] as [KubernetesObject, string]);
      }),
  },
  {
    id: "SERVICE_ACCOUNT_TOKEN",
    title: "pods do not mount a Kubernetes API token unless they need the API",
    check: (objects) => podOwners(objects).flatMap(({ object, pod }) => (pod.automountServiceAccountToken === false ? [] : [[object, "automountServiceAccountToken is not false"] as [KubernetesObject, string]])),
  },
  {
    id: "NO_NODEPORT",
    title: "no NodePort services",
    check: (objects) => objects.filter((o) => o.kind === "Service" && (o.spec as Json)?.type === "NodePort").map((o) => [o, "type NodePort"] as [KubernetesObject, string]),
  },
  {
    id: "AVAILABILITY",
    title: "Deployments and StatefulSets run 2+ replicas (or an HPA with minReplicas 2+), roll without dropping capacity, spread across zones and hosts",
    check: (objects) =>
      objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet").flatMap((o) => {
        const spec = o.spec as Json;
        const hpa = objects.find((h) => h.kind === "HorizontalPodAutoscaler" && h.metadata.namespace === o.metadata.namespace && ((h.spec as Json).scaleTargetRef as Json).name === o.metadata.name);
        const problems: string[] = [];
        if (hpa) {
          const { minReplicas, maxReplicas } = hpa.spec as { minReplicas?: number; maxReplicas: number };
          if ((minReplicas ?? 1) < 2) problems.push(`HPA minReplicas is ${minReplicas ?? 1}`);
          if (maxReplicas < (minReplicas ?? 1)) problems.push("HPA maxReplicas < minReplicas");
        } else if (((spec.replicas as number) ?? 1) < 2) problems.push("fewer than 2 replicas and no HPA");
        const strategy = (o.kind === "StatefulSet" ? spec.updateStrategy : spec.strategy) as Json | undefined;
        if (strategy?.type !== "RollingUpdate") problems.push("update strategy is not RollingUpdate");
        const pod = (spec.template as Json).spec as Json;
        const spreads = ((pod.topologySpreadConstraints as Json[]) ?? []).map((t) => t.topologyKey);
        if (!spreads.includes("topology.kubernetes.io/zone")) problems.push("no topology spread across zones");
        const anti = ((pod.affinity as Json)?.podAntiAffinity as Json) ?? {};
        const antiKeys = [...((anti.preferredDuringSchedulingIgnoredDuringExecution as Json[]) ?? []).map((t) => (t.podAffinityTerm as Json).topologyKey), ...((anti.requiredDuringSchedulingIgnoredDuringExecution as Json[]) ?? []).map((t) => t.topologyKey)];
        if (!antiKeys.includes("kubernetes.io/hostname")) problems.push("no anti-affinity across hosts");
        return problems.map((p) => [o, p] as [KubernetesObject, string]);
      }),
  },
  {
    id: "DISRUPTION_BUDGET",
    title: "every Deployment and StatefulSet has a PodDisruptionBudget that never blocks all disruptions and evicts unhealthy pods",
    check: (objects) =>
      podOwners(objects)
        .filter(({ object }) => object.kind === "Deployment" || object.kind === "StatefulSet")
        .flatMap(({ object, podLabels }) => {
          const pdbs = objects.filter((p) => p.kind === "PodDisruptionBudget" && p.metadata.namespace === object.metadata.namespace && matches(((p.spec as Json).selector as Json)?.matchLabels as Record<string, string>, podLabels));
          if (pdbs.length === 0) return [[object, "no PodDisruptionBudget selects its pods"] as [KubernetesObject, string]];
          return pdbs.flatMap((p) => {
            const spec = p.spec as Json;
            const problems: string[] = [];
            if (spec.maxUnavailable === 0 || spec.maxUnavailable === "0%") problems.push(`${ref(p)} has maxUnavailable 0`);
            if (spec.minAvailable === "100%") problems.push(`${ref(p)} has minAvailable 100%`);
            if (spec.maxUnavailable === undefined && spec.minAvailable === undefined) problems.push(`${ref(p)} sets neither maxUnavailable nor minAvailable`);
            if (!spec.unhealthyPodEvictionPolicy) problems.push(`${ref(p)} does not set unhealthyPodEvictionPolicy`);
            return problems.map((m) => [object, m] as [KubernetesObject, string]);
          });
        }),
  },
  {
    id: "NETWORK_POLICY_COVERAGE",
    title: "every pod is selected by NetworkPolicies for both ingress and egress, behind a namespace default deny",
    check: (objects) => {
      const policies = objects.filter((o) => o.kind === "NetworkPolicy");
      return podOwners(objects).flatMap(({ object, podLabels }) => {
        const selecting = policies.filter((p) => p.metadata.namespace === object.metadata.namespace && matches(((p.spec as Json).podSelector as Json)?.matchLabels as Record<string, string>, podLabels));
        const types = new Set(selecting.flatMap((p) => ((p.spec as Json).policyTypes as string[]) ?? []));
        const problems: string[] = [];
        if (!types.has("Ingress")) problems.push("no NetworkPolicy governs its ingress");
        if (!types.has("Egress")) problems.push("no NetworkPolicy governs its egress");
        const defaultDeny = selecting.some((p) => {
          const spec = p.spec as Json;
          return Object.keys(((spec.podSelector as Json)?.matchLabels as Json) ?? {}).length === 0 && !spec.ingress && !spec.egress;
        });
        if (!defaultDeny) problems.push("its namespace has no default-deny NetworkPolicy");
        return problems.map((m) => [object, m] as [KubernetesObject, string]);
      });
    },
  },
  {
    id: "SERVICE_SELECTS_PODS",
    title: "every Service selects pods that exist, on a port they declare",
    check: (objects) =>
      objects
        .filter((o) => o.kind === "Service" && (o.spec as Json).selector)
        .flatMap((s) => {
          const spec = s.spec as Json;
          const targets = podOwners(objects).filter(({ object, podLabels }) => object.metadata.namespace === s.metadata.namespace && matches(spec.selector as Record<string, string>, podLabels));
          if (targets.length === 0) return [[s, "its selector matches no pods"] as [KubernetesObject, string]];
          const declared = new Set(targets.flatMap(({ pod }) => containers(pod).flatMap((c) => ((c.ports as Json[]) ?? []).flatMap((p) => [p.containerPort, p.name]))));
          return ((spec.ports as Json[]) ?? [])
            .filter((p) => !declared.has((p.targetPort ?? p.port) as string | number))
            .map((p) => [s, `port ${String(p.name ?? p.port)} targets ${String(p.targetPort ?? p.port)}, which no selected container declares`] as [KubernetesObject, string]);
        }),
  },
  {
    id: "NAMESPACE_RESTRICTED",
    title: "namespaces enforce the restricted Pod Security Standard",
    check: (objects) =>
      objects.filter((o) => o.kind === "Namespace" && o.metadata.labels?.["pod-security.kubernetes.io/enforce"] !== "restricted").map((o) => [o, "pod-security.kubernetes.io/enforce is not restricted"] as [KubernetesObject, string]),
  },
  {
    id: "RBAC_NO_WILDCARDS",
    title: "RBAC rules name their resources and verbs (no *), and nothing binds cluster-admin",
    check: (objects) =>
      objects.flatMap((o) => {
        if (o.kind === "Role" || o.kind === "ClusterRole") {
          return ((o.rules as Json[]) ?? []).flatMap((r) => (["apiGroups", "resources", "verbs"] as const).some((k) => ((r[k] as string[]) ?? []).includes("*")) ? [[o, "a rule uses *"] as [KubernetesObject, string]] : []);
        }
        if ((o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding") && (o.roleRef as Json)?.name === "cluster-admin") return [[o, "binds cluster-admin"] as [KubernetesObject, string]];
        return [];
      }),
  },
];

const EXEMPT_PREFIX = "policy.platform.io/exempt.";

export function checkManifests(objects: readonly KubernetesObject[], rules: readonly ManifestRule[] = MANIFEST_RULES): ManifestViolation[] {
  return rules.flatMap((rule) =>
    rule.check(objects)
      .filter(([o]) => {
        const reason = o.metadata.annotations?.[`${EXEMPT_PREFIX}${rule.id}`];
        return !(reason && reason.trim().length > 0);
      })
      .map(([o, reason]) => ({ rule: rule.id, object: ref(o), reason })),
  );
}

export function formatManifestViolations(env: string, violations: readonly ManifestViolation[]): string {
  return `manifest policy (${env}): ${violations.length} violation(s):\n${violations.map((v) => `  ${v.rule} ${v.object}: ${v.reason}`).join("\n")}`;
}
