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
  /** Private DNS name clients and pg_dist_node use; failover repoints it, nothing else changes. */
  readonly host: string;
  readonly standby?: { readonly instance: string; readonly zone: string; readonly host: string };
}

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
  readonly kmsKeys: { readonly gkeSecrets: string; readonly disks: string; readonly backups: string };
  readonly backupsBucket: string;
  readonly redis: { readonly instance: string; readonly host: string; readonly port: number };
  readonly postgresPort: number;
  readonly citusDatabase: string;
  readonly citus: { readonly coordinator: CitusNodeName; readonly workers: readonly CitusNodeName[] };
  readonly serviceAccounts: {
    readonly gkeNodes: ServiceAccountName;
    readonly citusCoordinator: ServiceAccountName;
    readonly citusWorker: ServiceAccountName;
    readonly tenantService: ServiceAccountName;
    readonly tenantWorker: ServiceAccountName;
    readonly gateway: ServiceAccountName;
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
  };
  readonly networkTags: { readonly citus: string; readonly gkeNodes: string };
}

/** Memorystore listens on 6378 when in-transit encryption is on (always, here). */
export const MEMORYSTORE_TLS_PORT = 6378;
export const POSTGRES_PORT = 5432;

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
    return {
      role,
      index,
      instance: `${p}-citus-${base}`,
      zone: zoneAt(zoneIndex),
      host: `${base}.${dnsDomain}`,
      ...(config.citus.standby
        ? { standby: { instance: `${p}-citus-${base}-standby`, zone: zoneAt(zoneIndex + 1), host: `${base}-standby.${dnsDomain}` } }
        : {}),
    };
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
    kmsKeys: { gkeSecrets: "gke-secrets", disks: "disks", backups: "backups" },
    backupsBucket: `${projectId}-${p}-db-backups`,
    redis: { instance: `${p}-redis`, host: `redis.${dnsDomain}`, port: MEMORYSTORE_TLS_PORT },
    postgresPort: POSTGRES_PORT,
    citusDatabase: "platform",
    citus: {
      coordinator: node("coordinator", 0, 0),
      workers: Array.from({ length: config.citus.workers }, (_, i) => node("worker", i, i + 1)),
    },
    serviceAccounts: {
      gkeNodes: sa("gke-nodes"),
      citusCoordinator: sa("citus-coord"),
      citusWorker: sa("citus-worker"),
      tenantService: sa("tenant-svc"),
      tenantWorker: sa("tenant-worker"),
      gateway: sa("gateway"),
    },
    secrets: {
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
    },
    networkTags: { citus: `${p}-citus`, gkeNodes: `${p}-gke-node` },
  };
}
