import type { EnvironmentConfig, EnvironmentName } from "./schema.js";

type DeepPartial<T> = T extends readonly (infer U)[] ? readonly U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
export type EnvironmentInput = DeepPartial<EnvironmentConfig>;

/**
 * The checked-in definition of each environment. Sizing fields left out here are derived from `tenants.target`
 * (see sizing.ts); anything set here wins over the derivation, and operator overrides (load.ts) win over both.
 *
 * The GCP project ids and state buckets below are examples: every operator overrides them (platform.config.json
 * or PLATFORM_<ENV>_PROJECT_ID / PLATFORM_<ENV>_STATE_BUCKET), and synth warns while they are in use.
 */
export const ENVIRONMENT_DEFINITIONS: Record<EnvironmentName, EnvironmentInput> = {
  dev: {
    prefix: "saas-dev",
    gcp: { projectId: "example-saas-dev", region: "europe-west1", zones: ["europe-west1-b", "europe-west1-c", "europe-west1-d"], stateBucket: "example-saas-dev-tfstate" },
    tenants: { target: 1_000 },
    network: addressPlan(0, { privateEndpoint: false, flowLogSampling: 0.1 }),
    gke: {
      releaseChannel: "REGULAR",
      nodePool: { machineType: "e2-standard-4", minNodesPerZone: 1, maxNodesPerZone: 2 },
      deletionProtection: false,
      binaryAuthorization: false,
    },
    redis: { tier: "BASIC", memorySizeGb: 1, readReplicas: 0 },
    citus: {
      // Dev keeps the production shape (coordinator + 3 workers) on the smallest machines that run it.
      coordinator: { machineType: "e2-standard-2", dataDiskGb: 50 },
      worker: { machineType: "e2-standard-4", dataDiskGb: 50 },
      dataDiskType: "pd-balanced",
      standby: false,
      snapshotRetentionDays: 7,
      fullBackupRetention: 1,
      deletionProtection: false,
    },
    backups: { maxAgeDays: 30, nearlineAfterDays: 14, noncurrentVersionDays: 7 },
    database: { cloudSql: { tier: "db-custom-2-7680", diskGb: 20, highAvailability: false, backupRetentionCount: 7, deletionProtection: false } },
    // Little traffic: trace all of it, or a developer never finds the request they just made. Jaeger in the cluster:
    // traces next to the code that made them, and a lost pod loses only a developer's traces.
    monitoring: { traceSamplingRate: 1, traceBackend: "jaeger" },
    kubernetes: { apiHostname: "api.dev.example.com", apiBaseDomain: "dev.example.com" },
  },
  staging: {
    prefix: "saas-stg",
    gcp: { projectId: "example-saas-staging", region: "europe-west1", zones: ["europe-west1-b", "europe-west1-c", "europe-west1-d"], stateBucket: "example-saas-staging-tfstate" },
    tenants: { target: 10_000 },
    network: addressPlan(64, { privateEndpoint: true, flowLogSampling: 0.5 }),
    gke: { releaseChannel: "REGULAR", deletionProtection: false, binaryAuthorization: false },
    redis: { tier: "STANDARD_HA", readReplicas: 1 },
    citus: { dataDiskType: "pd-ssd", standby: false, snapshotRetentionDays: 14, fullBackupRetention: 2, deletionProtection: false },
    backups: { maxAgeDays: 60, nearlineAfterDays: 30, noncurrentVersionDays: 14 },
    database: { cloudSql: { highAvailability: false, deletionProtection: false } },
    monitoring: { traceSamplingRate: 0.1 },
    kubernetes: { apiHostname: "api.staging.example.com", apiBaseDomain: "staging.example.com" },
  },
  production: {
    prefix: "saas-prd",
    gcp: { projectId: "example-saas-production", region: "europe-west1", zones: ["europe-west1-b", "europe-west1-c", "europe-west1-d"], stateBucket: "example-saas-production-tfstate" },
    tenants: { target: 1_000_000 },
    network: addressPlan(128, { privateEndpoint: true, flowLogSampling: 0.5 }),
    gke: { releaseChannel: "STABLE", deletionProtection: true, binaryAuthorization: true },
    redis: { tier: "STANDARD_HA", readReplicas: 2 },
    citus: { dataDiskType: "pd-ssd", standby: true, snapshotRetentionDays: 30, fullBackupRetention: 4, deletionProtection: true },
    backups: { maxAgeDays: 90, nearlineAfterDays: 30, noncurrentVersionDays: 30 },
    database: { cloudSql: { highAvailability: true, backupRetentionCount: 30, deletionProtection: true } },
    monitoring: { prometheusStorageGi: 500, prometheusRetentionDays: 30 },
    kubernetes: {
      apiHostname: "api.example.com",
      apiBaseDomain: "app.example.com",
      workloads: {
        tenantService: { minReplicas: 6, maxReplicas: 60, cpuRequest: "1", cpuLimit: "2", memoryRequest: "512Mi", memoryLimit: "1Gi", ephemeralStorage: "512Mi" },
        tenantWorker: { minReplicas: 3, maxReplicas: 20, cpuRequest: "500m", cpuLimit: "1", memoryRequest: "384Mi", memoryLimit: "768Mi", ephemeralStorage: "256Mi" },
        gateway: { minReplicas: 3, maxReplicas: 30, cpuRequest: "1", cpuLimit: "2", memoryRequest: "512Mi", memoryLimit: "1Gi", ephemeralStorage: "256Mi" },
        // One per zone. At the 20,000 requests/s of docs/SCALING.md sampled at 1%, about 3,000 spans/s (some 15 a trace): a
        // small share of one core each; the rest is headroom for a higher sampling rate while an incident lasts.
        otelCollector: { minReplicas: 3, maxReplicas: 6, cpuRequest: "250m", cpuLimit: "1", memoryRequest: "512Mi", memoryLimit: "1Gi", ephemeralStorage: "64Mi" },
      },
    },
  },
};

