/**
 * The Kubernetes layer's objects (src/charts/monitoring/kube-state-metrics.ts, kubernetes-scraping.ts) against what
 * monitoring/ scrapes: kube-state-metrics reads only what the alerts use and never Secrets, Prometheus reaches it,
 * reads the kubelets through the API server's node proxy (read-only), and the scrape target is this Service.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ENVIRONMENT_NAMES, loadEnvironment } from "@platform/config";
import { API_SERVER_ADDRESS, KUBE_STATE_METRICS_PORT, renderMonitoring } from "@platform/monitoring";
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

  it("only Prometheus may reach kube-state-metrics, and Prometheus may reach it but not the nodes' addresses", () => {
    const ksmPolicy = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "kube-state-metrics");
    expect(ksmPolicy.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: selectorOf(WORKLOADS.prometheus) } }], ports: [{ protocol: "TCP", port: KUBE_STATE_METRICS_PORT }] }]);
    const prometheus = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "prometheus-kubernetes");
    expect(prometheus.spec.podSelector.matchLabels).toEqual(selectorOf(WORKLOADS.prometheus));
    expect(prometheus.spec.ingress).toBeUndefined();
    expect(prometheus.spec.egress).toEqual([
      { to: [{ podSelector: { matchLabels: ksmPolicy.spec.podSelector.matchLabels } }], ports: [{ protocol: "TCP", port: KUBE_STATE_METRICS_PORT }] },
    ]);
    // No policy of Prometheus names the nodes' range: GKE Dataplane V2 would not honour it; the API server path is
    // the control plane's, which its own policy opens.
    const policies = objects.filter((o) => o.kind === "NetworkPolicy" && o.metadata.namespace === config.kubernetes.prometheus.namespace);
    expect(JSON.stringify(policies)).not.toContain(config.network.gkeNodesCidr);
    const own = policies.find((o) => o.metadata.name === "prometheus").spec.egress;
    expect(own).toContainEqual({ to: [{ ipBlock: { cidr: config.network.controlPlaneCidr } }], ports: [{ protocol: "TCP", port: 443 }] });
  });

  it("Prometheus reads the kubelets and cAdvisor through the API server's node proxy, read-only, verifying the API server", () => {
    const role = find("ClusterRole", "platform-prometheus-kubelet");
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
    ]);
    const jobs = (parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: Obj[] }).scrape_configs.filter((j) => ["kubelet", "cadvisor"].includes(j.job_name));
    expect(jobs.map((j) => j.job_name)).toEqual(["kubelet", "cadvisor"]);
    for (const job of jobs) {
      expect(job.tls_config).toEqual({ ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" });
      const address = job.relabel_configs.find((r: Obj) => r.target_label === "__address__");
      expect(address.replacement).toBe(API_SERVER_ADDRESS);
      const path = job.relabel_configs.find((r: Obj) => r.target_label === "__metrics_path__");
      expect(path).toMatchObject({ source_labels: ["__meta_kubernetes_node_name"], replacement: `/api/v1/nodes/$1/proxy${job.job_name === "kubelet" ? "/metrics" : "/metrics/cadvisor"}` });
    }
    const binding = find("ClusterRoleBinding", "platform-prometheus-kubelet");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: config.kubernetes.prometheus.serviceAccount, namespace: config.kubernetes.prometheus.namespace }]);
  });
});
