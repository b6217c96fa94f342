import { ApiObject, Chart, Lazy } from "cdk8s";
import { Construct } from "constructs";
import { cpuCores } from "@platform/config";
import { IntOrString, KubeLimitRange, KubeNamespace, KubeNetworkPolicy, KubeResourceQuota, Quantity } from "../k8s.js";
import { memoryMi } from "../quantities.js";

export interface PlatformNamespaceProps {
  readonly name: string;
}

export interface NamespaceBaselineProps {
  readonly namespace: string;
  /** Totals for the namespace: set from the workloads' maximum replicas times their limits. */
  readonly quota: { readonly cpu: string; readonly memory: string; readonly pods: number };
}

/** kube-dns pods, the target of every namespace's DNS egress. */
export const KUBE_DNS = { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" } };

/** A namespace held to the restricted Pod Security Standard (enforced, audited and warned). */
export class PlatformNamespace extends Construct {
  readonly namespace: KubeNamespace;

  constructor(scope: Construct, id: string, props: PlatformNamespaceProps) {
    super(scope, id);
    const name = props.name;
    this.namespace = new KubeNamespace(this, "Namespace", {
      metadata: {
        name,
        labels: {
          "kubernetes.io/metadata.name": name,
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/enforce-version": "latest",
          "pod-security.kubernetes.io/audit": "restricted",
          "pod-security.kubernetes.io/warn": "restricted",
        },
      },
    });
  }

}

/**
 * What every namespace holds before its workloads: a NetworkPolicy denying all ingress and egress, the one allow
 * everyone needs (DNS to kube-dns), a quota and container defaults. Workloads add their own narrow allows.
 */
export class NamespaceBaseline extends Construct {
  constructor(scope: Construct, id: string, props: NamespaceBaselineProps) {
    super(scope, id);
    const name = props.namespace;
    new KubeNetworkPolicy(this, "DefaultDeny", {
      metadata: { name: "default-deny", namespace: name },
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
    });
    new KubeNetworkPolicy(this, "AllowDns", {
      metadata: { name: "allow-dns", namespace: name },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": KUBE_DNS.namespace } }, podSelector: { matchLabels: KUBE_DNS.podLabels } }],
            ports: [
              { protocol: "UDP", port: IntOrString.fromNumber(53) },
              { protocol: "TCP", port: IntOrString.fromNumber(53) },
            ],
          },
        ],
      },
    });
    // Node ports and cloud load balancers are read at synthesis from the Services this chart declares in the
    // namespace: exactly those, and none for anything applied from elsewhere. A LoadBalancer Service takes a node port
    // per port on GKE, so a flat zero refuses the gateway's own Service (the API server said so: "exceeded quota").
    // Read once: each is asked for twice per synthesis, and each reading renders every object of the chart.
    const exposure = once(() => serviceExposure(Chart.of(this), name));
    new KubeResourceQuota(this, "Quota", {
      metadata: { name: "quota", namespace: name },
      spec: {
        hard: {
          "requests.cpu": Quantity.fromString(props.quota.cpu),
          "limits.cpu": Quantity.fromString(props.quota.cpu),
          "requests.memory": Quantity.fromString(props.quota.memory),
          "limits.memory": Quantity.fromString(props.quota.memory),
          pods: Quantity.fromNumber(props.quota.pods),
          "services.nodeports": Lazy.any({ produce: () => Quantity.fromNumber(exposure().nodePorts) }) as unknown as Quantity,
          "services.loadbalancers": Lazy.any({ produce: () => Quantity.fromNumber(exposure().loadBalancers) }) as unknown as Quantity,
        },
      },
    });
    // max and min are read at synthesis from the containers this chart runs in the namespace: a container applied
    // from elsewhere may be no larger than the largest of ours and ask no less than the smallest.
    const bounds = once(() => containerBounds(Chart.of(this), name));
    new KubeLimitRange(this, "Limits", {
      metadata: { name: "container-defaults", namespace: name },
      spec: {
        limits: [
          {
            type: "Container",
            default: { ...toQuantities(CONTAINER_DEFAULT), "ephemeral-storage": Quantity.fromString("256Mi") },
            defaultRequest: { ...toQuantities(CONTAINER_DEFAULT_REQUEST), "ephemeral-storage": Quantity.fromString("64Mi") },
            max: Lazy.any({ produce: () => toQuantities(bounds().max) }) as unknown as Record<string, Quantity>,
            min: Lazy.any({ produce: () => toQuantities(bounds().min) }) as unknown as Record<string, Quantity>,
          },
        ],
      },
    });
  }
}

