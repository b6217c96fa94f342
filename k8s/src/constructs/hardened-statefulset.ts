import { Construct } from "constructs";
import { IntOrString, KubePodDisruptionBudget, KubeService, KubeStatefulSet, Quantity } from "../k8s.js";
import { hardenedPodTemplate, tokenExemption, type HardenedPodProps } from "./hardened-deployment.js";
import { PULL_POLICY_EXCEPTION, engineExceptionAnnotations, mergeExceptions, type EngineExceptions } from "../policy/exceptions.js";
import { controllerLabels, selectorOf } from "../topology.js";

export interface HardenedStatefulSetProps extends HardenedPodProps {
  readonly namespace: string;
  readonly name: string;
  readonly partOf: string;
  readonly component: string;
  readonly replicas: number;
  readonly storage: { readonly mountPath: string; readonly sizeGi: number; readonly storageClassName?: string };
  readonly service: { readonly port: number; readonly targetPortName: string };
  /** Written on the objects when replicas is 1: why this workload cannot run twice. */
  readonly singleReplicaReason?: string;
  /** The engines' checks this workload is an exception to, each with its reason (policy/exceptions.ts). */
  readonly exceptions?: EngineExceptions;
}

/**
 * A StatefulSet with a persistent volume per pod, the hardened pod template, a headless Service for stable names
 * and a regular one for clients, and a PDB (maxUnavailable 1) when it runs more than one replica.
 */
export class HardenedStatefulSet extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, props: HardenedStatefulSetProps) {
    super(scope, id);
    if (props.replicas < 2 && !props.singleReplicaReason) {
      throw new Error(`${props.name}: one replica needs singleReplicaReason (it is written on the object as the policy exemption)`);
    }
    this.selector = selectorOf(props);
    const labels = controllerLabels(props);
    const exemptions = {
      ...(props.replicas < 2
        ? {
            "policy.platform.io/exempt.AVAILABILITY": props.singleReplicaReason!,
          }
        : {}),
      ...tokenExemption(props),
      ...engineExceptionAnnotations(mergeExceptions(PULL_POLICY_EXCEPTION, props.exceptions ?? {})),
    };
    const template = hardenedPodTemplate(
      { ...props, container: { ...props.container, persistentMounts: [{ volume: "data", mountPath: props.storage.mountPath }] } },
      labels,
      this.selector,
    );
    new KubeStatefulSet(this, "StatefulSet", {
      metadata: { name: props.name, namespace: props.namespace, labels, annotations: exemptions },
      spec: {
        serviceName: `${props.name}-headless`,
        replicas: props.replicas,
        selector: { matchLabels: this.selector },
        podManagementPolicy: "Parallel",
        updateStrategy: { type: "RollingUpdate" },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
        template,
        volumeClaimTemplates: [
          {
            metadata: { name: "data" },
            spec: {
              accessModes: ["ReadWriteOnce"],
              storageClassName: props.storage.storageClassName ?? "premium-rwo",
              resources: { requests: { storage: Quantity.fromString(`${props.storage.sizeGi}Gi`) } },
            },
          },
        ],
      },
    });
    const ports = [{ name: "http", port: props.service.port, targetPort: IntOrString.fromString(props.service.targetPortName), protocol: "TCP" }];
    new KubeService(this, "Headless", {
      metadata: { name: `${props.name}-headless`, namespace: props.namespace, labels },
      spec: { clusterIp: "None", selector: this.selector, ports },
    });
    new KubeService(this, "Service", {
      metadata: { name: props.name, namespace: props.namespace, labels },
      spec: { type: "ClusterIP", selector: this.selector, ports },
    });
    if (props.replicas >= 2) {
      new KubePodDisruptionBudget(this, "DisruptionBudget", {
        metadata: { name: props.name, namespace: props.namespace, labels },
        spec: { maxUnavailable: IntOrString.fromNumber(1), selector: { matchLabels: this.selector }, unhealthyPodEvictionPolicy: "AlwaysAllow" },
      });
    }
  }
}
