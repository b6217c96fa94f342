/**
 * Where traces go (src/charts/monitoring/otel-collector.ts, jaeger.ts, topology.ts traceReceiver): where an
 * environment keeps them in Cloud Trace, an OpenTelemetry Collector of 2+ replicas receives them from every sender,
 * survives a drain and carries no availability exemption, and its configuration passes the real collector's
 * `otelcol validate` (scripts/tools/install-otelcol.sh); where Jaeger is the store, the senders write to it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { ENVIRONMENT_NAMES, loadEnvironment, platformNames } from "@platform/config";
import { synthesizeEnvironment } from "../src/app.js";
import { renderMonitoring } from "@platform/monitoring";
import { OTEL_COLLECTOR_METRICS_PORT, otelCollectorConfig } from "../src/charts/monitoring/otel-collector.js";
import { PORTS, WORKLOADS, selectorOf, traceReceiver } from "../src/topology.js";

const dir = mkdtempSync(join(tmpdir(), "k8s-otel-"));
writeFileSync(join(dir, "empty.json"), "{}");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

const configs = ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env: {}, overrideFile: join(dir, "empty.json") }));
const synthesized = Object.fromEntries(configs.map((c) => [c.name, (synthesizeEnvironment(c, join(dir, c.name)) as { objects: Obj[] }).objects]));

const sameLabels = (a: Record<string, string> | undefined, b: Record<string, string>) => JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b).sort());

/** The ports a workload's NetworkPolicy lets it reach on the given pods. */
function egressTo(objects: Obj[], policy: string, namespace: string, selector: Record<string, string>): number[] {
  const spec = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === policy).spec;
  return spec.egress
    .filter((rule: Obj) => (rule.to ?? []).some((p: Obj) => p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === namespace && sameLabels(p.podSelector?.matchLabels, selector)))
    .flatMap((rule: Obj) => rule.ports.map((p: Obj) => p.port));
}

