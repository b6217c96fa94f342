import { Construct } from "constructs";
import { KUBE_STATE_METRICS_PORT } from "@platform/monitoring";
import { KubeClusterRole, KubeClusterRoleBinding } from "../../k8s.js";
import { WorkloadNetworkPolicy, localPods, tcp } from "../../constructs/network-policy.js";
import { engineExceptionAnnotations } from "../../policy/exceptions.js";
import { WORKLOADS, selectorOf, type ChartContext } from "../../topology.js";
import { KUBE_STATE_METRICS } from "./kube-state-metrics.js";

/**
 * What Prometheus needs to scrape the cluster itself (monitoring/src/kubernetes-scrape.ts), beside what prometheus.ts
 * gives it for the workloads: the nodes listed for discovery, their kubelets' metrics through the API server's node
 * proxy, and the network path to kube-state-metrics. The kubelets are reached through the API server because GKE
 * Dataplane V2 drops pod traffic to the nodes' own addresses whatever a NetworkPolicy ipBlock says (Cilium's host
 * and remote-node identities); the API server is on the private control plane, which prometheus.ts already lets
 * Prometheus reach. The price is nodes/proxy: whoever holds Prometheus's token can call any kubelet endpoint
 * through the API server, running commands in pods included; only Prometheus's own pods mount that token
 * (docs/OBSERVABILITY.md, "Kubelets and cAdvisor").
 */
export class KubernetesScraping extends Construct {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id);
    const { config } = ctx;
    const { namespace, serviceAccount } = config.kubernetes.prometheus;
    new KubeClusterRole(this, "Role", {
      metadata: {
        name: "platform-prometheus-kubelet",
        annotations: engineExceptionAnnotations({
          trivy: {
            "KSV-0047":
              "GKE Dataplane V2 drops pod traffic to the nodes' own addresses, so the kubelets are read through the API server's node proxy; get only, bound to Prometheus's ServiceAccount alone (docs/OBSERVABILITY.md, Kubelets and cAdvisor)",
          },
        }),
      },
      rules: [
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
        // GET /api/v1/nodes/<node>/proxy/metrics and /metrics/cadvisor; nothing that writes.
        { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
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
      ],
    });
  }
}
