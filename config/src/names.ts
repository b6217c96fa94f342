import { PORTS } from "./ports.js";
import type { EnvironmentConfig } from "./schema.js";

export interface ServiceAccountName {
  /** account_id: 6-30 characters. */
  readonly accountId: string;
  readonly email: string;
}

export interface CitusNodeName {
  readonly role: "coordinator" | "worker";
  /** Stable index: worker-3 stays worker-3 when workers are added after it. */
  readonly index: number;
  readonly instance: string;
  readonly zone: string;
  /**
   * The name clients use. A worker's is its first member's own name (pg_dist_node lists it while that member leads;
   * Patroni rewrites pg_dist_node to the group's leader). The coordinator's is the internal load balancer's, which
   * sends connections to whichever member leads its group (Patroni's /primary), so no failover edits DNS.
   */
  readonly host: string;
  /** The Citus group, and the Patroni cluster within the formation: 0 the coordinator, worker n is n + 1. */
  readonly group: number;
  /** The first member: its VM and the VM's own DNS name (Patroni's connect address; the coordinator's differs from host). */
  readonly member: { readonly instance: string; readonly zone: string; readonly host: string };
  /** The second member (production): a VM in another zone, Patroni's synchronous standby while the first leads. */
  readonly standby?: { readonly instance: string; readonly zone: string; readonly host: string };
}

/** One etcd member: the DCS Patroni keeps each group's leader lock in (three, one per zone). */
export interface EtcdMemberName {
  /** etcd's --name, and the VM's. */
  readonly instance: string;
  readonly zone: string;
  readonly host: string;
}

/**
 * The database roles, named once. The Citus bootstrap creates them from these names (variables of its startup
 * script), Patroni's configuration and pg_hba.conf name them, the charts connect as them, and the migrations
 * (citus/migrations) grant to them: infra/test/database-roles.test.ts holds the migrations and the bootstrap to this
 * table. The same in every environment.
 */
export const DATABASE_ROLES = {
  /** The superuser: Patroni's and the bootstrap's. Also the OS user they run as (peer authentication maps the two one to one). */
  superuser: "postgres",
  /** Streaming replication between a group's members; from the database subnet only. */
  replication: "replicator",
  /** postgres_exporter's role, a member of pg_monitor only: the OS user Debian's package runs it as (peer authentication). */
  monitoring: "prometheus",
  /** Owns the platform schema: the migrations run as it. Row-level security does not filter it, so it serves no request. */
  migrator: "platform_migrator",
  /** The tenant service and worker: the migrations' grants only, no ownership, no BYPASSRLS. */
  app: "platform_app",
  /** NOLOGIN: owns the job queue's schema; app and migrator are its members. */
  queue: "platform_queue",
  /** Ory Hydra, owner of its own database (hydraDatabase) on the coordinator. */
  hydra: "hydra",
} as const;

export type DatabaseRole = keyof typeof DATABASE_ROLES;

/**
 * Every name that more than one layer needs, derived once from the environment config: the CDKTF stacks create
 * resources with these names and the Kubernetes charts and ops tools refer to them, so a name is written once.
 */
