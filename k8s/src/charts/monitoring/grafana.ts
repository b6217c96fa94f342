import { Construct } from "constructs";
import { stringify } from "yaml";
import { imageRef } from "@platform/config";
import { PROMETHEUS_DATASOURCE, PROMETHEUS_PORT } from "@platform/monitoring";
import { KubeConfigMap } from "../../k8s.js";
import { HardenedDeployment } from "../../constructs/hardened-deployment.js";
import { WorkloadNetworkPolicy, localPods, tcp } from "../../constructs/network-policy.js";
import { SECRETS_DIR, SecretManagerFiles } from "../../constructs/secret-manager-files.js";
import { JAEGER_SERVICES, PORTS, PRIORITY_CLASSES, WORKLOADS, serviceUrl, type ChartContext } from "../../topology.js";
import { NETWORK_POLICY_EXCEPTION, mergeExceptions, passwordFileException } from "../../policy/exceptions.js";

export interface GrafanaProps {
  /** The dashboards rendered by @platform/monitoring (files named dashboard-*.json). */
  readonly files: Readonly<Record<string, string>>;
}

/**
 * Grafana: replicas and sizes from `config.kubernetes.workloads.grafana`, the Prometheus and (where it runs) Jaeger datasources and
 * the dashboards provisioned read-only, the admin password from Secret Manager, and no way in but port-forward.
 */
export class Grafana extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext, props: GrafanaProps) {
    super(scope, id);
    const { config, names, peers } = ctx;
    const k = config.kubernetes;
    const { namespace, serviceAccount } = k.grafana;
    const jaeger = config.monitoring.traceBackend === "jaeger";
    const secrets = new SecretManagerFiles(this, "Secrets", {
      namespace,
      name: "grafana-secrets",
      projectId: config.gcp.projectId,
      files: { [names.secrets.grafanaAdminPassword]: "admin-password" },
    });
    const dashboards = Object.fromEntries(Object.entries(props.files).filter(([name]) => name.startsWith("dashboard-")));
    new KubeConfigMap(this, "Dashboards", { metadata: { name: "grafana-dashboards", namespace }, data: dashboards });
    new KubeConfigMap(this, "Provisioning", {
      metadata: { name: "grafana-provisioning", namespace },
      data: {
        "datasources.yaml": stringify({
          apiVersion: 1,
          datasources: [
            { name: "Prometheus", type: "prometheus", uid: PROMETHEUS_DATASOURCE.uid, url: serviceUrl(WORKLOADS.prometheus.name, peers.prometheus.namespace, PROMETHEUS_PORT), access: "proxy", isDefault: true, editable: false },
            // Traces kept in Cloud Trace are read in the Cloud console's Trace Explorer (docs/OBSERVABILITY.md).
            ...(jaeger ? [{ name: "Jaeger", type: "jaeger", uid: "jaeger", url: serviceUrl(JAEGER_SERVICES.query, peers.jaeger.namespace, PORTS.jaegerQuery), access: "proxy", editable: false }] : []),
          ],
        }),
        "dashboards.yaml": stringify({
          apiVersion: 1,
          providers: [{ name: "platform", folder: "Platform", type: "file", disableDeletion: true, allowUiUpdates: false, options: { path: "/var/lib/grafana-dashboards" } }],
        }),
      },
    });
    const deployment = new HardenedDeployment(this, "Deployment", {
      exceptions: mergeExceptions(NETWORK_POLICY_EXCEPTION, passwordFileException(["GF_SECURITY_ADMIN_PASSWORD__FILE"], "Grafana")),
      namespace,
      ...WORKLOADS.grafana,
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: k.workloads.grafana.minReplicas, max: k.workloads.grafana.maxReplicas },
      serviceAccount: { name: serviceAccount, googleServiceAccount: names.serviceAccounts.grafana.email },
      service: { port: PORTS.grafana, targetPortName: "http" },
      extraVolumes: [secrets.volume, { name: "provisioning", configMap: { name: "grafana-provisioning" } }, { name: "dashboards", configMap: { name: "grafana-dashboards" } }],
      container: {
        name: "grafana",
        image: imageRef("grafana"),
        ports: [{ name: "http", containerPort: PORTS.grafana }],
        resources: k.workloads.grafana,
        readiness: { path: "/api/health", port: PORTS.grafana },
        liveness: { path: "/healthz", port: PORTS.grafana },
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
    this.selector = deployment.selector;
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: WORKLOADS.grafana.name,
      selector: this.selector,
      // No ingress rule: operators reach Grafana with kubectl port-forward, which NetworkPolicy does not govern.
      egress: [
        { peers: [localPods(peers.prometheus.selector)], ports: [tcp(PROMETHEUS_PORT)] },
        ...(jaeger ? [{ peers: [localPods(peers.jaeger.selector)], ports: [tcp(PORTS.jaegerQuery)] }] : []),
      ],
    });
  }
}
