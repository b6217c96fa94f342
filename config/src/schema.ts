import { createRequire } from "node:module";
import { requireCommonJs } from "@platform/cli/commonjs";
import type * as Zod from "zod";
import { parseCidr, prefixLength, rangesOverlap } from "./cidr.js";

/**
 * zod through its CommonJS build: every layer's synthesis loads this module, and under tsx each of zod's ~60 ES
 * modules takes a round trip through tsx's loader thread; the CommonJS build loads in about half the time, and
 * past tsx's require hook (@platform/cli/commonjs) in half that again (`pnpm bench:synth`). Nothing else mixes its
 * own zod schemas with these, so one copy is loaded either way.
 */
const { z } = requireCommonJs(createRequire(import.meta.url), "zod") as typeof Zod;

export const ENVIRONMENT_NAMES = ["dev", "staging", "production"] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

const cidr = z.string().superRefine((value, ctx) => {
  try {
    parseCidr(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
  }
});

const machineType = z
  .string()
  .regex(/^[a-z][a-z0-9]*-[a-z0-9-]+$/, "must be a Compute Engine machine type such as n2-standard-4");

/** GCP resource-name prefix. Service-account ids are at most 30 characters, so the prefix stays short. */
const prefix = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,10}[a-z0-9]$/, "must be 3-12 characters: lowercase letters, digits and hyphens, starting with a letter");

const kubernetesName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes DNS label (lowercase letters, digits, hyphens)")
  .max(63);

const workloadIdentity = z.object({
  namespace: kubernetesName,
  serviceAccount: kubernetesName,
});

const diskType = z.enum(["pd-ssd", "pd-balanced"]);

const quantity = (unit: "cpu" | "memory") =>
  z.string().regex(unit === "cpu" ? /^\d+(\.\d+)?m?$/ : /^\d+(Ki|Mi|Gi)$/, unit === "cpu" ? "must be a CPU quantity such as 250m or 1" : "must be a memory quantity such as 256Mi or 1Gi");

/** How one Deployment runs: replica bounds for its HPA and its container's requests and limits. */
const workloadSize = z
  .object({
    minReplicas: z.number().int().min(2, "must be 2 or more: one replica cannot survive a node drain"),
    maxReplicas: z.number().int().min(2),
    cpuRequest: quantity("cpu"),
    cpuLimit: quantity("cpu"),
    memoryRequest: quantity("memory"),
    memoryLimit: quantity("memory"),
    ephemeralStorage: quantity("memory"),
  })
  .refine((w) => w.maxReplicas >= w.minReplicas, { message: "maxReplicas must be >= minReplicas", path: ["maxReplicas"] });

/** An image pinned by tag and digest: a tag alone can be moved to other bytes. */
const pinnedImage = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._/-]*(:[0-9]+)?[a-z0-9._/-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/, "must be registry/repository:tag@sha256:<64 hex digits>");