export interface PlatformNames {
  readonly network: string;
  readonly gkeSubnet: string;
  readonly dataSubnet: string;
  readonly podsRange: string;
  readonly servicesRange: string;
  readonly privateServiceAccessRange: string;
  readonly router: string;
  readonly nat: string;
  readonly cluster: string;
  readonly nodePool: string;
  readonly workloadPool: string;
  readonly dnsZone: string;
  readonly dnsDomain: string;
  readonly kmsKeyRing: string;
  readonly kmsKeys: { readonly gkeSecrets: string; readonly disks: string; readonly backups: string; readonly exports: string; readonly redis: string; readonly cloudSql: string };
  readonly backupsBucket: string;
  /** Tenant exports' NDJSON objects (infra/src/constructs/exports-bucket.ts; EXPORT_BUCKET of the service and worker). */
  readonly exportsBucket: string;
  readonly redis: { readonly instance: string; readonly host: string; readonly port: number };
  readonly postgresPort: number;
  /**
   * The database clients connect to, whichever engine (config database.engine): citus, the coordinator's load
   * balancer name; postgres, the Cloud SQL instance's private address under the private zone, a name its server
   * certificate carries, so clients verify it as they verify the coordinator (sslmode=verify-full). cidr: the range
   * its address is in, which the workloads' NetworkPolicies open.
   */
  readonly database: { readonly engine: "citus" | "postgres"; readonly host: string; readonly cidr: string };
  /**
   * Phases 2-3 (config database.citusAlongside): the Citus cluster beside the postgres engine's Cloud SQL, a second
   * database the service and the worker reach as DATABASE_URL_<name> (DATABASE_URL_CITUS) and tenantctl moves tenants
   * into. Its secrets: the Citus cluster's own ids, with "citus" in them, so they never collide with the Cloud SQL
   * instance's (the same roles in another cluster); the secrets the two do not both hold keep their ids. null with
   * one engine.
   */
  readonly citusAlongside: { readonly name: "citus"; readonly host: string; readonly cidr: string; readonly secrets: PlatformNames["secrets"] } | null;
  /** The postgres engine's Cloud SQL instance and its server CA (Certificate Authority Service), which signs a certificate for database.host. */
  readonly cloudSql: { readonly instance: string; readonly host: string; readonly caPool: string; readonly certificateAuthority: string };
  readonly citusDatabase: string;
  /** Hydra's own plain PostgreSQL database on the coordinator: named after its owner, databaseRoles.hydra (the bootstrap and pg_hba.conf rely on it). */
  readonly hydraDatabase: string;
  readonly databaseRoles: typeof DATABASE_ROLES;
  /**
   * Ory Hydra's public host and the issuer of the tokens it signs: Hydra says so (URLS_SELF_ISSUER), the gateway
   * routes the host to it, and the tenant service accepts only tokens from it (AUTH_ISSUER).
   */
  readonly auth: { readonly host: string; readonly issuer: string };
  readonly citus: { readonly coordinator: CitusNodeName; readonly workers: readonly CitusNodeName[] };
  /**
   * Patroni in Citus mode: the scope every group of the formation shares (groups are told apart by citus.group) and
   * the DCS, three etcd members across the zones.
   */
  readonly patroni: { readonly scope: string; readonly etcd: readonly EtcdMemberName[] };
  /** The internal TCP load balancer in front of the coordinator group, health-checked on Patroni's /primary. */
  readonly coordinatorLoadBalancer: {
    readonly address: string;
    readonly healthCheck: string;
    readonly backendService: string;
    readonly forwardingRule: string;
    /** One unmanaged instance group per zone that holds a coordinator member (a backend service takes groups, not VMs). */
    readonly instanceGroup: (zone: string) => string;
  };
  readonly serviceAccounts: {
    readonly gkeNodes: ServiceAccountName;
    readonly citusCoordinator: ServiceAccountName;
    readonly citusWorker: ServiceAccountName;
    /** The etcd VMs: logs and metrics, and the two secrets their bootstrap reads (the CA, etcd's root password). */
    readonly etcd: ServiceAccountName;
    readonly tenantService: ServiceAccountName;
    readonly tenantWorker: ServiceAccountName;
    readonly gateway: ServiceAccountName;
    readonly hydra: ServiceAccountName;
    readonly grafana: ServiceAccountName;
    readonly redisExporter: ServiceAccountName;
    readonly alertmanager: ServiceAccountName;
    /** The OpenTelemetry Collector, which writes spans to Cloud Trace (where monitoring.traceBackend is cloudTrace). */
    readonly otelCollector: ServiceAccountName;
  };
  /** Secret Manager secret ids. Values are created on the nodes or from resource attributes, never synthesized. */
  readonly secrets: {
    readonly dbSuperuser: string;
    readonly dbReplication: string;
    readonly dbMigrator: string;
    readonly dbApp: string;
    readonly redisAuth: string;
    readonly redisCa: string;
    /** The database CA: the coordinator creates it, every node signs its own server certificate with it. */
    readonly dbCaKey: string;
    /** The CA certificate clients verify database hosts against (sslmode=verify-full). */
    readonly dbCaCert: string;
    /** The API's TLS certificate and key for the gateway, added by operators (their CA or ACME). */
    readonly apiTlsCert: string;
    readonly apiTlsKey: string;
    /** Ory Hydra: its database password and system secret, both generated by the coordinator's bootstrap. */
    readonly hydraDbPassword: string;
    readonly hydraSystemSecret: string;
    /** Grafana's admin password, generated by the coordinator's bootstrap like the other platform secrets. */
    readonly grafanaAdminPassword: string;
    /** etcd's root user (the etcd VMs turn authentication on with it) and the user Patroni connects as. */
    readonly etcdRootPassword: string;
    readonly etcdPatroniPassword: string;
    /** Basic auth of Patroni's REST API for its unsafe endpoints (switchover, restart, reinitialize, the Citus calls between groups). */
    readonly patroniRestApiPassword: string;
    /** Where Alertmanager sends alerts: the PagerDuty routing key or the Slack webhook URL (monitoring.alertReceiver), added by operators. */
    readonly alertReceiver: string;
    /** The dead man's switch: the URL of an external heartbeat check (healthchecks.io, Cronitor, Opsgenie), added by operators. */
    readonly alertHeartbeat: string;
  };
  readonly networkTags: { readonly citus: string; readonly gkeNodes: string; readonly etcd: string };
}


