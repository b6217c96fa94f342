import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { KubePriorityClass } from "../k8s.js";
import { PlatformNamespace } from "../constructs/platform-namespace.js";
import { PRIORITY_CLASSES, type ChartContext } from "../topology.js";

export function platformNamespaces(ctx: ChartContext): string[] {
  const k = ctx.config.kubernetes;
  return [...new Set([k.tenantService.namespace, k.tenantWorker.namespace, k.gateway.namespace, k.hydra.namespace, k.prometheus.namespace])];
}

/** Applied first: namespaces (restricted Pod Security) and priority classes. */
export class SetupChart extends Chart {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id, { disableResourceNameHashes: true });
    for (const name of platformNamespaces(ctx)) new PlatformNamespace(this, name, { name });
    for (const pc of Object.values(PRIORITY_CLASSES)) {
      new KubePriorityClass(this, pc.name, {
        metadata: { name: pc.name },
        value: pc.value,
        globalDefault: false,
        preemptionPolicy: "PreemptLowerPriority",
        description: "Platform workload priority (k8s/src/topology.ts)",
      });
    }
  }
}
