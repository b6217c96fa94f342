import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { stringify } from "yaml";
import { imageRef, platformNames, type EnvironmentConfig } from "@platform/config";
import {
  ALERTMANAGER,
  ALERT_HEARTBEAT_FILE,
  ALERT_RECEIVER_FILE,
  NODE_EXPORTER_PORT,
  POSTGRES_EXPORTER_PORT,
  PROMETHEUS_DATASOURCE,
  PROMETHEUS_PORT,
  REDIS_EXPORTER_PORT,
  RULES_DIR,
  alertmanagerPeers,
  renderMonitoring,
} from "@platform/monitoring";
import { IntOrString, Quantity, KubeClusterRole, KubeClusterRoleBinding, KubeConfigMap, KubeNetworkPolicy, KubeService, KubeServiceAccount, type NetworkPolicyPeer } from "../k8s.js";
import { HardenedDeployment } from "../constructs/hardened-deployment.js";
import { HardenedStatefulSet } from "../constructs/hardened-statefulset.js";
import { NamespaceBaseline } from "../constructs/platform-namespace.js";
import { MEMORYSTORE_FILES, SECRETS_DIR, SecretManagerFiles } from "../constructs/secret-manager-files.js";
import { PORTS, PRIORITY_CLASSES, peers } from "../topology.js";

const GRAFANA_PORT = PORTS.grafana;
const JAEGER = { otlpHttp: PORTS.jaegerOtlpHttp, query: PORTS.jaegerQuery, admin: PORTS.jaegerAdmin };

const tcp = (port: number) => ({ protocol: "TCP", port: IntOrString.fromNumber(port) });
const udp = (port: number) => ({ protocol: "UDP", port: IntOrString.fromNumber(port) });
const inNamespace = (namespace: string, labels?: Record<string, string>): NetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
  ...(labels ? { podSelector: { matchLabels: labels } } : {}),
});

/**
 * Prometheus (two replicas, persistent storage, the rules and scrape configuration from monitoring/), Grafana
 * (provisioned datasources and the dashboards from monitoring/), and Jaeger collecting OTLP. Sizes and retention
 * come from the environment config.
 */