/** Whether the environment runs the Citus cluster (its VMs, etcd, pgBackRest, their exporters and alerts): as its engine or beside Cloud SQL. */
export function runsCitusCluster(config: EnvironmentConfig): boolean {
  return config.database.engine === "citus" || config.database.citusAlongside;
}

/** The secrets the Citus cluster creates and its VMs' bootstrap fills (infra/src/constructs/citus-cluster.ts). */
const CITUS_CLUSTER_SECRETS = [
  "dbSuperuser", "dbReplication", "dbMigrator", "dbApp", "dbCaKey", "dbCaCert", "hydraDbPassword", "hydraSystemSecret", "grafanaAdminPassword",
  "etcdRootPassword", "etcdPatroniPassword", "patroniRestApiPassword",
] as const satisfies readonly (keyof PlatformNames["secrets"])[];

export function platformNames(config: EnvironmentConfig): PlatformNames {
  const p = config.prefix;
  const { projectId, zones } = config.gcp;
  const dnsDomain = config.network.privateDnsDomain.replace(/\.$/, "");
  const sa = (suffix: string): ServiceAccountName => {
    const accountId = `${p}-${suffix}`;
    if (accountId.length > 30) throw new Error(`service account id "${accountId}" is longer than 30 characters: shorten prefix "${p}"`);
    return { accountId, email: `${accountId}@${projectId}.iam.gserviceaccount.com` };
  };
  const zoneAt = (i: number): string => zones[i % zones.length]!;
  const node = (role: "coordinator" | "worker", index: number, zoneIndex: number): CitusNodeName => {
    const base = role === "coordinator" ? "coordinator" : `worker-${index}`;
    const member = { instance: `${p}-citus-${base}`, zone: zoneAt(zoneIndex), host: `${role === "coordinator" ? "coordinator-a" : base}.${dnsDomain}` };
    return {
      role,
      index,
      instance: member.instance,
      zone: member.zone,
      host: `${base}.${dnsDomain}`,
      group: role === "coordinator" ? 0 : index + 1,
      member,
      ...(config.citus.standby
        ? { standby: { instance: `${p}-citus-${base}-standby`, zone: zoneAt(zoneIndex + 1), host: `${base}-standby.${dnsDomain}` } }
        : {}),
    };
  };
  const coordinator = node("coordinator", 0, 0);
  const cloudSqlHost = `postgres.${dnsDomain}`;
  const secrets = {
    dbSuperuser: `${p}-db-superuser-password`,
    dbReplication: `${p}-db-replication-password`,
    dbMigrator: `${p}-db-migrator-password`,
    dbApp: `${p}-db-app-password`,
    redisAuth: `${p}-redis-auth`,
    redisCa: `${p}-redis-ca`,
    dbCaKey: `${p}-db-ca-key`,
    dbCaCert: `${p}-db-ca-cert`,
    apiTlsCert: `${p}-api-tls-cert`,
    apiTlsKey: `${p}-api-tls-key`,
    hydraDbPassword: `${p}-hydra-db-password`,
    hydraSystemSecret: `${p}-hydra-system-secret`,
    grafanaAdminPassword: `${p}-grafana-admin-password`,
    etcdRootPassword: `${p}-etcd-root-password`,
    etcdPatroniPassword: `${p}-etcd-patroni-password`,
    patroniRestApiPassword: `${p}-patroni-api-password`,
    alertReceiver: `${p}-alert-receiver`,
    alertHeartbeat: `${p}-alert-heartbeat`,
  };
  return {
    network: `${p}-vpc`,
    gkeSubnet: `${p}-gke`,
    dataSubnet: `${p}-data`,
    podsRange: `${p}-pods`,
    servicesRange: `${p}-services`,
    privateServiceAccessRange: `${p}-psa`,
    router: `${p}-router`,
    nat: `${p}-nat`,
    cluster: `${p}-gke`,
    nodePool: `${p}-primary`,
    workloadPool: `${projectId}.svc.id.goog`,
    dnsZone: `${p}-db-internal`,
    dnsDomain,
    kmsKeyRing: `${p}-keyring`,
    kmsKeys: { gkeSecrets: "gke-secrets", disks: "disks", backups: "backups", exports: "tenant-exports", redis: "redis", cloudSql: "cloudsql" },
    backupsBucket: `${projectId}-${p}-db-backups`,
    exportsBucket: `${projectId}-${p}-tenant-exports`,
    redis: { instance: `${p}-redis`, host: `redis.${dnsDomain}`, port: PORTS.memorystoreTls },
    postgresPort: PORTS.postgres,
    // cidr: where clients' packets to it go (NetworkPolicies): the database subnet, or Cloud SQL's Private Service Access range.
    database: config.database.engine === "postgres"
      ? { engine: "postgres", host: cloudSqlHost, cidr: config.network.privateServiceAccessCidr }
      : { engine: "citus", host: coordinator.host, cidr: config.network.dataCidr },
    cloudSql: { instance: `${p}-postgres`, host: cloudSqlHost, caPool: `${p}-cloudsql-ca`, certificateAuthority: `${p}-cloudsql-root` },
    citusDatabase: "platform",
    hydraDatabase: DATABASE_ROLES.hydra,
    databaseRoles: DATABASE_ROLES,
    auth: { host: `auth.${config.kubernetes.apiBaseDomain}`, issuer: `https://auth.${config.kubernetes.apiBaseDomain}/` },
    citus: {
      coordinator,
      workers: Array.from({ length: config.citus.workers }, (_, i) => node("worker", i, i + 1)),
    },
    patroni: {
      scope: `${p}-citus`,
      etcd: [0, 1, 2].map((i) => ({ instance: `${p}-etcd-${i}`, zone: zoneAt(i), host: `etcd-${i}.${dnsDomain}` })),
    },
    coordinatorLoadBalancer: {
      address: `${p}-coordinator-ilb`,
      healthCheck: `${p}-patroni-primary`,
      backendService: `${p}-coordinator`,
      forwardingRule: `${p}-coordinator-postgres`,
      instanceGroup: (zone: string) => `${p}-coordinator-${zone.slice(zone.lastIndexOf("-") + 1)}`,
    },
    serviceAccounts: {
      gkeNodes: sa("gke-nodes"),
      citusCoordinator: sa("citus-coord"),
      citusWorker: sa("citus-worker"),
      etcd: sa("etcd"),
      tenantService: sa("tenant-svc"),
      tenantWorker: sa("tenant-worker"),
      gateway: sa("gateway"),
      hydra: sa("hydra"),
      grafana: sa("grafana"),
      redisExporter: sa("redis-exporter"),
      alertmanager: sa("alertmanager"),
      otelCollector: sa("otel-collector"),
    },
    secrets,
    citusAlongside: config.database.citusAlongside
      ? { name: "citus", host: coordinator.host, cidr: config.network.dataCidr, secrets: { ...secrets, ...Object.fromEntries(CITUS_CLUSTER_SECRETS.map((k) => [k, secrets[k].replace(`${p}-`, `${p}-citus-`)])) } }
      : null,
    networkTags: { citus: `${p}-citus`, gkeNodes: `${p}-gke-node`, etcd: `${p}-etcd` },
  };
}
