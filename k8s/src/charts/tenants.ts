import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { tenantServicePoolSize } from "@platform/config";
import { HardenedDeployment } from "../constructs/hardened-deployment.js";
import { NamespaceBaseline } from "../constructs/platform-namespace.js";
import { MEMORYSTORE_FILES, SECRETS_DIR, SecretManagerFiles } from "../constructs/secret-manager-files.js";
import { quotaFor } from "../quantities.js";
import { HYDRA_SERVICES, PORTS, PRIORITY_CLASSES, WORKLOADS, serviceUrl, traceReceiver, type ChartContext } from "../topology.js";
import { WorkloadNetworkPolicy, addresses, podsOf, tcp } from "../constructs/network-policy.js";
import { NETWORK_POLICY_EXCEPTION, mergeExceptions, passwordFileException } from "../policy/exceptions.js";

/** The variables naming the secrets' files (services/tenant-service/src/connections.ts reads them). */
const PASSWORD_FILES = passwordFileException(["DATABASE_PASSWORD_FILE", "REDIS_PASSWORD_FILE"], "the process");

const SERVICE_PORT = PORTS.tenantService;
const WORKER_HEALTH_PORT = PORTS.tenantWorkerHealth;
/** The audience the service's tokens carry; every tenant's OAuth2 client may request it (services/tenant-service/src/hydra.ts). */
const TENANT_SERVICE_AUDIENCE = "tenant-service";


/**
 * The tenant service and its worker in one namespace: Deployments from the hardened helper, secrets mounted as
 * files by the GKE Secret Manager CSI driver through Workload Identity, and NetworkPolicies that open exactly the
 * paths they use (gateway and Prometheus in; Citus, Memorystore, Hydra (public and admin) and the trace receiver out).
 */
