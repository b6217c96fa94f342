import { ApiObject, Chart } from "cdk8s";
import type { Construct } from "constructs";
import { platformNames, type EnvironmentConfig } from "@platform/config";
import { IntOrString, KubeNetworkPolicy, type NetworkPolicyPeer, type Volume } from "../k8s.js";
import { HardenedDeployment } from "../constructs/hardened-deployment.js";
import { NamespaceBaseline } from "../constructs/platform-namespace.js";
import { COORDINATOR_MAX_CONNECTIONS, PEERS, PRIORITY_CLASSES } from "../topology.js";

const SECRETS_DIR = "/var/run/secrets/platform";
const SECRET_VOLUME = "platform-secrets";
const SERVICE_PORT = 8080;
const WORKER_HEALTH_PORT = 9090;

/** Quantities like 250m, 1, 512Mi, 1Gi in base units, for the namespace quota arithmetic. */
function cpuCores(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q);
}
function memoryMi(q: string): number {
  const n = Number(q.replace(/(Ki|Mi|Gi)$/, ""));
  return q.endsWith("Gi") ? n * 1024 : q.endsWith("Ki") ? n / 1024 : n;
}

const peer = (p: { namespace: string; labels: Record<string, string> }): NetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": p.namespace } },
  podSelector: { matchLabels: { ...p.labels } },
});
const tcp = (port: number) => ({ protocol: "TCP", port: IntOrString.fromNumber(port) });

/**
 * The tenant service and its worker in one namespace: Deployments from the hardened helper, secrets mounted as
 * files by the GKE Secret Manager CSI driver through Workload Identity, and NetworkPolicies that open exactly the
 * paths they use (gateway and Prometheus in; Citus, Memorystore, Hydra and Jaeger out).
 */
