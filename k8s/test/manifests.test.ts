/* eslint-disable @typescript-eslint/no-explicit-any -- the tests reach into and break synthesized JSON on purpose */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import { parse } from "yaml";
import { ENVIRONMENT_NAMES, UNRESOLVED_DIGEST, admittedImagePatterns, imageAdmitted, loadEnvironment, platformNames, unresolvedImages, type EnvironmentConfig } from "@platform/config";
import { ALERTMANAGER, alertmanagerPeers } from "@platform/monitoring";
import { synthesizeEnvironment, type KubernetesObject } from "../src/app.js";
import { WORKLOADS, selectorOf, traceReceiver } from "../src/topology.js";
import { gatewayRoutes, kongDeclarativeConfig } from "../src/charts/gateway.js";
import { MANIFEST_RULES, checkManifests, type PolicyContext } from "../src/policy/index.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const dir = scratch.make("k8s-synth-");
const emptyOverrides = join(dir, "empty.json");
writeFileSync(emptyOverrides, "{}");
const configs = ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env: {}, overrideFile: emptyOverrides }));
const synthesized: Record<string, { objects: KubernetesObject[]; files: string[] }> = {};

beforeAll(() => {
  for (const config of configs) synthesized[config.name] = synthesizeEnvironment(config, join(dir, config.name));
});

const contextOf = (env: string): PolicyContext => ({ admittedImages: admittedImagePatterns(configs.find((c) => c.name === env)!) });
const find = (env: string, kind: string, name: string) => synthesized[env]!.objects.find((o) => o.kind === kind && o.metadata.name === name)!;
/** The first container's environment variables of a Deployment, by name. */
const envOf = (env: string, deployment: string): Record<string, string> =>
  Object.fromEntries((find(env, "Deployment", deployment).spec as any).template.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]));