export class MonitoringChart extends Chart {
  constructor(scope: Construct, id: string, config: EnvironmentConfig) {
    super(scope, id, { disableResourceNameHashes: true });
    const names = platformNames(config);
    const k = config.kubernetes;
    const m = config.monitoring;
    const namespace = peers(config).prometheus.namespace;
    new NamespaceBaseline(this, "Baseline", { namespace, quota: { cpu: "16", memory: "32Gi", pods: 20 } });
    const files = renderMonitoring(config).files;

    // ---- Prometheus
    new KubeConfigMap(this, "PrometheusConfig", { metadata: { name: "prometheus-config", namespace }, data: { "prometheus.yml": files["prometheus.yml"]! } });
    new KubeConfigMap(this, "PrometheusRules", { metadata: { name: "prometheus-rules", namespace }, data: { "platform.rules.yml": files["platform.rules.yml"]! } });
    new KubeServiceAccount(this, "PrometheusAccount", { metadata: { name: "prometheus", namespace }, automountServiceAccountToken: true });
    new KubeClusterRole(this, "PrometheusRole", {
      metadata: { name: "platform-prometheus" },
      rules: [{ apiGroups: [""], resources: ["pods", "services", "endpoints"], verbs: ["get", "list", "watch"] }],
    });
    new KubeClusterRoleBinding(this, "PrometheusBinding", {
      metadata: { name: "platform-prometheus" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "platform-prometheus" },
      subjects: [{ kind: "ServiceAccount", name: "prometheus", namespace }],
    });
    const prometheus = new HardenedStatefulSet(this, "Prometheus", {
      namespace,
      name: "prometheus",
      partOf: "monitoring",
      component: "server",
      replicas: m.prometheusReplicas,
      singleReplicaReason: m.prometheusReplicas < 2 ? "set to one replica in the environment config (monitoring.prometheusReplicas)" : undefined,
      priorityClassName: PRIORITY_CLASSES.api.name,
      serviceAccount: { name: "prometheus", automountToken: true, apiAccessReason: "Kubernetes service discovery lists pods (read-only ClusterRole platform-prometheus)" },
      storage: { mountPath: "/prometheus", sizeGi: m.prometheusStorageGi },
      service: { port: PROMETHEUS_PORT, targetPortName: "http" },
      extraVolumes: [
        { name: "config", configMap: { name: "prometheus-config" } },
        { name: "rules", configMap: { name: "prometheus-rules" } },
      ],
      container: {
        name: "prometheus",
        image: imageRef("prometheus"),
        args: [
          "--config.file=/etc/prometheus/prometheus.yml",
          "--storage.tsdb.path=/prometheus",
          `--storage.tsdb.retention.time=${m.prometheusRetentionDays}d`,
          `--storage.tsdb.retention.size=${Math.floor(m.prometheusStorageGi * 0.85)}GB`,
        ],
        ports: [{ name: "http", containerPort: PROMETHEUS_PORT }],
        resources: { cpuRequest: "500m", cpuLimit: "2", memoryRequest: "2Gi", memoryLimit: "4Gi", ephemeralStorage: "256Mi" },
        readiness: { path: "/-/ready", port: PROMETHEUS_PORT },
        liveness: { path: "/-/healthy", port: PROMETHEUS_PORT },
        startup: { path: "/-/ready", port: PROMETHEUS_PORT, maxStartupSeconds: 600 },
        writableDirs: ["/tmp"],
        readOnlyMounts: [
          { volume: "config", mountPath: "/etc/prometheus" },
          { volume: "rules", mountPath: RULES_DIR },
        ],
      },
    });

    // ---- Grafana
    const secrets = new SecretManagerFiles(this, "GrafanaSecrets", {
      namespace,
      name: "grafana-secrets",
      projectId: config.gcp.projectId,
      files: { [names.secrets.grafanaAdminPassword]: "admin-password" },
    });
    const dashboards = Object.fromEntries(Object.entries(files).filter(([name]) => name.startsWith("dashboard-")));
    new KubeConfigMap(this, "GrafanaDashboards", { metadata: { name: "grafana-dashboards", namespace }, data: dashboards });
    new KubeConfigMap(this, "GrafanaProvisioning", {
      metadata: { name: "grafana-provisioning", namespace },
      data: {
        "datasources.yaml": stringify({
          apiVersion: 1,
          datasources: [
            { name: "Prometheus", type: "prometheus", uid: PROMETHEUS_DATASOURCE.uid, url: `http://prometheus.${namespace}.svc.cluster.local:${PROMETHEUS_PORT}`, access: "proxy", isDefault: true, editable: false },
            { name: "Jaeger", type: "jaeger", uid: "jaeger", url: `http://jaeger-query.${namespace}.svc.cluster.local:${JAEGER.query}`, access: "proxy", editable: false },
          ],
        }),
        "dashboards.yaml": stringify({
          apiVersion: 1,
          providers: [{ name: "platform", folder: "Platform", type: "file", disableDeletion: true, allowUiUpdates: false, options: { path: "/var/lib/grafana-dashboards" } }],
        }),
      },
    });
    const grafana = new HardenedDeployment(this, "Grafana", {
      namespace,
      name: "grafana",
      partOf: "monitoring",
      component: "ui",
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: k.workloads.grafana.minReplicas, max: k.workloads.grafana.maxReplicas },
      serviceAccount: { name: k.grafana.serviceAccount, googleServiceAccount: names.serviceAccounts.grafana.email },
      service: { port: GRAFANA_PORT, targetPortName: "http" },
      extraVolumes: [secrets.volume, { name: "provisioning", configMap: { name: "grafana-provisioning" } }, { name: "dashboards", configMap: { name: "grafana-dashboards" } }],
      container: {
        name: "grafana",
        image: imageRef("grafana"),
        ports: [{ name: "http", containerPort: GRAFANA_PORT }],
        resources: k.workloads.grafana,
        readiness: { path: "/api/health", port: GRAFANA_PORT },
        liveness: { path: "/healthz", port: GRAFANA_PORT },
        writableDirs: ["/var/lib/grafana", "/tmp"],
        readOnlyMounts: [
          { volume: secrets.volume.name, mountPath: SECRETS_DIR },
          { volume: "provisioning", mountPath: "/etc/grafana/provisioning/datasources-and-dashboards" },
          { volume: "dashboards", mountPath: "/var/lib/grafana-dashboards" },
        ],
        env: {
          GF_PATHS_PROVISIONING: "/etc/grafana/provisioning/datasources-and-dashboards",
          GF_PATHS_DATA: "/var/lib/grafana",
          GF_SECURITY_ADMIN_PASSWORD__FILE: `${SECRETS_DIR}/admin-password`,
          GF_AUTH_ANONYMOUS_ENABLED: "false",
          GF_ANALYTICS_REPORTING_ENABLED: "false",
          GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
          GF_SERVER_ROOT_URL: `https://grafana.${k.apiBaseDomain}/`,
        },
      },
    });

