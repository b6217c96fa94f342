import { Construct } from "constructs";
import { IntOrString, KubeLimitRange, KubeNamespace, KubeNetworkPolicy, KubeResourceQuota, Quantity } from "../k8s.js";

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
    new KubeResourceQuota(this, "Quota", {
      metadata: { name: "quota", namespace: name },
      spec: {
        hard: {
          "requests.cpu": Quantity.fromString(props.quota.cpu),
          "limits.cpu": Quantity.fromString(props.quota.cpu),
          "requests.memory": Quantity.fromString(props.quota.memory),
          "limits.memory": Quantity.fromString(props.quota.memory),
          pods: Quantity.fromNumber(props.quota.pods),
          "services.nodeports": Quantity.fromNumber(0),
        },
      },
    });
    new KubeLimitRange(this, "Limits", {
      metadata: { name: "container-defaults", namespace: name },
      spec: {
        limits: [
          {
            type: "Container",
            default: { cpu: Quantity.fromString("500m"), memory: Quantity.fromString("256Mi"), "ephemeral-storage": Quantity.fromString("256Mi") },
            defaultRequest: { cpu: Quantity.fromString("100m"), memory: Quantity.fromString("128Mi"), "ephemeral-storage": Quantity.fromString("64Mi") },
          },
        ],
      },
    });
  }
}
