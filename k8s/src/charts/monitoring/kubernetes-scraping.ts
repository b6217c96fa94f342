import { Construct } from "constructs";
import { KUBELET_PORT, KUBE_STATE_METRICS_PORT } from "@platform/monitoring";
import { KubeClusterRole, KubeClusterRoleBinding } from "../../k8s.js";
import { WorkloadNetworkPolicy, addresses, localPods, tcp } from "../../constructs/network-policy.js";
import { WORKLOADS, selectorOf, type ChartContext } from "../../topology.js";
import { KUBE_STATE_METRICS } from "./kube-state-metrics.js";

/**
 * What Prometheus needs to scrape the cluster itself (monitoring/src/kubernetes-scrape.ts), beside what prometheus.ts
 * gives it for the workloads: the nodes listed for discovery and their kubelets' metrics (nodes/metrics, which the
 * kubelet checks against the API server for Prometheus's token; not nodes/proxy, which would let it run commands in
 * any pod through the kubelet), and the network paths to the kubelets and kube-state-metrics. NetworkPolicies add
 * up, so this one widens Prometheus's egress by exactly these two.
 */
export class KubernetesScraping extends Construct {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id);
    const { config } = ctx;
    const { namespace, serviceAccount } = config.kubernetes.prometheus;
    new KubeClusterRole(this, "Role", {
      metadata: { name: "platform-prometheus-kubelet" },
      rules: [
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"] },
      ],
    });
    new KubeClusterRoleBinding(this, "Binding", {
      metadata: { name: "platform-prometheus-kubelet" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "platform-prometheus-kubelet" },
      subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace }],
    });
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: "prometheus-kubernetes",
      selector: selectorOf(WORKLOADS.prometheus),
      egress: [
        { peers: [localPods(selectorOf(KUBE_STATE_METRICS))], ports: [tcp(KUBE_STATE_METRICS_PORT)] },
        // The kubelets listen on the nodes' addresses.
        { peers: [addresses(config.network.gkeNodesCidr)], ports: [tcp(KUBELET_PORT)] },
      ],
    });
  }
}