/**
 * The release pipeline builds the tenant service image and pins each environment to its digest
 * (PLATFORM_<ENV>_TENANT_SERVICE_IMAGE or platform.config.json). Until then this example stands in, flagged as a
 * placeholder so synthesis warns: its digest names no real image.
 */
export const EXAMPLE_TENANT_SERVICE_IMAGE =
  "europe-west1-docker.pkg.dev/example-saas/platform/tenant-service:0.1.0@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/** Values every environment shares unless its definition says otherwise. */
export const COMMON_DEFAULTS: EnvironmentInput = {
  labels: { platform: "citus-saas", "managed-by": "cdktf" },
  tenants: { averageDataMb: 20 },
  gke: {
    maintenanceWindow: { startTime: "2025-01-04T02:00:00Z", endTime: "2025-01-04T06:00:00Z", recurrence: "FREQ=WEEKLY;BYDAY=SA,SU" },
    nodePool: { diskSizeGb: 100, maxSurge: 1, maxUnavailable: 0 },
  },
  redis: { version: "REDIS_7_2", maintenanceWindow: { day: "SUNDAY", hour: 3 } },
  citus: { postgresMajor: 15, citusVersion: "13.2", coordinatorMaxConnections: 400, workerMaxConnections: 800, restorePointIntervalMinutes: 60, etcd: { machineType: "e2-small", diskGb: 10 } },
  network: { authorizedNetworks: [], privateDnsDomain: "db.internal." },
  // Every environment runs Citus unless an operator chooses the postgres engine (PLATFORM_<ENV>_DATABASE_ENGINE), and
  // then Citus beside it to move tenants into (PLATFORM_<ENV>_DATABASE_CITUS_ALONGSIDE=true).
  database: { engine: "citus", citusAlongside: false, cloudSql: { backupRetentionCount: 14, pointInTimeRecoveryDays: 7, maintenanceWindow: { day: "SUNDAY", hour: 4 } } },
  // No proxy in front of Kong: the L4 load balancer passes clients' addresses through (docs/ARCHITECTURE.md, "The edge").
  exports: { retentionDays: 7 },
  edge: { perAddressLimit: { second: 200, minute: 6_000 }, requestBodyLimitKib: 256, trustedProxyCidrs: [] },
  monitoring: { prometheusReplicas: 2, prometheusStorageGi: 50, prometheusRetentionDays: 15, jaegerStorageGi: 20, jaegerRetentionHours: 72, traceSamplingRate: 0.01, traceBackend: "cloudTrace", alertReceiver: "pagerduty" },
  kubernetes: {
    tenantService: { namespace: "tenants", serviceAccount: "tenant-service" },
    tenantWorker: { namespace: "tenants", serviceAccount: "tenant-worker" },
    gateway: { namespace: "gateway", serviceAccount: "kong" },
    hydra: { namespace: "auth", serviceAccount: "hydra" },
    grafana: { namespace: "monitoring", serviceAccount: "grafana" },
    redisExporter: { namespace: "monitoring", serviceAccount: "redis-exporter" },
    alertmanager: { namespace: "monitoring", serviceAccount: "alertmanager" },
    prometheus: { namespace: "monitoring", serviceAccount: "prometheus" },
    jaeger: { namespace: "monitoring", serviceAccount: "jaeger" },
    otelCollector: { namespace: "monitoring", serviceAccount: "otel-collector" },
    workloads: {
      tenantService: { minReplicas: 2, maxReplicas: 6, cpuRequest: "250m", cpuLimit: "1", memoryRequest: "256Mi", memoryLimit: "512Mi", ephemeralStorage: "256Mi" },
      tenantWorker: { minReplicas: 2, maxReplicas: 4, cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "192Mi", memoryLimit: "384Mi", ephemeralStorage: "128Mi" },
      gateway: { minReplicas: 2, maxReplicas: 6, cpuRequest: "250m", cpuLimit: "1", memoryRequest: "256Mi", memoryLimit: "512Mi", ephemeralStorage: "256Mi" },
      hydra: { minReplicas: 2, maxReplicas: 4, cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "128Mi", memoryLimit: "256Mi", ephemeralStorage: "128Mi" },
      grafana: { minReplicas: 2, maxReplicas: 3, cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "192Mi", memoryLimit: "384Mi", ephemeralStorage: "256Mi" },
      otelCollector: { minReplicas: 2, maxReplicas: 4, cpuRequest: "100m", cpuLimit: "500m", memoryRequest: "256Mi", memoryLimit: "512Mi", ephemeralStorage: "64Mi" },
    },
    images: { tenantService: EXAMPLE_TENANT_SERVICE_IMAGE },
  },
};

/**
 * Each environment gets its own 10.<base>.x.x block so that environments can be peered later without renumbering.
 * Pods take a /14 (1,024 nodes at a /24 each); services a /20; the rest are small.
 */
function addressPlan(base: number, rest: { privateEndpoint: boolean; flowLogSampling: number }): EnvironmentInput["network"] {
  return {
    gkeNodesCidr: `10.${base}.0.0/20`,
    dataCidr: `10.${base}.16.0/24`,
    controlPlaneCidr: `10.${base}.17.0/28`,
    servicesCidr: `10.${base}.32.0/20`,
    privateServiceAccessCidr: `10.${base}.48.0/20`,
    podsCidr: `10.${base + 4}.0.0/14`,
    ...rest,
  };
}