    // ---- Jaeger
    const jaeger = new HardenedStatefulSet(this, "Jaeger", {
      namespace,
      name: "jaeger",
      partOf: "monitoring",
      component: "tracing",
      replicas: 1,
      singleReplicaReason: "badger storage has one writer; traces are sampled diagnostics, and a restart loses only in-flight spans",
      priorityClassName: PRIORITY_CLASSES.batch.name,
      serviceAccount: { name: "jaeger" },
      storage: { mountPath: "/badger", sizeGi: m.jaegerStorageGi },
      service: { port: JAEGER.query, targetPortName: "query" },
      metrics: { port: JAEGER.admin, path: "/metrics" },
      container: {
        name: "jaeger",
        image: imageRef("jaeger"),
        ports: [
          { name: "query", containerPort: JAEGER.query },
          { name: "otlp-http", containerPort: JAEGER.otlpHttp },
          { name: "admin", containerPort: JAEGER.admin },
        ],
        resources: { cpuRequest: "250m", cpuLimit: "1", memoryRequest: "512Mi", memoryLimit: "1Gi", ephemeralStorage: "256Mi" },
        readiness: { path: "/", port: JAEGER.admin },
        liveness: { path: "/metrics", port: JAEGER.admin },
        writableDirs: ["/tmp"],
        env: {
          SPAN_STORAGE_TYPE: "badger",
          BADGER_EPHEMERAL: "false",
          BADGER_DIRECTORY_KEY: "/badger/key",
          BADGER_DIRECTORY_VALUE: "/badger/data",
          BADGER_SPAN_STORE_TTL: `${m.jaegerRetentionHours}h`,
          COLLECTOR_OTLP_ENABLED: "true",
        },
      },
    });
    new KubeServiceAccount(this, "JaegerAccount", { metadata: { name: "jaeger", namespace }, automountServiceAccountToken: false });
    for (const [name, port, target] of [["jaeger-collector", JAEGER.otlpHttp, "otlp-http"], ["jaeger-query", JAEGER.query, "query"]] as const) {
      new KubeService(this, name, {
        metadata: { name, namespace, labels: { "app.kubernetes.io/name": "jaeger", "app.kubernetes.io/part-of": "monitoring" } },
        spec: { type: "ClusterIP", selector: jaeger.selector, ports: [{ name: "http", port, targetPort: IntOrString.fromString(target), protocol: "TCP" }] },
      });
    }

    // ---- Alertmanager: two replicas that gossip, so a notification is neither lost nor sent twice.
    for (const file of [ALERT_RECEIVER_FILE, ALERT_HEARTBEAT_FILE]) {
      if (!file.startsWith(`${SECRETS_DIR}/`)) throw new Error(`${file} must live in ${SECRETS_DIR}`);
    }
    const alertSecrets = new SecretManagerFiles(this, "AlertmanagerSecrets", {
      namespace,
      name: "alertmanager-secrets",
      projectId: config.gcp.projectId,
      files: {
        [names.secrets.alertReceiver]: ALERT_RECEIVER_FILE.slice(SECRETS_DIR.length + 1),
        [names.secrets.alertHeartbeat]: ALERT_HEARTBEAT_FILE.slice(SECRETS_DIR.length + 1),
      },
    });
    new KubeConfigMap(this, "AlertmanagerConfig", { metadata: { name: "alertmanager-config", namespace }, data: { "alertmanager.yml": files["alertmanager.yml"]! } });
    new KubeServiceAccount(this, "AlertmanagerAccount", {
      metadata: { name: k.alertmanager.serviceAccount, namespace, annotations: { "iam.gke.io/gcp-service-account": names.serviceAccounts.alertmanager.email } },
      automountServiceAccountToken: false,
    });
    const alertmanager = new HardenedStatefulSet(this, "Alertmanager", {
      namespace,
      name: ALERTMANAGER.name,
      partOf: "monitoring",
      component: "alerting",
      replicas: ALERTMANAGER.replicas,
      priorityClassName: PRIORITY_CLASSES.api.name,
      serviceAccount: { name: k.alertmanager.serviceAccount },
      storage: { mountPath: "/alertmanager", sizeGi: 1 },
      service: { port: ALERTMANAGER.port, targetPortName: "http" },
      extraVolumes: [alertSecrets.volume, { name: "config", configMap: { name: "alertmanager-config" } }],
      container: {
        name: "alertmanager",
        image: imageRef("alertmanager"),
        args: [
          "--config.file=/etc/alertmanager/alertmanager.yml",
          "--storage.path=/alertmanager",
          `--web.listen-address=:${ALERTMANAGER.port}`,
          `--cluster.listen-address=0.0.0.0:${ALERTMANAGER.clusterPort}`,
          ...alertmanagerPeers(config, ALERTMANAGER.clusterPort).map((peer) => `--cluster.peer=${peer}`),
        ],
        ports: [
          { name: "http", containerPort: ALERTMANAGER.port },
          { name: "cluster", containerPort: ALERTMANAGER.clusterPort },
        ],
        resources: { cpuRequest: "50m", cpuLimit: "500m", memoryRequest: "64Mi", memoryLimit: "256Mi", ephemeralStorage: "64Mi" },
        readiness: { path: "/-/ready", port: ALERTMANAGER.port },
        liveness: { path: "/-/healthy", port: ALERTMANAGER.port },
        writableDirs: ["/tmp"],
        readOnlyMounts: [
          { volume: alertSecrets.volume.name, mountPath: SECRETS_DIR },
          { volume: "config", mountPath: "/etc/alertmanager" },
        ],
      },
    });