describe.each(configs.map((c) => [c.name, c] as [string, EnvironmentConfig]))("%s manifests", (env, config) => {
  const names = platformNames(config);

  it("writes 00-setup.k8s.yaml (namespaces, priority classes), sorting before the workloads", () => {
    expect(synthesized[env]!.files).toEqual(["00-setup.k8s.yaml", "10-auth.k8s.yaml", "10-gateway.k8s.yaml", "20-tenants.k8s.yaml", "30-monitoring.k8s.yaml"]);
    const clusterScoped = new Set(synthesized[env]!.objects.filter((o) => !o.metadata.namespace).map((o) => o.kind));
    expect([...clusterScoped].sort()).toEqual(["ClusterRole", "ClusterRoleBinding", "Namespace", "PriorityClass"]);
    const namespaces = new Set(synthesized[env]!.objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name));
    for (const o of synthesized[env]!.objects) if (o.metadata.namespace) expect(namespaces.has(o.metadata.namespace), `${o.kind}/${o.metadata.name}`).toBe(true);
  });

  it.each(MANIFEST_RULES.filter((r) => r.blocks !== "deploy").map((r) => [`${r.id}: ${r.title}`, r.id]))("%s", (_label, id) => {
    const violations = checkManifests(synthesized[env]!.objects, contextOf(env), MANIFEST_RULES.filter((r) => r.id === id));
    expect(violations).toEqual([]);
  });

  it("says that every image with the placeholder digest is not pinned, and stops only its deployment", () => {
    const findings = checkManifests(synthesized[env]!.objects, contextOf(env)).filter((v) => v.rule === "IMAGE_DIGEST_RESOLVED");
    expect(findings.every((f) => f.blocks === "deploy" && /placeholder digest, which is not a pin/.test(f.reason))).toBe(true);
    const named = new Set(findings.map((f) => f.reason.replace(/^container [^:]+: image (\S+) .*$/, "$1")));
    // The trace receiver's image runs only where it is the environment's (monitoring.traceBackend).
    const notRun = config.monitoring.traceBackend === "cloudTrace" ? "jaeger" : "otelCollector";
    const expected = [
      ...unresolvedImages().filter((i) => !i.startsWith(`${notRun} `)).map((i) => i.replace(/^\S+ \((.*)\)$/, "$1")),
      ...(config.kubernetes.images.placeholder ? [config.kubernetes.images.tenantService.split("@")[0]!] : []),
    ];
    expect([...named].sort()).toEqual(expected.sort());
  });

  it("runs only images that the environment's Binary Authorization allowlist admits", () => {
    const podSpecs = synthesized[env]!.objects.flatMap((o: any) => {
      const spec = o.kind === "CronJob" ? o.spec?.jobTemplate?.spec?.template?.spec : o.spec?.template?.spec;
      return spec ? [[`${o.kind}/${o.metadata.name}`, spec]] : [];
    }) as [string, any][];
    const images = podSpecs.flatMap(([owner, spec]) => [...(spec.initContainers ?? []), ...spec.containers].map((c: any): [string, string] => [owner, c.image]));
    expect(images.length).toBeGreaterThanOrEqual(9);
    const patterns = admittedImagePatterns(config);
    expect(images.filter(([, image]) => !imageAdmitted(image, patterns))).toEqual([]);
  });

  it("sizes the workloads from the environment config", () => {
    const hpa = find(env, "HorizontalPodAutoscaler", "tenant-service").spec as { minReplicas: number; maxReplicas: number };
    expect(hpa).toMatchObject({ minReplicas: config.kubernetes.workloads.tenantService.minReplicas, maxReplicas: config.kubernetes.workloads.tenantService.maxReplicas });
    const container = ((find(env, "Deployment", "tenant-service").spec as any).template.spec.containers[0]) as any;
    expect(container.resources.limits.memory).toBe(config.kubernetes.workloads.tenantService.memoryLimit);
    expect(container.image).toBe(config.kubernetes.images.tenantService);
    const envVars = Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(envVars.BASE_DOMAIN).toBe(config.kubernetes.apiBaseDomain);
    expect(envVars.DATABASE_URL).toBe(`postgresql://${names.databaseRoles.app}@${names.citus.coordinator.host}:5432/platform`);
    expect(names.databaseRoles.app).toBe("platform_app");
    // All replicas' pools together stay within 60% of the coordinator's connections.
    expect(Number(envVars.DATABASE_POOL_SIZE) * config.kubernetes.workloads.tenantService.maxReplicas).toBeLessThanOrEqual(config.citus.coordinatorMaxConnections * 0.6);
    expect(JSON.stringify(container.env)).not.toMatch(/password=|:[^/@]+@coordinator/i);
  });

  it("has one token issuer (names.auth): Hydra issues as it, the gateway routes its host to Hydra, the service accepts only it", () => {
    expect(names.auth.issuer).toBe(`https://auth.${config.kubernetes.apiBaseDomain}/`);
    expect(envOf(env, "hydra").URLS_SELF_ISSUER).toBe(names.auth.issuer);
    expect(envOf(env, "tenant-service").AUTH_ISSUER).toBe(names.auth.issuer);
    expect(gatewayRoutes(config).find((r) => r.name === "oauth2")!.hosts).toEqual([new URL(names.auth.issuer).host]);
  });

  it("refuses the same body size at Kong and at the tenant service (edge.requestBodyLimitKib)", () => {
    const plugins = (kongDeclarativeConfig(config, gatewayRoutes(config)) as any).plugins as any[];
    const kong = plugins.find((p) => p.name === "request-size-limiting").config;
    // Kong's "kilobytes" are 1,024 bytes.
    expect(kong).toMatchObject({ allowed_payload_size: config.edge.requestBodyLimitKib, size_unit: "kilobytes" });
    expect(Number(envOf(env, "tenant-service").BODY_LIMIT_BYTES)).toBe(kong.allowed_payload_size * 1024);
    expect(config.edge.requestBodyLimitKib).toBe(256);
  });

  it("gives the worker the service's Redis and a way to it (an erased tenant's rate-limit entries are removed by the worker)", () => {
    const worker = envOf(env, "tenant-worker");
    const service = envOf(env, "tenant-service");
    for (const key of ["REDIS_URL", "REDIS_PASSWORD_FILE", "REDIS_CA_FILE"]) expect(worker[key], key).toBe(service[key]);
    const policy = find(env, "NetworkPolicy", "tenant-worker") as any;
    const ports = policy.spec.egress.flatMap((rule: any) => rule.ports.map((port: any) => port.port));
    expect(ports).toContain(names.redis.port);
  });

  it("binds each ServiceAccount to its Google service account from the infra names (Workload Identity)", () => {
    expect(find(env, "ServiceAccount", "tenant-service").metadata.annotations?.["iam.gke.io/gcp-service-account"]).toBe(names.serviceAccounts.tenantService.email);
    expect(find(env, "ServiceAccount", "tenant-worker").metadata.annotations?.["iam.gke.io/gcp-service-account"]).toBe(names.serviceAccounts.tenantWorker.email);
  });

  it("mounts exactly the Secret Manager secrets the infra lets the workloads read", () => {
    const spc = find(env, "SecretProviderClass", "platform-secrets") as any;
    const resources = [...String(spc.spec.parameters.secrets).matchAll(/secrets\/([^/]+)\/versions/g)].map((m) => m[1]).sort();
    expect(resources).toEqual([names.secrets.dbApp, names.secrets.dbCaCert, names.secrets.redisAuth, names.secrets.redisCa].sort());
  });

  it("limits database and Redis egress to their address ranges and ports", () => {
    const egress = ((find(env, "NetworkPolicy", "tenant-service").spec as any).egress as any[]).filter((e) => e.to[0].ipBlock?.cidr.startsWith("10."));
    expect(egress.map((e) => [e.to[0].ipBlock.cidr, e.ports[0].port])).toEqual([
      [config.network.dataCidr, 5432],
      [config.network.privateServiceAccessCidr, 6378],
    ]);
  });

  it("gives the service and the worker the environment's exports bucket from config/, and HTTPS to Google's APIs but not the private ranges", () => {
    const names = platformNames(config);
    for (const workload of ["tenant-service", "tenant-worker"]) {
      expect(envOf(env, workload), workload).toMatchObject({ EXPORT_STORE: "gcs", EXPORT_BUCKET: names.exportsBucket, EXPORT_RETENTION_DAYS: String(config.exports.retentionDays) });
      const https = ((find(env, "NetworkPolicy", workload).spec as any).egress as any[]).filter((e) => e.ports[0].port === 443);
      expect(https.map((e) => e.to[0].ipBlock), workload).toEqual([{ cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] }]);
    }
  });
});

