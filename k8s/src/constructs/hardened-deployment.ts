import { Construct } from "constructs";
import { HPA_TARGET_CPU_PERCENT } from "@platform/config";
import {
  IntOrString,
  KubeDeployment,
  KubeHorizontalPodAutoscalerV2,
  KubePodDisruptionBudget,
  KubeService,
  KubeServiceAccount,
  type PodTemplateSpec,
  type Volume,
} from "../k8s.js";
import { hardenedContainer, hardenedPodSecurityContext, hardenedTaskContainer, type HardenedContainerProps, type HardenedTaskProps } from "./hardened-container.js";
import { HPA_REPLICAS_EXCEPTION, PULL_POLICY_EXCEPTION, engineExceptionAnnotations, mergeExceptions, type EngineExceptions } from "../policy/exceptions.js";
import { controllerLabels, selectorOf } from "../topology.js";

export interface HardenedDeploymentProps {
  readonly namespace: string;
  readonly name: string;
  /** app.kubernetes.io/part-of */
  readonly partOf: string;
  readonly component: string;
  readonly container: HardenedContainerProps;
  readonly initContainers?: readonly HardenedTaskProps[];
  readonly replicas: { readonly min: number; readonly max: number };
  /** HPA target. @default 70 */
  readonly targetCpuPercent?: number;
  readonly priorityClassName: string;
  /** Service port → container port name. Omit for workloads nobody connects to. */
  readonly service?: { readonly port: number; readonly targetPortName: string };
  readonly serviceAccount: {
    readonly name: string;
    /** Google service account the pods act as through Workload Identity. */
    readonly googleServiceAccount?: string;
  };
  /** Prometheus scrapes this port and path. */
  readonly metrics?: { readonly port: number; readonly path: string };
  readonly extraVolumes?: Volume[];
  /** @default 30 */
  readonly terminationGracePeriodSeconds?: number;
  /** The engines' checks this workload is an exception to, each with its reason (policy/exceptions.ts). */
  readonly exceptions?: EngineExceptions;
}

/** What a Deployment and a StatefulSet share: the pod template, spread over zones and hosts. */
export interface HardenedPodProps {
  readonly container: HardenedContainerProps;
  /** Run to completion, in order, before the container starts (e.g. rendering a file from mounted secrets). */
  readonly initContainers?: readonly HardenedTaskProps[];
  readonly priorityClassName: string;
  /** automountToken only for workloads that call the Kubernetes API, with the reason written on the object. */
  readonly serviceAccount: { readonly name: string; readonly automountToken?: boolean; readonly apiAccessReason?: string };
  readonly metrics?: { readonly port: number; readonly path: string };
  readonly extraVolumes?: Volume[];
  readonly terminationGracePeriodSeconds?: number;
}

/** The policy exemption a workload that mounts an API token carries, with its reason. */
export function tokenExemption(props: HardenedPodProps): Record<string, string> | undefined {
  if (!props.serviceAccount.automountToken) return undefined;
  const reason = props.serviceAccount.apiAccessReason;
  if (!reason) throw new Error(`${props.container.name}: a mounted API token needs serviceAccount.apiAccessReason`);
  return { "policy.platform.io/exempt.SERVICE_ACCOUNT_TOKEN": reason, ...engineExceptionAnnotations({ polaris: { automountServiceAccountToken: reason } }) };
}

export function hardenedPodTemplate(props: HardenedPodProps, labels: Record<string, string>, selector: Record<string, string>): PodTemplateSpec {
  const { container, volumes } = hardenedContainer(props.container);
  const init = (props.initContainers ?? []).map((c) => hardenedTaskContainer(c));
  return {
    metadata: {
      labels,
      annotations: props.metrics
        ? { "prometheus.io/scrape": "true", "prometheus.io/port": String(props.metrics.port), "prometheus.io/path": props.metrics.path }
        : undefined,
    },
    spec: {
      serviceAccountName: props.serviceAccount.name,
      // Only workloads that call the Kubernetes API (Prometheus's discovery) get a token.
      automountServiceAccountToken: props.serviceAccount.automountToken ?? false,
      enableServiceLinks: false,
      priorityClassName: props.priorityClassName,
      terminationGracePeriodSeconds: props.terminationGracePeriodSeconds ?? 30,
      securityContext: hardenedPodSecurityContext(),
      initContainers: init.length > 0 ? init.map((i) => i.container) : undefined,
      containers: [container],
      volumes: [...volumes, ...init.flatMap((i) => i.volumes), ...(props.extraVolumes ?? [])],
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
      ],
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector } } },
          ],
        },
      },
    },
  };
}

