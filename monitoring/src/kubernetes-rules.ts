/**
 * The Kubernetes layer's alerts: the core of the kubernetes-mixin (kubernetes-monitoring/kubernetes-mixin,
 * alerts/apps_alerts.libsonnet, storage_alerts.libsonnet, kubernetes_resources/system alerts), on what
 * kube-state-metrics and the kubelets export. Their expressions follow the mixin's, restricted to the namespaces the
 * platform runs (GKE's own kube-system workloads are Google's to watch), with the mixin's warning as a ticket and
 * its critical as a page.
 */
import type { EnvironmentConfig } from "@platform/config";
import { alertsWithRunbook, type RuleGroup } from "./rules.js";

const KSM = 'job="kube-state-metrics"';

/** The namespaces the platform's charts run workloads in: a regex matcher value. */
export function platformNamespaces(config: EnvironmentConfig): string {
  const k = config.kubernetes;
  const names = new Set([k.gateway.namespace, k.hydra.namespace, k.tenantService.namespace, k.tenantWorker.namespace, k.prometheus.namespace, k.grafana.namespace, k.jaeger.namespace, k.alertmanager.namespace, k.redisExporter.namespace]);
  return [...names].sort().join("|");
}

export function kubernetesAlerts(config: EnvironmentConfig): RuleGroup {
  const ns = `namespace=~"${platformNamespaces(config)}"`;
  const rule = alertsWithRunbook("kubernetes-workloads");
  return {
    name: "platform.kubernetes",
    rules: [
      rule(
        "KubePodCrashLooping",
        // Waiting in CrashLoopBackOff at any point of the last 5 minutes: the state flaps between restarts, so a
        // plain instant value misses most of it (the mixin's form).
        `max_over_time(kube_pod_container_status_waiting_reason{${KSM},${ns},reason="CrashLoopBackOff"}[5m]) >= 1`,
        "15m",
        "ticket",
        "A container keeps crashing",
        "{{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) has been in CrashLoopBackOff for 15 minutes.",
      ),
      rule(
        "KubePodNotReady",
        // Pending, Unknown or Failed, for pods a controller other than a Job owns (a Job's pod ends Failed by design).
        `sum by (namespace, pod) (max by (namespace, pod) (kube_pod_status_phase{${KSM},${ns},phase=~"Pending|Unknown|Failed"})` +
          ` * on (namespace, pod) group_left (owner_kind) topk by (namespace, pod) (1, max by (namespace, pod, owner_kind) (kube_pod_owner{${KSM},owner_kind!="Job"}))) > 0`,
        "15m",
        "ticket",
        "A pod has not been ready for 15 minutes",
        "{{ $labels.namespace }}/{{ $labels.pod }} is Pending, Unknown or Failed: `kubectl -n {{ $labels.namespace }} describe pod {{ $labels.pod }}` says why.",
      ),
      rule(
        "KubeDeploymentReplicasMismatch",
        // Fewer available than desired, and no rollout moving: a rollout in progress is not a mismatch.
        `(kube_deployment_spec_replicas{${KSM},${ns}} > kube_deployment_status_replicas_available{${KSM},${ns}})` +
          ` and (changes(kube_deployment_status_replicas_updated{${KSM},${ns}}[10m]) == 0)`,
        "15m",
        "ticket",
        "A Deployment has fewer available replicas than it wants",
        "{{ $labels.namespace }}/{{ $labels.deployment }} has had fewer available replicas than desired for 15 minutes.",
      ),
      rule(
        "KubeStatefulSetReplicasMismatch",
        `(kube_statefulset_status_replicas_ready{${KSM},${ns}} != kube_statefulset_status_replicas{${KSM},${ns}})` +
          ` and (changes(kube_statefulset_status_replicas_updated{${KSM},${ns}}[10m]) == 0)`,
        "15m",
        "ticket",
        "A StatefulSet has replicas that are not ready",
        "{{ $labels.namespace }}/{{ $labels.statefulset }} has had replicas not ready for 15 minutes.",
      ),
      rule(
        "KubeHpaMaxedOut",
        // At its maximum for 15 minutes: it wants more and may not grow; load beyond this queues or fails.
        `kube_horizontalpodautoscaler_status_current_replicas{${KSM},${ns}} == kube_horizontalpodautoscaler_spec_max_replicas{${KSM},${ns}}`,
        "15m",
        "ticket",
        "An autoscaler has been at its maximum for 15 minutes",
        "{{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} runs its maximum of {{ $value }} replicas: raise the maximum in the config or find what drives the load.",
      ),
      rule(
        "KubePersistentVolumeFillingUp",
        // The kubelet reports each mounted volume's usage; under 3% free a database or TSDB is minutes from stopping.
        `kubelet_volume_stats_available_bytes{job="kubelet",${ns}} / kubelet_volume_stats_capacity_bytes{job="kubelet",${ns}} < 0.03` +
          ` and kubelet_volume_stats_used_bytes{job="kubelet",${ns}} > 0`,
        "1m",
        "page",
        "A persistent volume is almost full",
        "{{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} free.",
      ),
      rule(
        "KubePersistentVolumeWillFill",
        `kubelet_volume_stats_available_bytes{job="kubelet",${ns}} / kubelet_volume_stats_capacity_bytes{job="kubelet",${ns}} < 0.15` +
          ` and kubelet_volume_stats_used_bytes{job="kubelet",${ns}} > 0` +
          ` and predict_linear(kubelet_volume_stats_available_bytes{job="kubelet",${ns}}[6h], 4 * 24 * 3600) < 0`,
        "1h",
        "ticket",
        "A persistent volume will be full within four days",
        "{{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} free and fills at its current rate within four days.",
      ),
      rule(
        "KubeJobFailed",
        `kube_job_failed{${KSM},${ns}} > 0`,
        "15m",
        "ticket",
        "A Job failed",
        "Job {{ $labels.namespace }}/{{ $labels.job_name }} failed; its pods' logs say why (it is removed after ttlSecondsAfterFinished).",
      ),
      rule(
        "KubeNodeNotReady",
        // GKE's auto-repair recreates a node not ready for about 10 minutes; still not ready at 15 is a repair that
        // did not happen or did not help.
        `kube_node_status_condition{${KSM},condition="Ready",status="true"} == 0`,
        "15m",
        "ticket",
        "A node has not been Ready for 15 minutes",
        "Node {{ $labels.node }} is not Ready; its pods are evicted and rescheduled after the toleration period.",
      ),
    ],
  };
}