    // ---- redis_exporter for Memorystore. It takes the password only as a JSON map from address to password, so an
    // init container (the tenant-service image: node, no shell) writes that map from the Secret Manager file into
    // memory-backed storage the exporter reads.
    const redisAddress = `rediss://${names.redis.host}:${names.redis.port}`;
    const redisSecrets = new SecretManagerFiles(this, "RedisExporterSecrets", {
      namespace,
      name: "redis-exporter-secrets",
      projectId: config.gcp.projectId,
      files: { [names.secrets.redisAuth]: MEMORYSTORE_FILES.auth, [names.secrets.redisCa]: MEMORYSTORE_FILES.ca },
    });
    const render = `const fs = require("node:fs");
fs.writeFileSync("/rendered/password.json", JSON.stringify({ [process.env.REDIS_ADDR]: fs.readFileSync("${SECRETS_DIR}/${MEMORYSTORE_FILES.auth}", "utf8").trim() }), { mode: 0o600 });`;
    const redisExporter = new HardenedDeployment(this, "RedisExporter", {
      namespace,
      name: "redis-exporter",
      partOf: "monitoring",
      component: "exporter",
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: 2, max: 2 },
      serviceAccount: { name: k.redisExporter.serviceAccount, googleServiceAccount: names.serviceAccounts.redisExporter.email },
      service: { port: REDIS_EXPORTER_PORT, targetPortName: "metrics" },
      extraVolumes: [redisSecrets.volume, { name: "rendered", emptyDir: { medium: "Memory", sizeLimit: Quantity.fromString("1Mi") } }],
      initContainers: [
        {
          name: "password-file",
          image: k.images.tenantService,
          command: ["/nodejs/bin/node", "-e", render],
          env: { REDIS_ADDR: redisAddress },
          resources: { cpuRequest: "50m", cpuLimit: "200m", memoryRequest: "64Mi", memoryLimit: "128Mi", ephemeralStorage: "16Mi" },
          persistentMounts: [{ volume: "rendered", mountPath: "/rendered" }],
          readOnlyMounts: [{ volume: redisSecrets.volume.name, mountPath: SECRETS_DIR }],
        },
      ],
      container: {
        name: "redis-exporter",
        image: imageRef("redisExporter"),
        args: [
          `--redis.addr=${redisAddress}`,
          "--redis.password-file=/rendered/password.json",
          `--tls-ca-cert-file=${SECRETS_DIR}/${MEMORYSTORE_FILES.ca}`,
          `--web.listen-address=:${REDIS_EXPORTER_PORT}`,
        ],
        ports: [{ name: "metrics", containerPort: REDIS_EXPORTER_PORT }],
        resources: { cpuRequest: "50m", cpuLimit: "200m", memoryRequest: "32Mi", memoryLimit: "128Mi", ephemeralStorage: "16Mi" },
        readiness: { path: "/health", port: REDIS_EXPORTER_PORT },
        liveness: { path: "/", port: REDIS_EXPORTER_PORT },
        readOnlyMounts: [
          { volume: redisSecrets.volume.name, mountPath: SECRETS_DIR },
          { volume: "rendered", mountPath: "/rendered" },
        ],
      },
    });

    // ---- network policies
    const scrapeTargets = [
      { namespace: k.tenantService.namespace, ports: [PORTS.tenantService, PORTS.tenantWorkerHealth] },
      { namespace: k.gateway.namespace, ports: [PORTS.kongStatus] },
      { namespace: k.hydra.namespace, ports: [PORTS.hydraAdmin] },
    ];
    new KubeNetworkPolicy(this, "PrometheusPolicy", {
      metadata: { name: "prometheus", namespace },
      spec: {
        podSelector: { matchLabels: prometheus.selector },
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ podSelector: { matchLabels: grafana.selector } }], ports: [tcp(PROMETHEUS_PORT)] }],
        egress: [
          ...scrapeTargets.map((t) => ({ to: [inNamespace(t.namespace)], ports: t.ports.map(tcp) })),
          { to: [{ podSelector: { matchLabels: jaeger.selector } }], ports: [tcp(JAEGER.admin)] },
          { to: [{ podSelector: { matchLabels: alertmanager.selector } }], ports: [tcp(ALERTMANAGER.port)] },
          { to: [{ podSelector: { matchLabels: redisExporter.selector } }], ports: [tcp(REDIS_EXPORTER_PORT)] },
          // The Citus VMs' exporters.
          { to: [{ ipBlock: { cidr: config.network.dataCidr } }], ports: [tcp(POSTGRES_EXPORTER_PORT), tcp(NODE_EXPORTER_PORT)] },
          // Pod discovery: the Kubernetes API on the private control plane.
          { to: [{ ipBlock: { cidr: config.network.controlPlaneCidr } }], ports: [tcp(443)] },
        ],
      },
    });
    new KubeNetworkPolicy(this, "GrafanaPolicy", {
      metadata: { name: "grafana", namespace },
      spec: {
        podSelector: { matchLabels: grafana.selector },
        // No ingress rule: operators reach Grafana with kubectl port-forward, which NetworkPolicy does not govern.
        policyTypes: ["Ingress", "Egress"],
        egress: [
          { to: [{ podSelector: { matchLabels: prometheus.selector } }], ports: [tcp(PROMETHEUS_PORT)] },
          { to: [{ podSelector: { matchLabels: jaeger.selector } }], ports: [tcp(JAEGER.query)] },
        ],
      },
    });
    new KubeNetworkPolicy(this, "AlertmanagerPolicy", {
      metadata: { name: "alertmanager", namespace },
      spec: {
        podSelector: { matchLabels: alertmanager.selector },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          { from: [{ podSelector: { matchLabels: prometheus.selector } }], ports: [tcp(ALERTMANAGER.port)] },
          { from: [{ podSelector: { matchLabels: alertmanager.selector } }], ports: [tcp(ALERTMANAGER.clusterPort), udp(ALERTMANAGER.clusterPort)] },
        ],
        egress: [
          { to: [{ podSelector: { matchLabels: alertmanager.selector } }], ports: [tcp(ALERTMANAGER.clusterPort), udp(ALERTMANAGER.clusterPort)] },
          // PagerDuty or Slack: HTTPS to the internet (through Cloud NAT), never to the private ranges.
          { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] } }], ports: [tcp(443)] },
        ],
      },
    });
    new KubeNetworkPolicy(this, "RedisExporterPolicy", {
      metadata: { name: "redis-exporter", namespace },
      spec: {
        podSelector: { matchLabels: redisExporter.selector },
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ podSelector: { matchLabels: prometheus.selector } }], ports: [tcp(REDIS_EXPORTER_PORT)] }],
        egress: [{ to: [{ ipBlock: { cidr: config.network.privateServiceAccessCidr } }], ports: [tcp(names.redis.port)] }],
      },
    });
    new KubeNetworkPolicy(this, "JaegerPolicy", {
      metadata: { name: "jaeger", namespace },
      spec: {
        podSelector: { matchLabels: jaeger.selector },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          { from: [inNamespace(k.tenantService.namespace, { "app.kubernetes.io/name": "tenant-service" })], ports: [tcp(JAEGER.otlpHttp)] },
          { from: [{ podSelector: { matchLabels: grafana.selector } }], ports: [tcp(JAEGER.query)] },
          { from: [{ podSelector: { matchLabels: prometheus.selector } }], ports: [tcp(JAEGER.admin)] },
        ],
      },
    });
  }
}
