/**
 * NetworkPolicies, written the same way by every chart: a workload's policy names its own pods by the selector of
 * the construct that made them, and its peers by theirs (`PodPeer`), never by label strings typed again.
 */
import { Construct } from "constructs";
import { IntOrString, KubeNetworkPolicy, type NetworkPolicyPeer } from "../k8s.js";

export interface PortRule {
  readonly protocol: string;
  readonly port: IntOrString;
}

export const tcp = (port: number): PortRule => ({ protocol: "TCP", port: IntOrString.fromNumber(port) });
export const udp = (port: number): PortRule => ({ protocol: "UDP", port: IntOrString.fromNumber(port) });

/** Pods another NetworkPolicy may name: where they run and the selector their controller gave them. */
export interface PodPeer {
  readonly namespace: string;
  readonly selector: Readonly<Record<string, string>>;
}

/** A peer's pods, in their namespace (a NetworkPolicy in another namespace must say which). */
export const podsOf = (peer: PodPeer): NetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } },
  podSelector: { matchLabels: { ...peer.selector } },
});

/** Every pod of a namespace. */
export const namespaceOf = (namespace: string): NetworkPolicyPeer => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } });

/** Pods of the policy's own namespace; an empty selector is every pod there. */
export const localPods = (selector: Readonly<Record<string, string>>): NetworkPolicyPeer =>
  Object.keys(selector).length === 0 ? { podSelector: {} } : { podSelector: { matchLabels: { ...selector } } };

export const addresses = (cidr: string, except?: readonly string[]): NetworkPolicyPeer => ({ ipBlock: { cidr, ...(except ? { except: [...except] } : {}) } });

export interface Allow {
  /** Absent: from or to anywhere (the ports alone restrict it). */
  readonly peers?: readonly NetworkPolicyPeer[];
  readonly ports: readonly PortRule[];
}

export interface WorkloadNetworkPolicyProps {
  readonly namespace: string;
  /** The policy's name: the workload's. */
  readonly name: string;
  /** The workload's pods. */
  readonly selector: Readonly<Record<string, string>>;
  /** @default none: no connection in (the namespace's default-deny stands) */
  readonly ingress?: readonly Allow[];
  /** @default none: no connection out but DNS (the namespace's allow-dns) */
  readonly egress?: readonly Allow[];
}

/** The allows of one workload, in and out; both directions are always governed, so an empty list denies. */
export class WorkloadNetworkPolicy extends Construct {
  constructor(scope: Construct, id: string, props: WorkloadNetworkPolicyProps) {
    super(scope, id);
    const rules = (allows: readonly Allow[] | undefined, side: "from" | "to") =>
      allows?.map((a) => ({ ...(a.peers ? { [side]: [...a.peers] } : {}), ports: [...a.ports] }));
    const ingress = rules(props.ingress, "from");
    const egress = rules(props.egress, "to");
    new KubeNetworkPolicy(this, "Policy", {
      metadata: { name: props.name, namespace: props.namespace },
      spec: {
        podSelector: { matchLabels: { ...props.selector } },
        policyTypes: ["Ingress", "Egress"],
        ...(ingress ? { ingress } : {}),
        ...(egress ? { egress } : {}),
      },
    });
  }
}
