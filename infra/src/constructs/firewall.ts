import { Construct } from "constructs";
import { ComputeFirewall } from "../google.js";

/** Google's IAP TCP-forwarding range: the only source SSH is ever accepted from. */
export const IAP_TCP_FORWARDING_RANGE = "35.235.240.0/20";

/** Where Google's health checkers (of the coordinator's internal load balancer) connect from. */
export const GOOGLE_HEALTH_CHECK_RANGES = ["35.191.0.0/16", "130.211.0.0/22"] as const;

export interface PlatformFirewallProps {
  readonly projectId: string;
  readonly network: string;
  readonly namePrefix: string;
  readonly postgresPort: number;
  /** Ranges that may reach PostgreSQL: GKE nodes, pods, the database subnet (node-to-node and replication). */
  readonly postgresSources: readonly string[];
  /** The exporters on the database VMs, and who may scrape them (the pod range, where Prometheus runs). */
  readonly metrics: { readonly sources: readonly string[]; readonly ports: readonly number[] };
  readonly controlPlaneCidr: string;
  /**
   * Patroni and its DCS: Patroni's REST API on the Citus VMs from the other members and Google's health checkers
   * (Prometheus reaches it through `metrics`); etcd's client port from the Citus VMs only, its peer port between the
   * etcd members only.
   */
  readonly patroni: {
    readonly restApiPort: number;
    readonly etcdClientPort: number;
    readonly etcdPeerPort: number;
  };
  readonly tags: { readonly citus: string; readonly gkeNodes: string; readonly etcd: string };
}

/**
 * Ingress opens only what the platform uses; everything else hits a logged deny. GKE adds its own rules for the
 * control plane and pod traffic at priority 1000, ahead of the deny. Memorystore is not in this VPC (it sits behind
 * Private Service Access) and is guarded by AUTH and TLS, not by these rules.
 */
export class PlatformFirewall extends Construct {
  constructor(scope: Construct, id: string, props: PlatformFirewallProps) {
    super(scope, id);
    const common = { project: props.projectId, network: props.network, logConfig: { metadata: "INCLUDE_ALL_METADATA" } };
    new ComputeFirewall(this, "IapSsh", {
      ...common,
      name: `${props.namePrefix}-allow-iap-ssh`,
      description: "SSH to database and etcd VMs through IAP TCP forwarding only (gcloud compute ssh --tunnel-through-iap)",
      direction: "INGRESS",
      priority: 1000,
      sourceRanges: [IAP_TCP_FORWARDING_RANGE],
      targetTags: [props.tags.citus, props.tags.etcd],
      allow: [{ protocol: "tcp", ports: ["22"] }],
    });
    new ComputeFirewall(this, "Postgres", {
      ...common,
      name: `${props.namePrefix}-allow-postgres`,
      description: "PostgreSQL/Citus from GKE nodes and pods and between database nodes",
      direction: "INGRESS",
      priority: 1000,
      sourceRanges: [...props.postgresSources],
      targetTags: [props.tags.citus],
      allow: [{ protocol: "tcp", ports: [String(props.postgresPort)] }],
    });
    new ComputeFirewall(this, "Metrics", {
      ...common,
      name: `${props.namePrefix}-allow-db-metrics`,
      description: "postgres_exporter and node_exporter on the database VMs, scraped by Prometheus from the pod range",
      direction: "INGRESS",
      priority: 1000,
      sourceRanges: [...props.metrics.sources],
      targetTags: [props.tags.citus],
      allow: [{ protocol: "tcp", ports: props.metrics.ports.map(String) }],
    });
    new ComputeFirewall(this, "PatroniRestApi", {
      ...common,
      name: `${props.namePrefix}-allow-patroni-api`,
      description: "Patroni's REST API between the Citus VMs: members of a group, and the Citus calls between groups",
      direction: "INGRESS",
      priority: 1000,
      sourceTags: [props.tags.citus],
      targetTags: [props.tags.citus],
      allow: [{ protocol: "tcp", ports: [String(props.patroni.restApiPort)] }],
    });
    new ComputeFirewall(this, "PatroniHealthChecks", {
      ...common,
      name: `${props.namePrefix}-allow-patroni-health-checks`,
      description: "Google's health checkers to Patroni's REST API only (the coordinator load balancer's check of /primary)",
      direction: "INGRESS",
      priority: 1000,
      sourceRanges: [...GOOGLE_HEALTH_CHECK_RANGES],
      targetTags: [props.tags.citus],
      allow: [{ protocol: "tcp", ports: [String(props.patroni.restApiPort)] }],
    });
    new ComputeFirewall(this, "EtcdClients", {
      ...common,
      name: `${props.namePrefix}-allow-etcd-clients`,
      description: "etcd's client port, from the Citus VMs (Patroni) only",
      direction: "INGRESS",
      priority: 1000,
      sourceTags: [props.tags.citus],
      targetTags: [props.tags.etcd],
      allow: [{ protocol: "tcp", ports: [String(props.patroni.etcdClientPort)] }],
    });
    new ComputeFirewall(this, "EtcdPeers", {
      ...common,
      name: `${props.namePrefix}-allow-etcd-peers`,
      description: "etcd's peer port, between the etcd members only (and their own client port, for the health checks etcdctl runs there)",
      direction: "INGRESS",
      priority: 1000,
      sourceTags: [props.tags.etcd],
      targetTags: [props.tags.etcd],
      allow: [{ protocol: "tcp", ports: [String(props.patroni.etcdPeerPort), String(props.patroni.etcdClientPort)] }],
    });
    new ComputeFirewall(this, "ControlPlaneWebhooks", {
      ...common,
      name: `${props.namePrefix}-allow-control-plane-webhooks`,
      description: "Admission webhooks (cert-manager, Kong, Prometheus operator) from the private control plane",
      direction: "INGRESS",
      priority: 1000,
      sourceRanges: [props.controlPlaneCidr],
      targetTags: [props.tags.gkeNodes],
      allow: [{ protocol: "tcp", ports: ["8443", "9443", "15017"] }],
    });
    new ComputeFirewall(this, "DenyAll", {
      ...common,
      name: `${props.namePrefix}-deny-all-ingress`,
      description: "Everything not allowed above is dropped and logged",
      direction: "INGRESS",
      priority: 65534,
      sourceRanges: ["0.0.0.0/0"],
      deny: [{ protocol: "all" }],
    });
  }
}
