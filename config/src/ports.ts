/**
 * Every port one layer serves and another calls, scrapes or opens a firewall for: written once, read by the stacks
 * (firewall rules, the Citus bootstrap), the charts (containers, Services, NetworkPolicies), the scrape config and
 * the services. A port that only one file ever uses (a container's own admin port nobody calls) may stay there.
 */
export const PORTS = {
  /** PostgreSQL on every Citus node (and the coordinator's load balancer). */
  postgres: 5432,
  /** Memorystore listens here when in-transit encryption is on (always, here). */
  memorystoreTls: 6378,
  /** Patroni's REST API on every Citus VM: health checks (/primary), patronictl, and its /metrics. */
  patroniRestApi: 8008,
  /** etcd, Patroni's consensus store: clients (Patroni, etcdctl) and the members' own peer traffic. */
  etcdClient: 2379,
  etcdPeer: 2380,
  /** Exporters on the Citus VMs. */
  postgresExporter: 9187,
  nodeExporter: 9100,
  /** redis_exporter, in the monitoring namespace, pointed at Memorystore. */
  redisExporter: 9121,
  tenantService: 8080,
  tenantWorkerHealth: 9090,
  kongProxy: 8000,
  kongProxyTls: 8443,
  kongStatus: 8100,
  hydraPublic: 4444,
  hydraAdmin: 4445,
  prometheus: 9090,
  alertmanager: 9093,
  alertmanagerCluster: 9094,
  grafana: 3000,
  /** OTLP over HTTP: where the traced workloads send spans (the OpenTelemetry Collector, or Jaeger where it is the store). */
  otlpHttp: 4318,
  jaegerQuery: 16686,
  jaegerAdmin: 14269,
} as const;