describe.each(configs.map((c) => [c.name, c] as [string, EnvironmentConfig]))("%s gateway", (env, config) => {
  const names = platformNames(config);
  const kong = () => (find(env, "ConfigMap", "kong-declarative") as any).data["kong.yml"] as string;

  it("generates Kong's declarative configuration from the route table", () => {
    const generated = kongDeclarativeConfig(config, gatewayRoutes(config)) as any;
    expect(generated._format_version).toBe("3.0");
    expect(generated.services.map((s: any) => s.name)).toEqual(gatewayRoutes(config).map((r) => r.name));
    for (const service of generated.services.filter((s: any) => s.name.startsWith("tenant-api"))) {
      expect(service.url).toBe(`http://tenant-service.${config.kubernetes.tenantService.namespace}.svc.cluster.local:8080`);
      expect(service.routes[0].hosts).toEqual([config.kubernetes.apiHostname, `*.${config.kubernetes.apiBaseDomain}`]);
      expect(service.routes[0].protocols).toEqual(["https"]);
    }
    const oauth = generated.services.find((s: any) => s.name === "oauth2");
    expect(oauth.url).toBe(`http://hydra-public.${config.kubernetes.hydra.namespace}.svc.cluster.local:4444`);
    expect(oauth.routes[0].hosts).toEqual([names.auth.host]);
    expect(JSON.stringify(generated)).not.toContain("4445");
    expect(kong()).toContain("_format_version");
  });

  it("enables correlation ids, request-size limits, CORS, Prometheus, tracing and Redis-backed per-address rate limiting", () => {
    const plugins = (kongDeclarativeConfig(config, gatewayRoutes(config)) as any).plugins as any[];
    expect(plugins.map((p) => p.name).sort()).toEqual(["correlation-id", "cors", "opentelemetry", "prometheus", "rate-limiting", "request-size-limiting"]);
    const limit = plugins.find((p) => p.name === "rate-limiting").config;
    // What the edge limits on and which address it believes: test/edge.test.ts.
    expect(limit).toMatchObject({ policy: "redis", limit_by: "ip", redis: { host: names.redis.host, port: 6378, ssl: true, ssl_verify: true } });
    expect(limit.redis.password).toMatch(/^\{vault:\/\/env\//);
  });

  it("runs Kong DB-less as a non-root user behind a LoadBalancer, with the admin API off", () => {
    const container = (find(env, "Deployment", "kong").spec as any).template.spec.containers[0];
    const vars = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    expect(vars).toMatchObject({ KONG_DATABASE: "off", KONG_ADMIN_LISTEN: "off" });
    expect(container.securityContext.runAsUser).toBeGreaterThanOrEqual(10000);
    expect(container.ports.map((p: any) => p.containerPort)).toEqual([8000, 8443, 8100]);
    const lb = find(env, "Service", "kong-proxy").spec as any;
    expect(lb.type).toBe("LoadBalancer");
    expect(lb.ports.map((p: any) => p.port)).toEqual([80, 443]);
  });

  it("lets Kong reach only the routed services, Redis and the trace receiver", () => {
    const egress = (find(env, "NetworkPolicy", "kong").spec as any).egress as any[];
    expect(egress.map((e) => e.to[0].ipBlock?.cidr ?? e.to[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"])).toEqual([
      ...gatewayRoutes(config).map((r) => r.upstream.namespace),
      config.network.privateServiceAccessCidr,
      traceReceiver(config).pods.namespace,
    ]);
    expect(egress.at(-1).ports).toEqual([{ port: 4318, protocol: "TCP" }]);
  });

  it("starts every request's trace at Kong, sends it to the trace receiver and passes it upstream as W3C, ignoring the client's", () => {
    const kong = parse((find(env, "ConfigMap", "kong-declarative") as any).data["kong.yml"]);
    const otel = kong.plugins.find((p: any) => p.name === "opentelemetry").config;
    expect(otel.traces_endpoint).toBe(`${traceReceiver(config).url}/v1/traces`);
    expect(otel.propagation).toEqual({ extract: [], clear: ["traceparent", "tracestate", "baggage"], inject: ["w3c"], default_format: "w3c" });
    const container = (find(env, "Deployment", "kong").spec as any).template.spec.containers[0];
    const vars = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    // Without tracing_instrumentations Kong makes no spans at all (its default is off).
    expect(vars.KONG_TRACING_INSTRUMENTATIONS).toBe("all");
    // The environment's sampling share, in the plugin and in Kong's own tracer alike.
    expect(otel.sampling_rate).toBe(config.monitoring.traceSamplingRate);
    expect(Number(vars.KONG_TRACING_SAMPLING_RATE)).toBe(config.monitoring.traceSamplingRate);
  });
});

describe.each(configs.map((c) => [c.name, c] as [string, EnvironmentConfig]))("%s auth (Ory Hydra)", (env, config) => {
  const names = platformNames(config);
  it("opens the admin API to its own namespace, the tenant worker and service (tenants' OAuth2 clients) and Prometheus only; the public port to the gateway and the tenant service", () => {
    const ingress = (find(env, "NetworkPolicy", "hydra").spec as any).ingress as any[];
    const admin = ingress.filter((i) => i.ports[0].port === 4445);
    expect(admin.flatMap((i) => i.from)).toEqual([
      { podSelector: {} },
      expect.objectContaining({ podSelector: { matchLabels: selectorOf(WORKLOADS.tenantWorker) } }),
      expect.objectContaining({ podSelector: { matchLabels: selectorOf(WORKLOADS.tenantService) } }),
      expect.objectContaining({ podSelector: { matchLabels: selectorOf(WORKLOADS.prometheus) } }),
    ]);
    const publicFrom = ingress.find((i) => i.ports[0].port === 4444).from.map((f: any) => f.namespaceSelector.matchLabels["kubernetes.io/metadata.name"]);
    expect(publicFrom.sort()).toEqual(["gateway", config.kubernetes.tenantService.namespace].sort());
  });
  it("gives the tenant worker and service Hydra's admin URL, and lets both reach its admin port", () => {
    const adminUrl = `http://hydra-admin.${config.kubernetes.hydra.namespace}.svc.cluster.local:4445`;
    expect(find(env, "Service", "hydra-admin").spec).toMatchObject({ ports: [expect.objectContaining({ port: 4445 })] });
    for (const workload of [WORKLOADS.tenantWorker, WORKLOADS.tenantService]) {
      const container = (find(env, "Deployment", workload.name).spec as any).template.spec.containers[0];
      const vars = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
      expect(vars, workload.name).toMatchObject({ HYDRA_ADMIN_URL: adminUrl, AUTH_AUDIENCE: "tenant-service" });
      const egress = (find(env, "NetworkPolicy", workload.name).spec as any).egress as any[];
      const toHydra = egress.filter((e) => e.to[0].podSelector?.matchLabels?.["app.kubernetes.io/name"] === WORKLOADS.hydra.name);
      expect(toHydra.flatMap((e) => e.ports.map((p: any) => p.port)), workload.name).toContain(4445);
      expect(toHydra[0].to[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]).toBe(config.kubernetes.hydra.namespace);
    }
  });
  it("sends its spans to the trace receiver over OTLP/HTTP, and may reach it", () => {
    const container = (find(env, "Deployment", "hydra").spec as any).template.spec.containers[0];
    const vars = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    expect(vars).toMatchObject({
      TRACING_PROVIDER: "otel",
      TRACING_PROVIDERS_OTLP_SERVER_URL: new URL(traceReceiver(config).url).host,
      TRACING_PROVIDERS_OTLP_INSECURE: "true",
    });
    const egress = (find(env, "NetworkPolicy", "hydra").spec as any).egress as any[];
    expect(egress.some((e) => e.to[0].namespaceSelector?.matchLabels["kubernetes.io/metadata.name"] === traceReceiver(config).pods.namespace && e.ports[0].port === 4318)).toBe(true);
    const receiverPolicy = config.monitoring.traceBackend === "cloudTrace" ? WORKLOADS.otelCollector.name : WORKLOADS.jaeger.name;
    const receiverIngress = (find(env, "NetworkPolicy", receiverPolicy).spec as any).ingress.find((i: any) => i.ports[0].port === 4318);
    expect(receiverIngress.from.map((f: any) => f.namespaceSelector.matchLabels["kubernetes.io/metadata.name"]).sort()).toEqual(
      [config.kubernetes.gateway.namespace, config.kubernetes.hydra.namespace, config.kubernetes.tenantService.namespace, config.kubernetes.tenantWorker.namespace].sort(),
    );
  });
  it("migrates its schema in a Job that cleans itself up", () => {
    const job = find(env, "Job", "hydra-migrate").spec as any;
    expect(job.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(job.template.spec.containers[0].args[0]).toMatch(/exec hydra migrate sql --read-from-env --yes$/);
  });
  it("builds the DSN and system secret from mounted files at start: no credential in any manifest", () => {
    const args = (find(env, "Deployment", "hydra").spec as any).template.spec.containers[0].args[0] as string;
    expect(args).toContain(`postgres://${names.databaseRoles.hydra}:$(cat /var/run/secrets/platform/db-password)@${names.citus.coordinator.host}:5432/${names.hydraDatabase}?`);
    expect(args).toContain("sslmode=verify-full");
    const spc = find(env, "SecretProviderClass", "hydra-secrets") as any;
    expect(spc.spec.parameters.secrets).toContain(names.secrets.hydraDbPassword);
  });
});

describe.each(configs.map((c) => [c.name, c] as [string, EnvironmentConfig]))("%s monitoring", (env, config) => {
  const names = platformNames(config);
  it("mounts the rules and scrape configuration that monitoring/ renders, sized from the config", async () => {
    const { renderMonitoring } = await import("@platform/monitoring");
    const files = renderMonitoring(config).files;
    expect((find(env, "ConfigMap", "prometheus-rules") as any).data["platform.rules.yml"]).toBe(files["platform.rules.yml"]);
    expect((find(env, "ConfigMap", "prometheus-config") as any).data["prometheus.yml"]).toBe(files["prometheus.yml"]);
    const sts = find(env, "StatefulSet", "prometheus").spec as any;
    expect(sts.replicas).toBe(config.monitoring.prometheusReplicas);
    expect(sts.volumeClaimTemplates[0].spec.resources.requests.storage).toBe(`${config.monitoring.prometheusStorageGi}Gi`);
    expect(sts.template.spec.containers[0].args).toContain(`--storage.tsdb.retention.time=${config.monitoring.prometheusRetentionDays}d`);
  });
  it("provisions Grafana with every dashboard and the Prometheus datasource by uid", () => {
    const dashboards = Object.keys((find(env, "ConfigMap", "grafana-dashboards") as any).data).sort();
    expect(dashboards).toEqual([
      "dashboard-platform-api-overview.json",
      "dashboard-platform-business.json",
      "dashboard-platform-citus.json",
      "dashboard-platform-gateway.json",
      "dashboard-platform-kubernetes.json",
      "dashboard-platform-tenants.json",
    ]);
    expect((find(env, "ConfigMap", "grafana-provisioning") as any).data["datasources.yaml"]).toContain("uid: prometheus");
  });
  it("writes each exemption on its object with a reason: Prometheus's API token, and Jaeger's single replica only where Jaeger keeps the traces", () => {
    expect(find(env, "StatefulSet", "prometheus").metadata.annotations?.["policy.platform.io/exempt.SERVICE_ACCOUNT_TOKEN"]).toMatch(/service discovery/);
    const availability = synthesized[env]!.objects.filter((o) => o.metadata.annotations?.["policy.platform.io/exempt.AVAILABILITY"]).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(availability).toEqual(config.monitoring.traceBackend === "jaeger" ? ["StatefulSet/jaeger"] : []);
    if (config.monitoring.traceBackend === "jaeger") expect(find(env, "StatefulSet", "jaeger").metadata.annotations?.["policy.platform.io/exempt.AVAILABILITY"]).toMatch(/badger/);
    const role = find(env, "ClusterRole", "platform-prometheus") as any;
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["pods", "services", "endpoints"], verbs: ["get", "list", "watch"] }]);
  });
  it("runs two Alertmanagers that gossip, every Prometheus sends to both, and the receiver's credential and heartbeat URL are mounted files", () => {
    const am = find(env, "StatefulSet", "alertmanager").spec as any;
    expect(am.replicas).toBe(2);
    const args: string[] = am.template.spec.containers[0].args;
    expect(args.filter((a) => a.startsWith("--cluster.peer="))).toEqual(alertmanagerPeers(config, ALERTMANAGER.clusterPort).map((p) => `--cluster.peer=${p}`));
    const spc = find(env, "SecretProviderClass", "alertmanager-secrets") as any;
    expect(String(spc.spec.parameters.secrets)).toContain(`secrets/${names.secrets.alertReceiver}/versions/latest`);
    expect(String(spc.spec.parameters.secrets)).toContain(`secrets/${names.secrets.alertHeartbeat}/versions/latest`);
    expect(find(env, "ServiceAccount", config.kubernetes.alertmanager.serviceAccount).metadata.annotations?.["iam.gke.io/gcp-service-account"]).toBe(names.serviceAccounts.alertmanager.email);
    const policy = find(env, "NetworkPolicy", "alertmanager").spec as any;
    const https = policy.egress.find((e: any) => e.ports[0].port === 443);
    expect(https.to[0].ipBlock.except).toEqual(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]);
  });
  it("scrapes Memorystore through redis_exporter, whose password map the init container writes from the mounted secret", () => {
    const pod = (find(env, "Deployment", "redis-exporter").spec as any).template.spec;
    const args: string[] = pod.containers[0].args;
    const address = args.find((a) => a.startsWith("--redis.addr="))!.slice("--redis.addr=".length);
    expect(address).toBe(`rediss://${names.redis.host}:${names.redis.port}`);
    // Run the init container's script for real, with its two paths pointed at a scratch directory.
    const work = scratch.make("redis-exporter-");
    mkdirSync(join(work, "secrets"));
    mkdirSync(join(work, "rendered"));
    writeFileSync(join(work, "secrets", "redis-auth"), "s3cret-auth-string\n");
    const init = pod.initContainers[0];
    const script = String(init.command[2]).replaceAll("/var/run/secrets/platform", join(work, "secrets")).replaceAll("/rendered", join(work, "rendered"));
    execFileSync(process.execPath, ["-e", script], { env: { REDIS_ADDR: init.env.find((e: any) => e.name === "REDIS_ADDR").value } });
    const rendered = JSON.parse(readFileSync(join(work, "rendered", "password.json"), "utf8"));
    // redis_exporter looks the password up by exactly its --redis.addr.
    expect(rendered).toEqual({ [address]: "s3cret-auth-string" });
    expect(args).toContain("--redis.password-file=/rendered/password.json");
    expect(pod.volumes.find((v: any) => v.name === "rendered").emptyDir.medium).toBe("Memory");
    const policy = find(env, "NetworkPolicy", "redis-exporter").spec as any;
    expect(policy.egress).toEqual([{ to: [{ ipBlock: { cidr: config.network.privateServiceAccessCidr } }], ports: [{ protocol: "TCP", port: names.redis.port }] }]);
  });
  it("accepts traces only from Kong, Hydra, the tenant service and its worker, and lets Grafana reach only Prometheus and Jaeger where it runs", () => {
    const jaegerRuns = config.monitoring.traceBackend === "jaeger";
    const receiver = (find(env, "NetworkPolicy", jaegerRuns ? WORKLOADS.jaeger.name : WORKLOADS.otelCollector.name).spec as any).ingress[0];
    expect(receiver.ports[0].port).toBe(4318);
    expect(receiver.from.map((f: any) => f.podSelector.matchLabels)).toEqual([WORKLOADS.gateway, WORKLOADS.hydra, WORKLOADS.tenantService, WORKLOADS.tenantWorker].map(selectorOf));
    const grafana = find(env, "NetworkPolicy", "grafana").spec as any;
    expect(grafana.ingress).toBeUndefined();
    expect(grafana.egress.map((e: any) => e.ports[0].port)).toEqual(jaegerRuns ? [9090, 16686] : [9090]);
  });
});