/**
 * A Deployment that survives node drains and zone loss: at least two replicas, under an HPA when it may scale (a
 * fixed count is the Deployment's own, as an HPA whose bounds are equal would do nothing), a PDB that always
 * lets one pod go (and evicts unhealthy pods), spread across zones and hosts, rolling updates without dropping
 * below capacity, its own ServiceAccount without an API token, and the hardened container.
 */
export class HardenedDeployment extends Construct {
  readonly selector: Record<string, string>;
  readonly deployment: KubeDeployment;
  readonly service?: KubeService;

  constructor(scope: Construct, id: string, props: HardenedDeploymentProps) {
    super(scope, id);
    if (props.replicas.min < 2) throw new Error(`${props.name}: minReplicas must be 2 or more (got ${props.replicas.min})`);
    if (props.replicas.max < props.replicas.min) throw new Error(`${props.name}: maxReplicas ${props.replicas.max} < minReplicas ${props.replicas.min}`);
    this.selector = selectorOf(props);
    const labels = controllerLabels(props);
    const metadata = { name: props.name, namespace: props.namespace, labels };
    const scales = props.replicas.max > props.replicas.min;

    new KubeServiceAccount(this, "ServiceAccount", {
      metadata: {
        name: props.serviceAccount.name,
        namespace: props.namespace,
        labels,
        annotations: props.serviceAccount.googleServiceAccount ? { "iam.gke.io/gcp-service-account": props.serviceAccount.googleServiceAccount } : undefined,
      },
      automountServiceAccountToken: false,
    });

    this.deployment = new KubeDeployment(this, "Deployment", {
      metadata: { ...metadata, annotations: engineExceptionAnnotations(mergeExceptions(PULL_POLICY_EXCEPTION, scales ? HPA_REPLICAS_EXCEPTION : {}, props.exceptions ?? {})) },
      spec: {
        // Under an HPA no replicas field: the HPA owns the count, and a server-side apply must not reset it.
        ...(scales ? {} : { replicas: props.replicas.min }),
        selector: { matchLabels: this.selector },
        revisionHistoryLimit: 5,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: IntOrString.fromString("25%"), maxUnavailable: IntOrString.fromNumber(0) } },
        template: hardenedPodTemplate(props, labels, this.selector),
      },
    });

    if (scales) new KubeHorizontalPodAutoscalerV2(this, "Autoscaler", {
      metadata,
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: props.name },
        minReplicas: props.replicas.min,
        maxReplicas: props.replicas.max,
        metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: props.targetCpuPercent ?? HPA_TARGET_CPU_PERCENT } } }],
        behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: "Percent", value: 25, periodSeconds: 60 }] } },
      },
    });

    new KubePodDisruptionBudget(this, "DisruptionBudget", {
      metadata,
      spec: {
        // One at a time, never none: a drain always makes progress.
        maxUnavailable: IntOrString.fromNumber(1),
        selector: { matchLabels: this.selector },
        unhealthyPodEvictionPolicy: "AlwaysAllow",
      },
    });

    if (props.service) {
      this.service = new KubeService(this, "Service", {
        metadata,
        spec: {
          type: "ClusterIP",
          selector: this.selector,
          ports: [{ name: "http", port: props.service.port, targetPort: IntOrString.fromString(props.service.targetPortName), protocol: "TCP" }],
        },
      });
    }
  }
}
