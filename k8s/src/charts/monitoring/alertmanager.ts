import { Construct } from "constructs";
import { imageRef } from "@platform/config";
import { ALERTMANAGER, ALERT_HEARTBEAT_FILE, ALERT_RECEIVER_FILE, alertmanagerPeers } from "@platform/monitoring";
import { KubeConfigMap, KubeServiceAccount } from "../../k8s.js";
import { HardenedStatefulSet } from "../../constructs/hardened-statefulset.js";
import { WorkloadNetworkPolicy, addresses, localPods, tcp, udp } from "../../constructs/network-policy.js";
import { SECRETS_DIR, SecretManagerFiles } from "../../constructs/secret-manager-files.js";
import { PRIORITY_CLASSES, WORKLOADS, type ChartContext } from "../../topology.js";
import { NETWORK_POLICY_EXCEPTION } from "../../policy/exceptions.js";

export interface AlertmanagerProps {
  /** alertmanager.yml, rendered by @platform/monitoring. */
  readonly files: Readonly<Record<string, string>>;
}

/**
 * Alertmanager: two replicas that gossip, so a notification is neither lost nor sent twice; the receiver's URL and
 * the heartbeat's from Secret Manager; out only to HTTPS on the internet (PagerDuty, Slack), never the private ranges.
 */
export class Alertmanager extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext, props: AlertmanagerProps) {
    super(scope, id);
    const { config, names, peers } = ctx;
    const { namespace, serviceAccount } = config.kubernetes.alertmanager;
    for (const file of [ALERT_RECEIVER_FILE, ALERT_HEARTBEAT_FILE]) {
      if (!file.startsWith(`${SECRETS_DIR}/`)) throw new Error(`${file} must live in ${SECRETS_DIR}`);
    }
    const secrets = new SecretManagerFiles(this, "Secrets", {
      namespace,
      name: "alertmanager-secrets",
      projectId: config.gcp.projectId,
      files: {
        [names.secrets.alertReceiver]: ALERT_RECEIVER_FILE.slice(SECRETS_DIR.length + 1),
        [names.secrets.alertHeartbeat]: ALERT_HEARTBEAT_FILE.slice(SECRETS_DIR.length + 1),
      },
    });
    new KubeConfigMap(this, "Config", { metadata: { name: "alertmanager-config", namespace }, data: { "alertmanager.yml": props.files["alertmanager.yml"]! } });
    new KubeServiceAccount(this, "Account", {
      metadata: { name: serviceAccount, namespace, annotations: { "iam.gke.io/gcp-service-account": names.serviceAccounts.alertmanager.email } },
      automountServiceAccountToken: false,
    });
    const server = new HardenedStatefulSet(this, "Server", {
      exceptions: NETWORK_POLICY_EXCEPTION,
      namespace,
      ...WORKLOADS.alertmanager,
      replicas: ALERTMANAGER.replicas,
      priorityClassName: PRIORITY_CLASSES.api.name,
      serviceAccount: { name: serviceAccount },
      storage: { mountPath: "/alertmanager", sizeGi: 1 },
      service: { port: ALERTMANAGER.port, targetPortName: "http" },
      extraVolumes: [secrets.volume, { name: "config", configMap: { name: "alertmanager-config" } }],
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
          { volume: secrets.volume.name, mountPath: SECRETS_DIR },
          { volume: "config", mountPath: "/etc/alertmanager" },
        ],
      },
    });
    this.selector = server.selector;
    const gossip = [tcp(ALERTMANAGER.clusterPort), udp(ALERTMANAGER.clusterPort)];
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: WORKLOADS.alertmanager.name,
      selector: this.selector,
      ingress: [
        { peers: [localPods(peers.prometheus.selector)], ports: [tcp(ALERTMANAGER.port)] },
        { peers: [localPods(this.selector)], ports: gossip },
      ],
      egress: [
        { peers: [localPods(this.selector)], ports: gossip },
        // PagerDuty or Slack: HTTPS to the internet (through Cloud NAT), never to the private ranges.
        { peers: [addresses("0.0.0.0/0", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])], ports: [tcp(443)] },
      ],
    });
  }
}