export const EnvironmentConfigSchema = z
  .object({
    name: z.enum(ENVIRONMENT_NAMES),
    prefix,
    labels: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/), z.string().regex(/^[a-z0-9_-]{0,63}$/)),
    gcp: z.object({
      projectId: z
        .string()
        .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, "must be a GCP project id: 6-30 lowercase letters, digits or hyphens, starting with a letter"),
      region: z.string().regex(/^[a-z]+-[a-z]+[0-9]+$/, "must be a GCP region such as europe-west1"),
      zones: z.array(z.string().regex(/^[a-z]+-[a-z]+[0-9]+-[a-z]$/, "must be a zone such as europe-west1-b")).length(3, "must list exactly three zones of the region"),
      stateBucket: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, "must be a Cloud Storage bucket name (3-63 lowercase characters)"),
      /** True while projectId/stateBucket are the checked-in examples, not an operator's override. */
      placeholder: z.boolean(),
    }),
    tenants: z.object({
      /** How many tenants this environment is sized for; sizing below derives from it. */
      target: z.number().int().positive(),
      /** Average data per tenant (MB), used to size worker disks. */
      averageDataMb: z.number().positive(),
    }),
    network: z.object({
      gkeNodesCidr: cidr,
      podsCidr: cidr,
      servicesCidr: cidr,
      dataCidr: cidr,
      controlPlaneCidr: cidr.refine((v) => prefixLength(v) === 28, "must be a /28 (GKE private control plane)"),
      privateServiceAccessCidr: cidr.refine((v) => prefixLength(v) <= 24, "must be /24 or larger (Private Service Access for Memorystore)"),
      /** Networks allowed to reach the GKE control plane. Never 0.0.0.0/0. */
      authorizedNetworks: z.array(z.object({ displayName: z.string().min(1), cidrBlock: cidr.refine((v) => prefixLength(v) > 0, "must not be 0.0.0.0/0") })),
      /** Control plane reachable only on its private endpoint. */
      privateEndpoint: z.boolean(),
      flowLogSampling: z.number().gt(0).max(1),
      privateDnsDomain: z.string().regex(/^([a-z0-9-]+\.)+$/, "must be a DNS name ending with a dot, such as db.internal."),
    }),
    gke: z.object({
      releaseChannel: z.enum(["RAPID", "REGULAR", "STABLE"]),
      maintenanceWindow: z.object({
        startTime: z.iso.datetime(),
        endTime: z.iso.datetime(),
        recurrence: z.string().startsWith("FREQ=", "must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=SA,SU"),
      }),
      nodePool: z.object({
        machineType,
        minNodesPerZone: z.number().int().min(0),
        maxNodesPerZone: z.number().int().min(1),
        diskSizeGb: z.number().int().min(50),
        maxSurge: z.number().int().min(0),
        maxUnavailable: z.number().int().min(0),
      }),
      deletionProtection: z.boolean(),
      binaryAuthorization: z.boolean(),
    }),
    redis: z.object({
      tier: z.enum(["BASIC", "STANDARD_HA"]),
      memorySizeGb: z.number().int().min(1).max(300),
      version: z.enum(["REDIS_6_X", "REDIS_7_0", "REDIS_7_2"]),
      readReplicas: z.number().int().min(0).max(5),
      /** The weekly hour (UTC) Google may update the instance in: a STANDARD_HA instance fails over to its replica then. */
      maintenanceWindow: z.object({
        day: z.enum(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]),
        hour: z.number().int().min(0).max(23),
      }),
    }),
    citus: z.object({
      postgresMajor: z.union([z.literal(15), z.literal(16), z.literal(17)]),
      citusVersion: z.string().regex(/^13\.\d+$/, "must be a Citus 13 minor version such as 13.2"),
      workers: z.number().int().min(1).max(200),
      shardCount: z.number().int().min(1).max(8192),
      coordinator: z.object({ machineType, dataDiskGb: z.number().int().min(20) }),
      worker: z.object({ machineType, dataDiskGb: z.number().int().min(20) }),
      dataDiskType: diskType,
      /** A streaming physical standby per node, in another zone. */
      standby: z.boolean(),
      snapshotRetentionDays: z.number().int().min(1).max(365),
      /** pgBackRest full-backup retention (count of weekly fulls). */
      fullBackupRetention: z.number().int().min(1).max(52),
      /**
       * Minutes between cluster-wide restore points (citus_create_restore_point): the only targets a whole-cluster
       * restore is consistent at, so this is that restore's recovery point objective. Each one blocks distributed
       * commits for a moment.
       */
      restorePointIntervalMinutes: z.number().int().min(5).max(240),
      deletionProtection: z.boolean(),
      /** PostgreSQL max_connections: the bootstrap sets it, the charts size the service's pools from it. */
      coordinatorMaxConnections: z.number().int().min(50).max(5000),
      /** Workers take the coordinator's executor connections for every client session, hence more. */
      workerMaxConnections: z.number().int().min(50).max(10000),
      /**
       * The three etcd VMs Patroni keeps its leader locks in (one per zone). Small: the DCS holds a few keys per Citus
       * group and is written every loop_wait, but a member that misses its heartbeats costs a leader election.
       */
      etcd: z.object({ machineType, diskGb: z.number().int().min(10) }),
    }),
    /**
     * Where tenant data lives (docs/SCALING.md, "Phase 1: one PostgreSQL (Cloud SQL)"). citus: the Citus coordinator
     * and workers on Compute Engine (citus above). postgres: one Cloud SQL for PostgreSQL 15 instance
     * (infra/src/constructs/cloud-sql-postgres.ts), private IP only, sized by cloudSql below; the charts, the service,
     * the worker and the migrations are the same on both. An operator chooses with PLATFORM_<ENV>_DATABASE_ENGINE or
     * platform.config.json.
     */
    database: z.object({
      engine: z.enum(["citus", "postgres"]),
      /**
       * Phases 2-3 (docs/SCALING.md, "Phase 2-3: moving tenants into Citus"): with the postgres engine, the Citus
       * cluster runs too, beside the Cloud SQL instance, and tenants move into it online with tenantctl. The Cloud SQL
       * instance stays the home database (the registry, the queue, Hydra, every tenant not moved); the service and the
       * worker get Citus as a second database (DATABASE_URL_CITUS) and follow each tenant's placement. Its secrets
       * take ids of their own (names.citusAlongside.secrets), so the two engines' never collide.
       */
      citusAlongside: z.boolean(),
      /** Read where engine is postgres. Its max_connections is citus.coordinatorMaxConnections: the value the charts size the service's pools from. */
      cloudSql: z.object({
        /** A custom machine: db-custom-<vCPUs>-<memory MB>, 0.9 to 6.5 GB per vCPU in multiples of 256 MB. */
        tier: z.string().regex(/^db-custom-\d+-\d+$/, "must be a Cloud SQL custom tier such as db-custom-4-16384 (vCPUs, memory in MB)"),
        /** SSD data disk; it grows automatically beyond this, never shrinks. */
        diskGb: z.number().int().min(10).max(65536),
        /** availability_type REGIONAL: a standby in another zone of the region, failed over to by Cloud SQL. */
        highAvailability: z.boolean(),
        /** Daily automated backups kept (retained_backups). */
        backupRetentionCount: z.number().int().min(1).max(365),
        /** Days of write-ahead log kept for point-in-time recovery (transaction_log_retention_days, at most 7). */
        pointInTimeRecoveryDays: z.number().int().min(1).max(7),
        /** The weekly hour (UTC) Cloud SQL may apply updates in: a restart, or a failover with highAvailability. */
        maintenanceWindow: z.object({
          day: z.enum(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]),
          hour: z.number().int().min(0).max(23),
        }),
        deletionProtection: z.boolean(),
      }),
    }),
    backups: z.object({
      /** Objects older than this are deleted by lifecycle: a safety net behind pgBackRest's own expiry. */
      maxAgeDays: z.number().int().min(7),
      nearlineAfterDays: z.number().int().min(1),
      noncurrentVersionDays: z.number().int().min(1),
    }),
    /**
     * Tenant exports (services/tenant-service, README "Export"): the exports bucket's lifecycle deletes an object this
     * many days after it is written (infra/), and the service and worker say the same expiry (EXPORT_RETENTION_DAYS,
     * k8s/). At most 30: an export is a copy of a tenant's data, kept to be downloaded, not archived.
     */
    exports: z.object({ retentionDays: z.number().int().min(1).max(30) }),
    /** The in-cluster observability stack (k8s/src/charts/monitoring.ts). */
    monitoring: z.object({
      prometheusReplicas: z.number().int().min(1).max(3),
      prometheusStorageGi: z.number().int().min(10),
      prometheusRetentionDays: z.number().int().min(1).max(90),
      /**
       * Where traces are kept (docs/OBSERVABILITY.md, "Where traces go"). jaeger: one Jaeger all-in-one pod on a badger
       * volume that Kong, Hydra, the service and the worker write to directly; a single writer, for an environment
       * whose traces are a developer's tool. cloudTrace: an OpenTelemetry Collector Deployment
       * (kubernetes.workloads.otelCollector) receives them and exports them to Google Cloud Trace as its own Google
       * service account; no trace store runs in the cluster.
       */
      traceBackend: z.enum(["jaeger", "cloudTrace"]),
      /** Jaeger keeps traces on one badger volume: sampled diagnostics, not a system of record. Read where traceBackend is jaeger. */
      jaegerStorageGi: z.number().int().min(5),
      jaegerRetentionHours: z.number().int().min(1).max(720),
      /**
       * The share of requests traced. Every trace starts at Kong (it ignores clients' trace headers) and the services
       * follow its decision, so this one number sets the tracing load on the collector and the trace backend.
       */
      traceSamplingRate: z.number().min(0).max(1),
      /** Where alerts go: the secret <prefix>-alert-receiver holds PagerDuty's routing key or Slack's webhook URL. */
      alertReceiver: z.enum(["pagerduty", "slack"]),
      /** The Slack channel, when alertReceiver is slack. */
      slackChannel: z.string().regex(/^#[a-z0-9._-]+$/, "must be a channel such as #platform-alerts").optional(),
    }),
    /**
     * What the public edge (Kong behind the L4 load balancer) believes about a client and limits it by; the design
     * and its limits are in docs/ARCHITECTURE.md, "The edge".
     */
    edge: z.object({
      /**
       * Requests one client address may send through Kong, per second and per minute, across all of Kong's replicas.
       * The only limit before authentication; each tenant's own limit is the tenant service's. Generous, because
       * clients behind one NAT or an integration server acting for many tenants share an address.
       */
      perAddressLimit: z
        .object({ second: z.number().int().positive(), minute: z.number().int().positive() })
        .refine((l) => l.minute >= l.second, { message: "must be >= second (Kong refuses a minute limit below the second limit)", path: ["minute"] }),
      /**
       * Address ranges of proxies in front of Kong, whose X-Forwarded-For it believes. Empty while the L4 passthrough
       * load balancer delivers clients' own addresses: then no header can change the address Kong limits and logs.
       * Behind Google's external Application Load Balancer: its proxy ranges and its forwarding rule's own address
       * (/32), which it appends after the client's. IPv4 only, like the load balancer.
       */
      /**
       * The largest request body, in KiB: Kong refuses a larger one at the edge (request-size-limiting) and the tenant
       * service behind it (BODY_LIMIT_BYTES) refuses one from inside the cluster, both with 413.
       */
      requestBodyLimitKib: z.number().int().min(1).max(10_240),
      trustedProxyCidrs: z.array(
        cidr.refine((v) => prefixLength(v) >= 8, "must be a proxy's own range (/8 or narrower): a wider one lets clients choose their address"),
      ),
    }),
    kubernetes: z.object({
      tenantService: workloadIdentity,
      tenantWorker: workloadIdentity,
      gateway: workloadIdentity,
      hydra: workloadIdentity,
      grafana: workloadIdentity,
      /** redis_exporter, which reads Memorystore's AUTH string to scrape it. */
      redisExporter: workloadIdentity,
      /** Alertmanager, which reads the receiver's webhook URL. */
      alertmanager: workloadIdentity,
      /** Prometheus and Jaeger: no Google identity, but their namespace and account are named here like the rest's. */
      prometheus: workloadIdentity,
      jaeger: workloadIdentity,
      /** The OpenTelemetry Collector (where monitoring.traceBackend is cloudTrace): its Google identity writes to Cloud Trace. */
      otelCollector: workloadIdentity,
      /** Public host name of the API (the gateway's TLS host); tenants also get <code>.<apiBaseDomain>. */
      apiHostname: z.string().regex(/^([a-z0-9-]+\.)+[a-z]{2,}$/, "must be a DNS name such as api.example.com"),
      apiBaseDomain: z.string().regex(/^([a-z0-9-]+\.)+[a-z]{2,}$/, "must be a DNS domain such as app.example.com"),
      workloads: z.object({ tenantService: workloadSize, tenantWorker: workloadSize, gateway: workloadSize, hydra: workloadSize, grafana: workloadSize, otelCollector: workloadSize }),
      images: z.object({
        tenantService: pinnedImage,
        /** True while tenantService is the checked-in example; the release pipeline sets the real digest. */
        placeholder: z.boolean(),
      }),
    }),
  })
  .superRefine((config, ctx) => {
    const { gke, network, citus, redis, gcp, backups } = config;
    if (gke.nodePool.maxNodesPerZone < gke.nodePool.minNodesPerZone) {
      ctx.addIssue({
        code: "custom",
        path: ["gke", "nodePool", "maxNodesPerZone"],
        message: `must be >= minNodesPerZone (got ${gke.nodePool.maxNodesPerZone} < ${gke.nodePool.minNodesPerZone})`,
      });
    }
    if (gke.nodePool.maxSurge === 0 && gke.nodePool.maxUnavailable === 0) {
      ctx.addIssue({ code: "custom", path: ["gke", "nodePool", "maxSurge"], message: "maxSurge and maxUnavailable cannot both be 0: upgrades could never progress" });
    }
    gcp.zones.forEach((zone, i) => {
      if (!zone.startsWith(`${gcp.region}-`)) {
        ctx.addIssue({ code: "custom", path: ["gcp", "zones", i], message: `zone "${zone}" is not in region "${gcp.region}"; set the zones together with the region` });
      }
    });
    if (new Set(gcp.zones).size !== gcp.zones.length) {
      ctx.addIssue({ code: "custom", path: ["gcp", "zones"], message: "zones must be three distinct zones" });
    }
    if (citus.shardCount < citus.workers) {
      ctx.addIssue({ code: "custom", path: ["citus", "shardCount"], message: `must be >= workers (${citus.shardCount} shards cannot spread over ${citus.workers} workers)` });
    }
    if (redis.readReplicas > 0 && redis.tier !== "STANDARD_HA") {
      ctx.addIssue({ code: "custom", path: ["redis", "readReplicas"], message: "read replicas need tier STANDARD_HA" });
    }
    if (backups.nearlineAfterDays >= backups.maxAgeDays) {
      ctx.addIssue({ code: "custom", path: ["backups", "nearlineAfterDays"], message: "must be smaller than maxAgeDays" });
    }
    // pgBackRest keeps `fullBackupRetention` weekly fulls; the lifecycle safety net must never delete files it still needs.
    if (backups.maxAgeDays <= citus.fullBackupRetention * 7 + 7) {
      ctx.addIssue({
        code: "custom",
        path: ["backups", "maxAgeDays"],
        message: `must exceed the pgBackRest retention (${citus.fullBackupRetention} weekly fulls = ${citus.fullBackupRetention * 7 + 7} days), or lifecycle rules would delete live backups`,
      });
    }
    if (config.name === "production" && !citus.standby) {
      ctx.addIssue({ code: "custom", path: ["citus", "standby"], message: "production requires a streaming standby per Citus node" });
    }
    if (config.monitoring.alertReceiver === "slack" && !config.monitoring.slackChannel) {
      ctx.addIssue({ code: "custom", path: ["monitoring", "slackChannel"], message: "alertReceiver slack needs the channel, e.g. #platform-alerts" });
    }
    // The monitoring chart runs these side by side behind one namespace's quota and default-deny.
    const k8s = config.kubernetes;
    const monitoring = { prometheus: k8s.prometheus, grafana: k8s.grafana, jaeger: k8s.jaeger, alertmanager: k8s.alertmanager, redisExporter: k8s.redisExporter, otelCollector: k8s.otelCollector };
    for (const [key, identity] of Object.entries(monitoring)) {
      if (identity.namespace !== k8s.prometheus.namespace) {
        ctx.addIssue({ code: "custom", path: ["kubernetes", key, "namespace"], message: `must be the monitoring namespace "${k8s.prometheus.namespace}" (kubernetes.prometheus.namespace): the monitoring components share one` });
      }
    }
    if (config.name === "production" && config.monitoring.traceBackend !== "cloudTrace") {
      ctx.addIssue({ code: "custom", path: ["monitoring", "traceBackend"], message: "production requires cloudTrace: Jaeger's badger storage has one writer, which no availability rule admits" });
    }
    if (config.database.citusAlongside && config.database.engine !== "postgres") {
      ctx.addIssue({ code: "custom", path: ["database", "citusAlongside"], message: "runs Citus beside Cloud SQL, so it needs engine postgres; with engine citus, Citus is already the only database: set citusAlongside false" });
    }
    if (config.name === "production" && config.database.engine === "postgres" && !config.database.cloudSql.highAvailability) {
      ctx.addIssue({ code: "custom", path: ["database", "cloudSql", "highAvailability"], message: "production requires a regional (highly available) Cloud SQL instance" });
    }
    const customTier = /^db-custom-(\d+)-(\d+)$/.exec(config.database.cloudSql.tier);
    if (customTier) {
      const [vcpus, memoryMb] = [Number(customTier[1]), Number(customTier[2])];
      if (vcpus !== 1 && vcpus % 2 !== 0) ctx.addIssue({ code: "custom", path: ["database", "cloudSql", "tier"], message: `must have 1 or an even number of vCPUs (got ${vcpus})` });
      if (memoryMb % 256 !== 0 || memoryMb < vcpus * 922 || memoryMb > vcpus * 6656) {
        ctx.addIssue({ code: "custom", path: ["database", "cloudSql", "tier"], message: `memory must be a multiple of 256 MB between 0.9 and 6.5 GB per vCPU (got ${memoryMb} MB for ${vcpus} vCPUs)` });
      }
    }
    if (config.name === "production" && redis.tier !== "STANDARD_HA") {
      ctx.addIssue({ code: "custom", path: ["redis", "tier"], message: "production requires STANDARD_HA Memorystore" });
    }
    if (citus.worker.dataDiskGb > 65536) {
      ctx.addIssue({ code: "custom", path: ["citus", "worker", "dataDiskGb"], message: "exceeds the 64 TB persistent-disk limit: add workers instead" });
    }
    const ranges = (["gkeNodesCidr", "podsCidr", "servicesCidr", "dataCidr", "controlPlaneCidr", "privateServiceAccessCidr"] as const).flatMap((key) => {
      try {
        return [{ key, range: parseCidr(network[key]) }];
      } catch {
        return []; // already reported by the field's own validation
      }
    });
    for (let i = 0; i < ranges.length; i++) {
      for (let j = i + 1; j < ranges.length; j++) {
        const a = ranges[i]!;
        const b = ranges[j]!;
        if (rangesOverlap(a.range, b.range)) {
          ctx.addIssue({ code: "custom", path: ["network", b.key], message: `${b.range.cidr} overlaps network.${a.key} (${a.range.cidr})` });
        }
      }
    }
  });

export type EnvironmentConfig = Zod.infer<typeof EnvironmentConfigSchema>;
