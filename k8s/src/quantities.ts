import { cpuCores } from "@platform/config";

/** Memory quantities (512Mi, 1Gi) in MiB, for quota arithmetic (CPU quantities: cpuCores from the config). */

export function memoryMi(q: string): number {
  const n = Number(q.replace(/(Ki|Mi|Gi)$/, ""));
  return q.endsWith("Gi") ? n * 1024 : q.endsWith("Ki") ? n / 1024 : n;
}

/** The quota a namespace needs for workloads at their HPA maximum plus one surge pod each. */
export function quotaFor(workloads: readonly { maxReplicas: number; cpuLimit: string; memoryLimit: string }[]): { cpu: string; memory: string; pods: number } {
  const pods = workloads.reduce((n, w) => n + w.maxReplicas + 1, 0);
  const cpu = workloads.reduce((n, w) => n + cpuCores(w.cpuLimit) * (w.maxReplicas + 1), 0);
  const mem = workloads.reduce((n, w) => n + memoryMi(w.memoryLimit) * (w.maxReplicas + 1), 0);
  return { cpu: String(Math.ceil(cpu)), memory: `${Math.ceil(mem)}Mi`, pods };
}