describe.each(configs.map((c) => [c.name, c] as const))("%s: the trace receiver", (name, config) => {
  const objects = synthesized[name]!;
  const find = (kind: string, objectName: string) => objects.find((o) => o.kind === kind && o.metadata.name === objectName);
  const receiver = traceReceiver(config);
  const cloudTrace = config.monitoring.traceBackend === "cloudTrace";

  it("every sender (Kong, Hydra, the service, the worker) is pointed at the receiver and may reach it, and nothing else traces", () => {
    const service = find("Deployment", "tenant-service").spec.template.spec.containers[0].env;
    const worker = find("Deployment", "tenant-worker").spec.template.spec.containers[0].env;
    for (const env of [service, worker]) expect(env.find((e: Obj) => e.name === "OTEL_EXPORTER_OTLP_ENDPOINT").value).toBe(receiver.url);
    const hydra = find("Deployment", "hydra").spec.template.spec.containers[0].env;
    expect(hydra.find((e: Obj) => e.name === "TRACING_PROVIDERS_OTLP_SERVER_URL").value).toBe(new URL(receiver.url).host);
    expect(JSON.stringify(objects.filter((o) => o.kind === "ConfigMap" && o.metadata.namespace === config.kubernetes.gateway.namespace))).toContain(`${receiver.url}/v1/traces`);
    for (const policy of ["kong", "hydra", "tenant-service", "tenant-worker"]) expect(egressTo(objects, policy, receiver.pods.namespace, receiver.pods.selector), policy).toEqual([receiver.port]);
    expect(new URL(receiver.url).hostname).toBe(`${cloudTrace ? WORKLOADS.otelCollector.name : "jaeger-collector"}.${receiver.pods.namespace}.svc.cluster.local`);
  });

  it(cloudTrace ? "runs the collector and no Jaeger, so nothing in tracing asks for an availability exemption" : "runs Jaeger all-in-one and no collector", () => {
    expect(Boolean(find("Deployment", WORKLOADS.otelCollector.name))).toBe(cloudTrace);
    expect(Boolean(find("StatefulSet", WORKLOADS.jaeger.name))).toBe(!cloudTrace);
    const exempt = objects.filter((o) => o.metadata.annotations?.["policy.platform.io/exempt.AVAILABILITY"]).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(exempt).toEqual(cloudTrace ? [] : ["StatefulSet/jaeger"]);
    const datasources = parse(find("ConfigMap", "grafana-provisioning").data["datasources.yaml"]).datasources.map((d: Obj) => d.type);
    expect(datasources).toEqual(cloudTrace ? ["prometheus"] : ["prometheus", "jaeger"]);
  });

  it.runIf(cloudTrace)("the collector: 2+ replicas from the config under an HPA, a PDB that lets one go, spread over zones and hosts", () => {
    const size = config.kubernetes.workloads.otelCollector;
    const hpa = find("HorizontalPodAutoscaler", WORKLOADS.otelCollector.name);
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([size.minReplicas, size.maxReplicas]);
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    const pdb = find("PodDisruptionBudget", WORKLOADS.otelCollector.name);
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1, selector: { matchLabels: selectorOf(WORKLOADS.otelCollector) } });
    const pod = find("Deployment", WORKLOADS.otelCollector.name).spec.template.spec;
    expect(pod.topologySpreadConstraints.map((t: Obj) => t.topologyKey)).toEqual(["topology.kubernetes.io/zone"]);
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe("kubernetes.io/hostname");
    expect(pod.containers[0].resources.limits).toMatchObject({ cpu: size.cpuLimit, memory: size.memoryLimit });
    expect(pod.containers[0].securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
  });

  it.runIf(cloudTrace)("the collector acts as its own Google service account, mounts no API token, and takes spans only from the senders", () => {
    const account = find("ServiceAccount", config.kubernetes.otelCollector.serviceAccount);
    expect(account.metadata.annotations["iam.gke.io/gcp-service-account"]).toBe(platformNames(config).serviceAccounts.otelCollector.email);
    expect(find("Deployment", WORKLOADS.otelCollector.name).spec.template.spec.automountServiceAccountToken).toBe(false);
    const policy = find("NetworkPolicy", WORKLOADS.otelCollector.name).spec;
    const otlp = policy.ingress.find((r: Obj) => r.ports.some((p: Obj) => p.port === PORTS.otlpHttp));
    expect(otlp.from.map((p: Obj) => p.podSelector.matchLabels["app.kubernetes.io/name"]).sort()).toEqual(["hydra", "kong", "tenant-service", "tenant-worker"]);
    // Out: HTTPS to Google (not the private ranges) and the metadata server for Workload Identity's tokens.
    const out = policy.egress.flatMap((r: Obj) => r.to.map((p: Obj) => `${p.ipBlock.cidr}:${r.ports.map((x: Obj) => x.port).join(",")}`));
    expect(out.sort()).toEqual(["0.0.0.0/0:443", "169.254.169.252/32:988", "169.254.169.254/32:80"]);
  });

  it.runIf(cloudTrace)("the collector's mounted configuration is otelCollectorConfig, exporting to this environment's project", () => {
    const mounted = parse(find("ConfigMap", "otel-collector-config").data["config.yaml"]);
    expect(mounted).toEqual(otelCollectorConfig(config));
    expect(mounted.exporters.googlecloud.project).toBe(config.gcp.projectId);
    expect(mounted.service.pipelines.traces).toEqual({ receivers: ["otlp"], processors: ["memory_limiter", "batch"], exporters: ["googlecloud"] });
  });

  it.runIf(cloudTrace)("Prometheus scrapes the collector's pods, on the port their annotations name and its telemetry serves, and may reach it", () => {
    const job = (parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: Obj[] }).scrape_configs.find((j) => j.job_name === "otel-collector");
    expect(job.kubernetes_sd_configs).toEqual([{ role: "pod", namespaces: { names: [config.kubernetes.otelCollector.namespace] } }]);
    const pod = find("Deployment", WORKLOADS.otelCollector.name).spec.template;
    expect(job.relabel_configs[0]).toMatchObject({ source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], action: "keep" });
    expect(pod.metadata.labels["app.kubernetes.io/name"]).toMatch(new RegExp(`^(?:${job.relabel_configs[0].regex})$`));
    expect(pod.metadata.annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": String(OTEL_COLLECTOR_METRICS_PORT), "prometheus.io/path": "/metrics" });
    expect((otelCollectorConfig(config) as Obj).service.telemetry.metrics.readers[0].pull.exporter.prometheus.port).toBe(OTEL_COLLECTOR_METRICS_PORT);
    const egress = find("NetworkPolicy", WORKLOADS.prometheus.name).spec.egress;
    const toCollector = egress.filter((r: Obj) => (r.to ?? []).some((p: Obj) => sameLabels(p.podSelector?.matchLabels, selectorOf(WORKLOADS.otelCollector)) && !p.namespaceSelector));
    expect(toCollector.flatMap((r: Obj) => r.ports.map((p: Obj) => p.port))).toEqual([OTEL_COLLECTOR_METRICS_PORT]);
    expect(find("Deployment", WORKLOADS.otelCollector.name).metadata.namespace).toBe(find("StatefulSet", WORKLOADS.prometheus.name).metadata.namespace);
  });
});

describe("the collector's configuration, read by the real collector", () => {
  const script = fileURLToPath(new URL("../../scripts/tools/install-otelcol.sh", import.meta.url));
  const install = spawnSync("bash", [script], { encoding: "utf8", timeout: 30 * 60_000 });
  if (install.status !== 0 && install.status !== 3) throw new Error(`scripts/tools/install-otelcol.sh failed (exit ${String(install.status)}):\n${install.stderr}`);
  const otelcol = install.status === 0 ? install.stdout.trim().split("\n").pop()! : undefined;
  if (!otelcol) console.warn(`skipping otelcol validate: ${install.stderr.trim().split("\n").pop()}`);
  const validate = (config: Record<string, unknown>) => {
    const file = join(dir, `otelcol-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, stringify(config));
    return spawnSync(otelcol!, ["validate", `--config=${file}`], { encoding: "utf8", timeout: 60_000 });
  };

  it.runIf(Boolean(otelcol)).each(configs.filter((c) => c.monitoring.traceBackend === "cloudTrace").map((c) => [c.name, c] as const))("%s: otelcol validate accepts it", (_name, config) => {
    const result = validate(otelCollectorConfig(config));
    expect(result.stderr + result.stdout).toBe("");
    expect(result.status).toBe(0);
  });

  it.runIf(Boolean(otelcol))("and refuses a key its exporter does not have, so the check is the collector's own", () => {
    const config = otelCollectorConfig(configs.find((c) => c.name === "production")!) as Obj;
    config.exporters.googlecloud.retry_on_failure = { enabled: true };
    const result = validate(config);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("retry_on_failure");
  });
});