describe("the checks can fail", () => {
  // dev's manifests with every placeholder digest replaced by a resolved one, so that each rule starts at no finding.
  const base = () => JSON.parse(JSON.stringify(synthesized.dev!.objects).replaceAll(UNRESOLVED_DIGEST, `sha256:${"b".repeat(64)}`)) as KubernetesObject[];
  const deployment = (objects: KubernetesObject[]) => objects.find((o) => o.kind === "Deployment" && o.metadata.name === "tenant-service") as any;
  const container = (objects: KubernetesObject[]) => deployment(objects).spec.template.spec.containers[0];
  const statefulSet = (objects: KubernetesObject[], name: string) => objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === name) as any;
  const breaks: [string, (o: KubernetesObject[]) => void][] = [
    ["PROBES", (o) => { container(o).readinessProbe.httpGet.port = 9999; }],
    ["PROBES", (o) => { delete container(o).livenessProbe; }],
    ["PROBES", (o) => { delete (o.find((x) => x.kind === "Deployment" && x.metadata.name === "tenant-worker") as any).spec.template.spec.containers[0].readinessProbe; }],
    ["IMAGE_PINNED", (o) => { container(o).image = "ghcr.io/acme/tenant-service:1.0"; }],
    ["IMAGE_DIGEST_RESOLVED", (o) => { container(o).image = `ghcr.io/acme/tenant-service:1.0@${UNRESOLVED_DIGEST}`; }],
    ["IMAGE_ADMITTED", (o) => { container(o).image = `ghcr.io/acme/tenant-service:1.0@sha256:${"a".repeat(64)}`; }],
    ["SERVICE_ACCOUNT_TOKEN", (o) => { delete deployment(o).spec.template.spec.automountServiceAccountToken; }],
    ["AVAILABILITY", (o) => { delete deployment(o).spec.template.spec.topologySpreadConstraints; }],
    ["AVAILABILITY", (o) => { statefulSet(o, "alertmanager").spec.replicas = 1; }],
    ["DISRUPTION_BUDGET", (o) => { (o.find((x) => x.kind === "PodDisruptionBudget") as any).spec.maxUnavailable = 0; }],
    ["DISRUPTION_BUDGET", (o) => { delete (o.find((x) => x.kind === "PodDisruptionBudget") as any).spec.unhealthyPodEvictionPolicy; }],
    ["DEFAULT_DENY", (o) => { o.splice(o.findIndex((x) => x.kind === "NetworkPolicy" && x.metadata.name === "default-deny" && x.metadata.namespace === "tenants"), 1); }],
    ["SERVICE_TARGET_PORTS", (o) => { (o.find((x) => x.kind === "Service" && x.metadata.name === "tenant-service") as any).spec.ports[0].targetPort = "nowhere"; }],
  ];

  it.each(breaks)("%s fails on a manifest that breaks it, naming kind/namespace/name", (id, change) => {
    const objects = base();
    change(objects);
    expect(checkManifests(base(), contextOf("dev")).filter((v) => v.rule === id)).toEqual([]);
    const violations = checkManifests(objects, contextOf("dev")).filter((v) => v.rule === id);
    expect(violations.length).toBeGreaterThan(0);
    expect(violations[0]!.object).toMatch(/^[A-Za-z]+\/[a-z0-9-]+\/[a-z0-9-]+$/);
  });

  it("does not ask init containers or Jobs for probes: they run to completion", () => {
    const objects = base();
    expect(objects.some((o) => o.kind === "Job")).toBe(true);
    const pod = deployment(objects).spec.template.spec;
    pod.initContainers = [{ ...structuredClone(pod.containers[0]), name: "setup", readinessProbe: undefined, livenessProbe: undefined, startupProbe: undefined }];
    expect(checkManifests(objects, contextOf("dev")).filter((v) => v.rule === "PROBES")).toEqual([]);
  });

  it("every rule has a failing example", () => {
    expect(MANIFEST_RULES.map((r) => r.id).filter((id) => !breaks.some(([b]) => b === id))).toEqual([]);
  });

  it("an exemption needs its reason written on the object", () => {
    const objects = base();
    deployment(objects).spec.template.spec.automountServiceAccountToken = true;
    deployment(objects).metadata.annotations = { "policy.platform.io/exempt.SERVICE_ACCOUNT_TOKEN": "" };
    expect(checkManifests(objects, contextOf("dev")).filter((v) => v.rule === "SERVICE_ACCOUNT_TOKEN").length).toBe(1);
    deployment(objects).metadata.annotations = { "policy.platform.io/exempt.SERVICE_ACCOUNT_TOKEN": "watches its own ConfigMaps through the API (upstream #123)" };
    expect(checkManifests(objects, contextOf("dev")).filter((v) => v.rule === "SERVICE_ACCOUNT_TOKEN")).toEqual([]);
  });
});