/**
 * `read`'s value, computed on the first call. For the values read from the chart at synthesis: by then the chart is
 * complete, and it does not change between its synthesis and a later `toJson()` of the same objects.
 */
function once<T>(read: () => T): () => T {
  let value: { readonly result: T } | undefined;
  return () => (value ??= { result: read() }).result;
}

/** What a container without its own resources gets (every platform container sets its own). */
const CONTAINER_DEFAULT = { cpu: 0.5, memoryMi: 256 };
const CONTAINER_DEFAULT_REQUEST = { cpu: 0.1, memoryMi: 128 };
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]);

interface Size {
  readonly cpu: number;
  readonly memoryMi: number;
}

function toQuantities(size: Size): Record<string, Quantity> {
  const cpu = Number.isInteger(size.cpu) ? String(size.cpu) : `${Math.round(size.cpu * 1000)}m`;
  return { cpu: Quantity.fromString(cpu), memory: Quantity.fromString(`${Math.ceil(size.memoryMi)}Mi`) };
}

/**
 * The largest limits and smallest requests among the containers (init containers included) that `chart` runs in
 * `namespace`, widened to the defaults so that min <= defaultRequest and default <= max, as the API server requires.
 */
export function containerBounds(chart: Chart, namespace: string): { max: Size; min: Size } {
  const max = { ...CONTAINER_DEFAULT };
  const min = { ...CONTAINER_DEFAULT_REQUEST };
  for (const object of chart.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject && WORKLOAD_KINDS.has(c.kind))) {
    if (object.metadata.namespace !== namespace) continue;
    const spec = object.toJson().spec;
    const pod = (object.kind === "CronJob" ? spec.jobTemplate.spec.template.spec : spec.template.spec) as { containers: ContainerResources[]; initContainers?: ContainerResources[] };
    for (const { resources } of [...(pod.initContainers ?? []), ...pod.containers]) {
      if (resources?.limits?.cpu) max.cpu = Math.max(max.cpu, cpuCores(resources.limits.cpu));
      if (resources?.limits?.memory) max.memoryMi = Math.max(max.memoryMi, memoryMi(resources.limits.memory));
      if (resources?.requests?.cpu) min.cpu = Math.min(min.cpu, cpuCores(resources.requests.cpu));
      if (resources?.requests?.memory) min.memoryMi = Math.min(min.memoryMi, memoryMi(resources.requests.memory));
    }
  }
  return { max, min };
}

/**
 * The node ports and cloud load balancers the Services `chart` declares in `namespace` take: one load balancer per
 * LoadBalancer Service, and a node port per port of it (unless it opts out with allocateLoadBalancerNodePorts) and of
 * each NodePort Service.
 */
export function serviceExposure(chart: Chart, namespace: string): { nodePorts: number; loadBalancers: number } {
  let nodePorts = 0;
  let loadBalancers = 0;
  for (const object of chart.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject && c.kind === "Service")) {
    if (object.metadata.namespace !== namespace) continue;
    const spec = object.toJson().spec as { type?: string; ports?: unknown[]; allocateLoadBalancerNodePorts?: boolean };
    const ports = spec.ports?.length ?? 0;
    if (spec.type === "LoadBalancer") {
      loadBalancers += 1;
      if (spec.allocateLoadBalancerNodePorts !== false) nodePorts += ports;
    } else if (spec.type === "NodePort") {
      nodePorts += ports;
    }
  }
  return { nodePorts, loadBalancers };
}

interface ContainerResources {
  readonly resources?: { readonly limits?: Record<string, string>; readonly requests?: Record<string, string> };
}