export class TenantsChart extends Chart {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id, { disableResourceNameHashes: true });
    const { config, names, peers } = ctx;
    const k = config.kubernetes;
    const namespace = k.tenantService.namespace;
    if (k.tenantWorker.namespace !== namespace) throw new Error("the tenant service and worker share one namespace (config kubernetes.*.namespace)");
    const service = k.workloads.tenantService;
    const worker = k.workloads.tenantWorker;

    new NamespaceBaseline(this, "Baseline", { namespace, quota: quotaFor([service, worker]) });

    // Secret Manager secrets as files; the pods' Google service accounts may read exactly these (infra/).
    const secretFiles = {
      dbPassword: { secret: names.secrets.dbApp, file: "db-password" },
      dbCa: { secret: names.secrets.dbCaCert, file: "db-ca.crt" },
      redisAuth: { secret: names.secrets.redisAuth, file: MEMORYSTORE_FILES.auth },
      redisCa: { secret: names.secrets.redisCa, file: MEMORYSTORE_FILES.ca },
      // Phases 2-3 (database.citusAlongside): the Citus cluster beside Cloud SQL, under its own secret ids.
      ...(names.citusAlongside
        ? {
            citusPassword: { secret: names.citusAlongside.secrets.dbApp, file: "citus-db-password" },
            citusCa: { secret: names.citusAlongside.secrets.dbCaCert, file: "citus-db-ca.crt" },
          }
        : {}),
    };
    const secrets = new SecretManagerFiles(this, "Secrets", {
      namespace,
      name: "platform-secrets",
      projectId: config.gcp.projectId,
      files: Object.fromEntries(Object.values(secretFiles).map((s) => [s.secret, s.file])),
    });

    const database = {
      DATABASE_URL: `postgresql://${names.databaseRoles.app}@${names.database.host}:${names.postgresPort}/${names.citusDatabase}`,
      DATABASE_PASSWORD_FILE: `${SECRETS_DIR}/${secretFiles.dbPassword.file}`,
      DATABASE_CA_FILE: `${SECRETS_DIR}/${secretFiles.dbCa.file}`,
      // A second database tenants can be placed in (citus/src/databases.ts): tenantctl moves tenants there, and the
      // service and worker follow each tenant's placement. The same role and database names as on Cloud SQL.
      ...(names.citusAlongside && secretFiles.citusPassword && secretFiles.citusCa
        ? {
            [`DATABASE_URL_${names.citusAlongside.name.toUpperCase()}`]: `postgresql://${names.databaseRoles.app}@${names.citusAlongside.host}:${names.postgresPort}/${names.citusDatabase}`,
            [`DATABASE_PASSWORD_FILE_${names.citusAlongside.name.toUpperCase()}`]: `${SECRETS_DIR}/${secretFiles.citusPassword.file}`,
            [`DATABASE_CA_FILE_${names.citusAlongside.name.toUpperCase()}`]: `${SECRETS_DIR}/${secretFiles.citusCa.file}`,
          }
        : {}),
    };
    const redis = {
      REDIS_URL: `rediss://${names.redis.host}:${names.redis.port}`,
      REDIS_PASSWORD_FILE: `${SECRETS_DIR}/${secretFiles.redisAuth.file}`,
      REDIS_CA_FILE: `${SECRETS_DIR}/${secretFiles.redisCa.file}`,
    };
    // Tenant exports go to the environment's bucket (infra/src/constructs/exports-bucket.ts); both read its name and
    // the objects' lifetime from config/, as the bucket's lifecycle does.
    const exportStore = { EXPORT_STORE: "gcs", EXPORT_BUCKET: names.exportsBucket, EXPORT_RETENTION_DAYS: String(config.exports.retentionDays) };
    // Cloud Storage (and, for the service, IAM Credentials' signBlob) over HTTPS through Private Google Access or Cloud
    // NAT, never to the private ranges; and the GKE metadata server, which answers Workload Identity's token
    // requests (169.254.169.254:80, and 169.254.169.252:988 on Dataplane V2), as the OpenTelemetry Collector's.
    const googleApis = [
      { peers: [addresses("0.0.0.0/0", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])], ports: [tcp(443)] },
      { peers: [addresses("169.254.169.254/32")], ports: [tcp(80)] },
      { peers: [addresses("169.254.169.252/32")], ports: [tcp(988)] },
    ];
    // Every replica's pool together stays within a share of the coordinator's connections (the same config value
    // the bootstrap writes as max_connections); the rest is for the worker, migrations and operators.
    const poolSize = tenantServicePoolSize(config);
    // Each tenant's OAuth2 client: created by the worker, its secret rotated by the service (issue 24).
    const hydraAdminUrl = serviceUrl(HYDRA_SERVICES.admin, peers.hydra.namespace, PORTS.hydraAdmin);
    const api = new HardenedDeployment(this, "TenantService", {
      exceptions: mergeExceptions(NETWORK_POLICY_EXCEPTION, PASSWORD_FILES),
      namespace,
      ...WORKLOADS.tenantService,
      priorityClassName: PRIORITY_CLASSES.api.name,
      replicas: { min: service.minReplicas, max: service.maxReplicas },
      serviceAccount: { name: k.tenantService.serviceAccount, googleServiceAccount: names.serviceAccounts.tenantService.email },
      service: { port: SERVICE_PORT, targetPortName: "http" },
      metrics: { port: SERVICE_PORT, path: "/metrics" },
      extraVolumes: [secrets.volume],
      container: {
        name: "tenant-service",
        image: k.images.tenantService,
        args: ["src/server.ts"],
        ports: [{ name: "http", containerPort: SERVICE_PORT }],
        resources: service,
        readiness: { path: "/ready", port: SERVICE_PORT },
        liveness: { path: "/health", port: SERVICE_PORT },
        startup: { path: "/health", port: SERVICE_PORT, maxStartupSeconds: 60 },
        writableDirs: ["/tmp"],
        readOnlyMounts: [{ volume: secrets.volume.name, mountPath: SECRETS_DIR }],
        env: {
          NODE_ENV: "production",
          PORT: String(SERVICE_PORT),
          ...database,
          DATABASE_POOL_SIZE: String(poolSize),
          ...redis,
          AUTH_JWKS_URL: `${serviceUrl(HYDRA_SERVICES.public, peers.hydra.namespace, PORTS.hydraPublic)}/.well-known/jwks.json`,
          HYDRA_ADMIN_URL: hydraAdminUrl,
          AUTH_ISSUER: names.auth.issuer,
          AUTH_AUDIENCE: TENANT_SERVICE_AUDIENCE,
          BASE_DOMAIN: k.apiBaseDomain,
          // The edge's limit (Kong's request-size-limiting), so a caller inside the cluster meets the same one.
          BODY_LIMIT_BYTES: String(config.edge.requestBodyLimitKib * 1024),
          OTEL_EXPORTER_OTLP_ENDPOINT: traceReceiver(config).url,
          LOG_LEVEL: "info",
          ...exportStore,
        },
      },
    });

    const workerDeployment = new HardenedDeployment(this, "TenantWorker", {
      exceptions: mergeExceptions(NETWORK_POLICY_EXCEPTION, PASSWORD_FILES),
      namespace,
      ...WORKLOADS.tenantWorker,
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: worker.minReplicas, max: worker.maxReplicas },
      serviceAccount: { name: k.tenantWorker.serviceAccount, googleServiceAccount: names.serviceAccounts.tenantWorker.email },
      metrics: { port: WORKER_HEALTH_PORT, path: "/metrics" },
      extraVolumes: [secrets.volume],
      // A running job finishes before the pod goes (graphile-worker stops taking jobs on SIGTERM).
      terminationGracePeriodSeconds: 120,
      container: {
        name: "tenant-worker",
        image: k.images.tenantService,
        args: ["src/worker.ts"],
        ports: [{ name: "health", containerPort: WORKER_HEALTH_PORT }],
        resources: worker,
        readiness: { path: "/readyz", port: WORKER_HEALTH_PORT },
        liveness: { path: "/livez", port: WORKER_HEALTH_PORT },
        writableDirs: ["/tmp"],
        readOnlyMounts: [{ volume: secrets.volume.name, mountPath: SECRETS_DIR }],
        // Its jobs' spans link to the requests that queued them (services/tenant-service/README.md, Tracing).
        // Redis: an erased tenant's rate-limit entries are removed when its erasure ends.
        // Hydra's admin API: each new tenant's OAuth2 client (worker/provision.ts).
        env: {
          NODE_ENV: "production", ...database, ...redis, HEALTH_PORT: String(WORKER_HEALTH_PORT), WORKER_CONCURRENCY: "5", OTEL_EXPORTER_OTLP_ENDPOINT: traceReceiver(config).url,
          HYDRA_ADMIN_URL: hydraAdminUrl, AUTH_AUDIENCE: TENANT_SERVICE_AUDIENCE, ...exportStore,
        },
      },
    });

    // The Citus coordinator's subnet, or Cloud SQL's range (config database.engine), and beside Cloud SQL the Citus
    // coordinator's subnet too (database.citusAlongside).
    const databasePeers = [...new Set([names.database.cidr, ...(names.citusAlongside ? [names.citusAlongside.cidr] : [])])].map((cidr) => addresses(cidr));
    new WorkloadNetworkPolicy(this, "TenantServicePolicy", {
      namespace,
      name: WORKLOADS.tenantService.name,
      selector: api.selector,
      ingress: [
        { peers: [podsOf(peers.gateway)], ports: [tcp(SERVICE_PORT)] },
        { peers: [podsOf(peers.prometheus)], ports: [tcp(SERVICE_PORT)] },
      ],
      egress: [
        { peers: databasePeers, ports: [tcp(names.postgresPort)] },
        { peers: [addresses(config.network.privateServiceAccessCidr)], ports: [tcp(names.redis.port)] },
        // Public: JWKS. Admin: rotating a tenant's OAuth2 client secret (routes/oauth2-client.ts).
        { peers: [podsOf(peers.hydra)], ports: [tcp(PORTS.hydraPublic), tcp(PORTS.hydraAdmin)] },
        { peers: [podsOf(traceReceiver(config).pods)], ports: [tcp(traceReceiver(config).port)] },
        ...googleApis,
      ],
    });
    new WorkloadNetworkPolicy(this, "TenantWorkerPolicy", {
      namespace,
      name: WORKLOADS.tenantWorker.name,
      selector: workerDeployment.selector,
      ingress: [{ peers: [podsOf(peers.prometheus)], ports: [tcp(WORKER_HEALTH_PORT)] }],
      egress: [
        { peers: databasePeers, ports: [tcp(names.postgresPort)] },
        { peers: [addresses(config.network.privateServiceAccessCidr)], ports: [tcp(names.redis.port)] },
        // Hydra's admin API: provisioning creates each tenant's OAuth2 client.
        { peers: [podsOf(peers.hydra)], ports: [tcp(PORTS.hydraAdmin)] },
        { peers: [podsOf(traceReceiver(config).pods)], ports: [tcp(traceReceiver(config).port)] },
        ...googleApis,
      ],
    });
  }
}
