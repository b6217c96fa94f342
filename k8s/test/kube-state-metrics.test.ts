/**
 * The Kubernetes layer's objects (src/charts/monitoring/kube-state-metrics.ts, kubernetes-scraping.ts) against what
 * monitoring/ scrapes: kube-state-metrics reads only what the alerts use and never Secrets, Prometheus reaches it and
 * the kubelets and may read the kubelets' metrics but not proxy to them, and the scrape target is this Service.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ENVIRONMENT_NAMES, loadEnvironment } from "@platform/config";
import { KUBELET_PORT, KUBE_STATE_METRICS_PORT, renderMonitoring } from "@platform/monitoring";
import { synthesizeEnvironment } from "../src/app.js";
import { WORKLOADS, selectorOf } from "../src/topology.js";

const dir = mkdtempSync(join(tmpdir(), "k8s-ksm-"));
writeFileSync(join(dir, "empty.json"), "{}");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

describe.each(ENVIRONMENT_NAMES)("%s: the Kubernetes layer", (name) => {
  const config = loadEnvironment(name, { env: {}, overrideFile: join(dir, "empty.json") });
  const { objects } = synthesizeEnvironment(config, join(dir, name)) as { objects: Obj[] };
  const find = (kind: string, objectName: string) => objects.find((o) => o.kind === kind && o.metadata.name === objectName);

  it("kube-state-metrics may list and watch only the kinds it reports, never Secrets or ConfigMaps, and write nothing", () => {
    const role = find("ClusterRole", "platform-kube-state-metrics");
    const resources = role.rules.flatMap((r: Obj) => r.resources);
    expect(resources).not.toContain("secrets");
    expect(resources).not.toContain("configmaps");
    for (const rule of role.rules) expect(rule.verbs).toEqual(["list", "watch"]);
    // What it is told to export is what it may read.
    const container = find("Deployment", "kube-state-metrics").spec.template.spec.containers[0];
    const flag = container.args.find((a: string) => a.startsWith("--resources="));
    expect(flag.slice("--resources=".length).split(",").sort()).toEqual([...resources].sort());
  });

  it("Prometheus scrapes it through its Service in the monitoring namespace, on the port its pods serve", () => {
    const service = find("Service", "kube-state-metrics");
    const scrape = (parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: Obj[] }).scrape_configs.find((j) => j.job_name === "kube-state-metrics");
    expect(scrape.static_configs[0].targets).toEqual([`kube-state-metrics.${service.metadata.namespace}.svc.cluster.local:${service.spec.ports[0].port}`]);
    expect(service.spec.ports[0].port).toBe(KUBE_STATE_METRICS_PORT);
    const pods = find("Deployment", "kube-state-metrics").spec.template;
    expect(pods.metadata.labels).toMatchObject(service.spec.selector);
    expect(pods.spec.containers[0].ports.map((p: Obj) => p.containerPort)).toContain(KUBE_STATE_METRICS_PORT);
    expect(find("Deployment", "kube-state-metrics").spec.replicas).toBeGreaterThanOrEqual(2);
  });

  it("only Prometheus may reach kube-state-metrics, and Prometheus may reach it and the kubelets", () => {
    const ksmPolicy = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "kube-state-metrics");
    expect(ksmPolicy.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: selectorOf(WORKLOADS.prometheus) } }], ports: [{ protocol: "TCP", port: KUBE_STATE_METRICS_PORT }] }]);
    const prometheus = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "prometheus-kubernetes");
    expect(prometheus.spec.podSelector.matchLabels).toEqual(selectorOf(WORKLOADS.prometheus));
    expect(prometheus.spec.ingress).toBeUndefined();
    expect(prometheus.spec.egress).toEqual([
      { to: [{ podSelector: { matchLabels: ksmPolicy.spec.podSelector.matchLabels } }], ports: [{ protocol: "TCP", port: KUBE_STATE_METRICS_PORT }] },
      { to: [{ ipBlock: { cidr: config.network.gkeNodesCidr } }], ports: [{ protocol: "TCP", port: KUBELET_PORT }] },
    ]);
  });

  it("Prometheus may read the kubelets' metrics, not proxy through them", () => {
    const role = find("ClusterRole", "platform-prometheus-kubelet");
    const resources = role.rules.flatMap((r: Obj) => r.resources);
    expect(resources).toContain("nodes/metrics");
    expect(resources).not.toContain("nodes/proxy");
    const binding = find("ClusterRoleBinding", "platform-prometheus-kubelet");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: config.kubernetes.prometheus.serviceAccount, namespace: config.kubernetes.prometheus.namespace }]);
  });
});