export class TenantsChart extends Chart {
  constructor(scope: Construct, id: string, config: EnvironmentConfig) {
    super(scope, id, { disableResourceNameHashes: true });
    const names = platformNames(config);
    const k = config.kubernetes;
    const namespace = k.tenantService.namespace;
    if (k.tenantWorker.namespace !== namespace) throw new Error("the tenant service and worker share one namespace (config kubernetes.*.namespace)");
    const service = k.workloads.tenantService;
    const worker = k.workloads.tenantWorker;

    // Quota: every pod at its limit at the HPA maxima, plus one surge pod each during a rollout.
    const podsMax = service.maxReplicas + worker.maxReplicas + 2;
    const cpu = cpuCores(service.cpuLimit) * (service.maxReplicas + 1) + cpuCores(worker.cpuLimit) * (worker.maxReplicas + 1);
    const mem = memoryMi(service.memoryLimit) * (service.maxReplicas + 1) + memoryMi(worker.memoryLimit) * (worker.maxReplicas + 1);
    new NamespaceBaseline(this, "Baseline", { namespace, quota: { cpu: String(Math.ceil(cpu)), memory: `${Math.ceil(mem)}Mi`, pods: podsMax } });

    // Secret Manager secrets as files; the pods' Google service accounts may read exactly these (infra/).
    const secretFiles = {
      dbPassword: { secret: names.secrets.dbApp, file: "db-password" },
      dbCa: { secret: names.secrets.dbCaCert, file: "db-ca.crt" },
      redisAuth: { secret: names.secrets.redisAuth, file: "redis-auth" },
      redisCa: { secret: names.secrets.redisCa, file: "redis-ca.crt" },
    };
    new ApiObject(this, "SecretProviderClass", {
      apiVersion: "secrets-store.csi.x-k8s.io/v1",
      kind: "SecretProviderClass",
      metadata: { name: "platform-secrets", namespace },
      spec: {
        provider: "gke",
        parameters: {
          secrets: Object.values(secretFiles)
            .map((s) => `- resourceName: "projects/${config.gcp.projectId}/secrets/${s.secret}/versions/latest"\n  path: "${s.file}"`)
            .join("\n"),
        },
      },
    });
    const secretVolume: Volume = {
      name: SECRET_VOLUME,
      csi: { driver: "secrets-store-gke.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: "platform-secrets" } },
    };

    const database = {
      DATABASE_URL: `postgresql://platform_app@${names.citus.coordinator.host}:${names.postgresPort}/${names.citusDatabase}`,
      DATABASE_PASSWORD_FILE: `${SECRETS_DIR}/${secretFiles.dbPassword.file}`,
      DATABASE_CA_FILE: `${SECRETS_DIR}/${secretFiles.dbCa.file}`,
    };
    // Every replica's pool together stays within 60% of the coordinator's connections; the rest is for the worker,
    // migrations and operators.
    const poolSize = Math.max(2, Math.floor((COORDINATOR_MAX_CONNECTIONS * 0.6) / service.maxReplicas));
    const api = new HardenedDeployment(this, "TenantService", {
      namespace,
      name: "tenant-service",
      partOf: "tenant-platform",
      component: "api",
      priorityClassName: PRIORITY_CLASSES.api.name,
      replicas: { min: service.minReplicas, max: service.maxReplicas },
      serviceAccount: { name: k.tenantService.serviceAccount, googleServiceAccount: names.serviceAccounts.tenantService.email },
      service: { port: SERVICE_PORT, targetPortName: "http" },
      metrics: { port: SERVICE_PORT, path: "/metrics" },
      extraVolumes: [secretVolume],
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
        secretMounts: [{ volume: SECRET_VOLUME, mountPath: SECRETS_DIR }],
        env: {
          NODE_ENV: "production",
          PORT: String(SERVICE_PORT),
          ...database,
          DATABASE_POOL_SIZE: String(poolSize),
          REDIS_URL: `rediss://${names.redis.host}:${names.redis.port}`,
          REDIS_PASSWORD_FILE: `${SECRETS_DIR}/${secretFiles.redisAuth.file}`,
          REDIS_CA_FILE: `${SECRETS_DIR}/${secretFiles.redisCa.file}`,
          AUTH_JWKS_URL: `http://hydra-public.${PEERS.hydra.namespace}.svc.cluster.local:${PEERS.hydra.publicPort}/.well-known/jwks.json`,
          AUTH_ISSUER: `https://auth.${k.apiBaseDomain}/`,
          AUTH_AUDIENCE: "tenant-service",
          BASE_DOMAIN: k.apiBaseDomain,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://jaeger-collector.${PEERS.jaeger.namespace}.svc.cluster.local:${PEERS.jaeger.otlpHttpPort}`,
          LOG_LEVEL: "info",
        },
      },
    });

    const workerDeployment = new HardenedDeployment(this, "TenantWorker", {
      namespace,
      name: "tenant-worker",
      partOf: "tenant-platform",
      component: "worker",
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: worker.minReplicas, max: worker.maxReplicas },
      serviceAccount: { name: k.tenantWorker.serviceAccount, googleServiceAccount: names.serviceAccounts.tenantWorker.email },
      metrics: { port: WORKER_HEALTH_PORT, path: "/metrics" },
      extraVolumes: [secretVolume],
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
        secretMounts: [{ volume: SECRET_VOLUME, mountPath: SECRETS_DIR }],
        env: { NODE_ENV: "production", ...database, HEALTH_PORT: String(WORKER_HEALTH_PORT), WORKER_CONCURRENCY: "5" },
      },
    });

    const citus = { ipBlock: { cidr: config.network.dataCidr } };
    const memorystore = { ipBlock: { cidr: config.network.privateServiceAccessCidr } };
    new KubeNetworkPolicy(this, "TenantServicePolicy", {
      metadata: { name: "tenant-service", namespace },
      spec: {
        podSelector: { matchLabels: api.selector },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          { from: [peer(PEERS.gateway)], ports: [tcp(SERVICE_PORT)] },
          { from: [peer(PEERS.prometheus)], ports: [tcp(SERVICE_PORT)] },
        ],
        egress: [
          { to: [citus], ports: [tcp(names.postgresPort)] },
          { to: [memorystore], ports: [tcp(names.redis.port)] },
          { to: [peer(PEERS.hydra)], ports: [tcp(PEERS.hydra.publicPort)] },
          { to: [peer(PEERS.jaeger)], ports: [tcp(PEERS.jaeger.otlpHttpPort)] },
        ],
      },
    });
    new KubeNetworkPolicy(this, "TenantWorkerPolicy", {
      metadata: { name: "tenant-worker", namespace },
      spec: {
        podSelector: { matchLabels: workerDeployment.selector },
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [peer(PEERS.prometheus)], ports: [tcp(WORKER_HEALTH_PORT)] }],
        egress: [{ to: [citus], ports: [tcp(names.postgresPort)] }],
      },
    });
  }
}
