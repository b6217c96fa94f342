import { Construct } from "constructs";
import { ComputeProjectMetadataItem, DataGoogleProject, GoogleProvider } from "./google.js";
import { Aspects, GcsBackend, TerraformOutput, TerraformStack } from "cdktf";
import { PORTS, admittedImagePatterns, platformNames, runsCitusCluster, type EnvironmentConfig, type PlatformNames } from "@platform/config";
import { EnabledApisFirst, ProjectServices } from "./constructs/project-services.js";
import { PlatformNetwork } from "./constructs/network.js";
import { NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT } from "@platform/monitoring/exporter-queries";
import { PlatformFirewall } from "./constructs/firewall.js";
import { PlatformKeys } from "./constructs/kms.js";
import { DedicatedServiceAccount } from "./constructs/service-account.js";
import { PrivateGkeCluster } from "./constructs/private-gke-cluster.js";
import { MemorystoreRedis } from "./constructs/memorystore-redis.js";
import { BackupsBucket } from "./constructs/backups-bucket.js";
import { ExportsBucket } from "./constructs/exports-bucket.js";
import { CitusCluster } from "./constructs/citus-cluster.js";
import { CloudSqlPostgres } from "./constructs/cloud-sql-postgres.js";
import { EtcdCluster } from "./constructs/etcd-cluster.js";
import { WorkloadIdentityAccount } from "./constructs/workload-identity.js";
import { ImageAdmissionPolicy } from "./constructs/image-admission-policy.js";
import { SecretManagerSecret } from "./google.js";
import type { StackOutputName } from "./outputs.js";

export const REQUIRED_SERVICES = [
  "compute.googleapis.com",
  "container.googleapis.com",
  "redis.googleapis.com",
  "servicenetworking.googleapis.com",
  "dns.googleapis.com",
  "cloudkms.googleapis.com",
  "secretmanager.googleapis.com",
  "iam.googleapis.com",
  "logging.googleapis.com",
  "monitoring.googleapis.com",
  "storage.googleapis.com",
  "iap.googleapis.com",
];

const GKE_NODE_ROLES = [
  "roles/logging.logWriter",
  "roles/monitoring.metricWriter",
  "roles/monitoring.viewer",
  "roles/stackdriver.resourceMetadata.writer",
  "roles/autoscaling.metricsWriter",
  "roles/artifactregistry.reader",
];

/** The oldest Terraform the stacks are written for (`terraform_data` needs 1.4); docs/DEPLOYMENT.md asks for the same. */
export const TERRAFORM_REQUIRED_VERSION = ">= 1.5.0";
/** The postgres engine's users take write-only passwords (password_wo), which Terraform 1.11 introduced. */
export const TERRAFORM_REQUIRED_VERSION_POSTGRES = ">= 1.11.0";

/** APIs only the postgres engine (config database.engine) uses: Cloud SQL, and CA Service for its server certificate. */
export const POSTGRES_ENGINE_SERVICES = ["sqladmin.googleapis.com", "privateca.googleapis.com"];

/** What the rest of the stack needs of either database engine. */
interface DatabaseEngine {
  /** The secrets the workloads read (the same ids on both engines). */
  readonly secrets: Pick<CitusCluster["secrets"], "dbApp" | "dbCaCert" | "hydraDbPassword" | "hydraSystemSecret" | "grafanaAdminPassword">;
  /** What names.database.host resolves to. */
  readonly address: string;
  /** pgBackRest's bucket: Citus only (Cloud SQL keeps its own backups). */
  readonly backupsBucket?: string;
}

export interface PlatformStackProps {
  readonly config: EnvironmentConfig;
}

/** Everything one environment runs on: `cdktf deploy <env>` applies exactly this. */
export class PlatformStack extends TerraformStack {
  readonly config: EnvironmentConfig;
  readonly names: PlatformNames;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id);
    const config = (this.config = props.config);
    const names = (this.names = platformNames(config));
    const project = config.gcp.projectId;
    const region = config.gcp.region;
    const labels = { ...config.labels, environment: config.name, "managed-by": "cdktf" };
    const postgresEngine = config.database.engine === "postgres";

    new GcsBackend(this, { bucket: config.gcp.stateBucket, prefix: `platform/${config.name}` });
    // Checked by Terraform at init and plan, on the machine that applies, rather than by cdktf at synthesis.
    this.addOverride("terraform.required_version", postgresEngine ? TERRAFORM_REQUIRED_VERSION_POSTGRES : TERRAFORM_REQUIRED_VERSION);
    new GoogleProvider(this, "google", { project, region, defaultLabels: labels });

    const services = new ProjectServices(this, "Services", {
      projectId: project,
      services: [
        ...REQUIRED_SERVICES,
        ...(config.gke.binaryAuthorization ? ["binaryauthorization.googleapis.com"] : []),
        ...(config.monitoring.traceBackend === "cloudTrace" ? ["cloudtrace.googleapis.com"] : []),
        ...(postgresEngine ? POSTGRES_ENGINE_SERVICES : []),
      ],
    });
    Aspects.of(this).add(new EnabledApisFirst(services));
    // OS Login for every VM in the project, not only ours: a VM created by hand must not accept metadata SSH keys.
    new ComputeProjectMetadataItem(this, "ProjectOsLogin", { project, key: "enable-oslogin", value: "TRUE" });

    // Google's service agents, which encrypt with the platform's keys; their ids derive from the project number.
    const projectData = new DataGoogleProject(this, "Project", { projectId: project });
    const agent = (domain: string): string => `service-${projectData.number}@${domain}.iam.gserviceaccount.com`;
    const keys = new PlatformKeys(this, "Keys", {
      projectId: project,
      location: region,
      keyRingName: names.kmsKeyRing,
      keyNames: names.kmsKeys,
      agents: {
        gke: agent("container-engine-robot"),
        compute: agent("compute-system"),
        storage: agent("gs-project-accounts"),
        redis: agent("cloud-redis"),
      },
      // Cloud SQL's agent exists once `gcloud beta services identity create --service=sqladmin.googleapis.com` has
      // run: scripts/deploy does it before `cdktf deploy` for the postgres engine.
      ...(postgresEngine ? { cloudSql: { name: names.kmsKeys.cloudSql, agent: agent("gcp-sa-cloud-sql") } } : {}),
      labels,
      preventDestroy: postgresEngine ? config.database.cloudSql.deletionProtection : config.citus.deletionProtection,
    });

    const network = new PlatformNetwork(this, "Network", {
      projectId: project,
      region,
      names,
      gkeNodesCidr: config.network.gkeNodesCidr,
      podsCidr: config.network.podsCidr,
      servicesCidr: config.network.servicesCidr,
      dataCidr: config.network.dataCidr,
      privateServiceAccessCidr: config.network.privateServiceAccessCidr,
      privateDnsDomain: config.network.privateDnsDomain,
      flowLogSampling: config.network.flowLogSampling,
      labels,
    });
    new PlatformFirewall(this, "Firewall", {
      projectId: project,
      network: network.network.id,
      namePrefix: config.prefix,
      postgresPort: names.postgresPort,
      postgresSources: [config.network.gkeNodesCidr, config.network.podsCidr, config.network.dataCidr],
      // Prometheus runs in a pod; with Dataplane V2 its packets keep the pod address.
      // Prometheus scrapes the exporters and Patroni's REST API (its /metrics) on every Citus VM.
      metrics: { sources: [config.network.podsCidr], ports: [POSTGRES_EXPORTER_PORT, NODE_EXPORTER_PORT, PORTS.patroniRestApi] },
      controlPlaneCidr: config.network.controlPlaneCidr,
      patroni: {
        restApiPort: PORTS.patroniRestApi,
        etcdClientPort: PORTS.etcdClient,
        etcdPeerPort: PORTS.etcdPeer,
      },
      tags: names.networkTags,
    });

    const nodeAccount = new DedicatedServiceAccount(this, "GkeNodeAccount", {
      projectId: project,
      name: names.serviceAccounts.gkeNodes,
      displayName: "GKE nodes (least privilege)",
      projectRoles: GKE_NODE_ROLES,
    });
    // Enforcement (production) evaluates the project's policy; the cluster waits for it so it never enforces the
    // project's allow-everything default.
    const admission = config.gke.binaryAuthorization
      ? new ImageAdmissionPolicy(this, "ImageAdmission", { projectId: project, admittedImages: admittedImagePatterns(config) })
      : undefined;
    const gke = new PrivateGkeCluster(this, "Gke", {
      projectId: project,
      name: names.cluster,
      region,
      zones: config.gcp.zones,
      network: network.network.id,
      subnetwork: network.gkeSubnet.id,
      podsRangeName: names.podsRange,
      servicesRangeName: names.servicesRange,
      controlPlaneCidr: config.network.controlPlaneCidr,
      privateEndpoint: config.network.privateEndpoint,
      authorizedNetworks: config.network.authorizedNetworks,
      workloadPool: names.workloadPool,
      releaseChannel: config.gke.releaseChannel,
      maintenanceWindow: config.gke.maintenanceWindow,
      secretsEncryptionKey: keys.gkeSecrets.id,
      bootDiskKey: keys.disks.id,
      nodeServiceAccount: nodeAccount.email,
      nodeTags: [names.networkTags.gkeNodes],
      nodePool: { name: names.nodePool, ...config.gke.nodePool },
      deletionProtection: config.gke.deletionProtection,
      binaryAuthorization: config.gke.binaryAuthorization,
      labels,
      dependsOn: [keys.grants.gkeSecrets, keys.grants.disks, ...(admission ? [admission.policy] : [])],
    });

    const redis = new MemorystoreRedis(this, "Redis", {
      projectId: project,
      name: names.redis.instance,
      region,
      zones: config.gcp.zones,
      network: network.network.id,
      tier: config.redis.tier,
      memorySizeGb: config.redis.memorySizeGb,
      version: config.redis.version,
      readReplicas: config.redis.readReplicas,
      maintenanceWindow: config.redis.maintenanceWindow,
      authSecretId: names.secrets.redisAuth,
      caSecretId: names.secrets.redisCa,
      dnsZone: network.dnsZone,
      host: names.redis.host,
      encryptionKey: keys.redis.id,
      labels,
      dependsOn: [network.privateServiceAccess, keys.grants.redis],
    });

    // The database: the Citus cluster (its VMs, etcd, pgBackRest's bucket) or one Cloud SQL instance.
    const database = postgresEngine ? this.cloudSqlEngine(config, names, network, keys, labels, agent("gcp-sa-cloud-sql")) : this.citusEngine(config, names, network, keys, labels);
    const dbSecrets = database.secrets;
    // Phases 2-3 (database.citusAlongside): the Citus cluster beside Cloud SQL, for tenantctl to move tenants into.
    // Its own secret ids (names.citusAlongside.secrets); Cloud SQL stays home: Hydra, Grafana and the registry use it.
    const alongside = names.citusAlongside ? this.citusEngine(config, { ...names, secrets: names.citusAlongside.secrets }, network, keys, labels) : undefined;

    // One Google service account per workload, bound to its Kubernetes service account, reading only its secrets.
    type Workload = "tenantService" | "tenantWorker" | "gateway" | "hydra" | "grafana" | "redisExporter" | "alertmanager" | "otelCollector";
    const identity = (id: string, workload: Workload, displayName: string, secretIds: string[], projectRoles?: string[]) =>
      new WorkloadIdentityAccount(this, id, {
        projectId: project,
        name: names.serviceAccounts[workload],
        displayName: `${displayName} (Workload Identity)`,
        workloadPool: names.workloadPool,
        kubernetesNamespace: config.kubernetes[workload].namespace,
        kubernetesServiceAccount: config.kubernetes[workload].serviceAccount,
        secretIds,
        ...(projectRoles ? { projectRoles } : {}),
        dependsOn: [gke.cluster],
      });

    // The tenant service and its worker read the application password, the database CA and Redis; nothing else.
    // Beside Cloud SQL, the Citus cluster's application password and CA too (DATABASE_URL_CITUS).
    const workloadSecrets = [dbSecrets.dbApp.secretId, dbSecrets.dbCaCert.secretId, redis.authSecret.secretId, redis.caSecret.secretId, ...(alongside ? [alongside.secrets.dbApp.secretId, alongside.secrets.dbCaCert.secretId] : [])];
    const workloadRoles = ["roles/cloudtrace.agent"];
    const tenantService = identity("TenantServiceIdentity", "tenantService", "Tenant service", workloadSecrets, workloadRoles);
    const tenantWorker = identity("TenantWorkerIdentity", "tenantWorker", "Tenant queue worker", workloadSecrets, workloadRoles);
    // Tenant exports: the worker writes them, the service signs expiring download URLs for them.
    new ExportsBucket(this, "Exports", {
      projectId: project,
      name: names.exportsBucket,
      location: region,
      kmsKey: keys.exports.id,
      retentionDays: config.exports.retentionDays,
      writer: tenantWorker.account,
      signer: { member: tenantService.account.member, name: tenantService.account.account.name },
      labels,
      dependsOn: [keys.grants.exports],
    });

    // Secrets whose values operators add (the API's certificate from their CA or ACME, the alert receiver's key, the
    // heartbeat URL):
    // the stack creates only the containers, so the values never pass through Terraform.
    const operatorSecret = (key: string, secretId: string) =>
      new SecretManagerSecret(this, key, { project, secretId, replication: { auto: {} }, labels });
    const apiTlsCert = operatorSecret("ApiTlsCert", names.secrets.apiTlsCert);
    const apiTlsKey = operatorSecret("ApiTlsKey", names.secrets.apiTlsKey);
    const alertReceiver = operatorSecret("AlertReceiver", names.secrets.alertReceiver);
    const alertHeartbeat = operatorSecret("AlertHeartbeat", names.secrets.alertHeartbeat);
    identity("GatewayIdentity", "gateway", "API gateway", [apiTlsCert.secretId, apiTlsKey.secretId, redis.authSecret.secretId, redis.caSecret.secretId]);
    identity("HydraIdentity", "hydra", "Ory Hydra", [dbSecrets.hydraDbPassword.secretId, dbSecrets.hydraSystemSecret.secretId, dbSecrets.dbCaCert.secretId]);
    identity("GrafanaIdentity", "grafana", "Grafana", [dbSecrets.grafanaAdminPassword.secretId]);
    identity("RedisExporterIdentity", "redisExporter", "redis_exporter", [redis.authSecret.secretId, redis.caSecret.secretId]);
    identity("AlertmanagerIdentity", "alertmanager", "Alertmanager", [alertReceiver.secretId, alertHeartbeat.secretId]);
    // Where traces go to Cloud Trace (monitoring.traceBackend), the OpenTelemetry Collector's replicas write them as
    // this account: span writes only, no secret (docs/OBSERVABILITY.md, "Where traces go").
    if (config.monitoring.traceBackend === "cloudTrace") identity("OtelCollectorIdentity", "otelCollector", "OpenTelemetry Collector", [], ["roles/cloudtrace.agent"]);

    const outputs: Partial<Record<StackOutputName, unknown>> = {
      environment: config.name,
      project_id: project,
      region,
      cluster_name: gke.cluster.name,
      cluster_location: gke.cluster.location,
      workload_pool: names.workloadPool,
      // The database clients connect to (names.database.host): the coordinator's, or Cloud SQL's with the postgres engine.
      coordinator_host: names.database.host,
      // What coordinator_host resolves to: the coordinator's load balancer (whichever member leads) or Cloud SQL's private address.
      coordinator_ip: database.address,
      worker_hosts: runsCitusCluster(config) ? names.citus.workers.map((w) => w.host) : [],
      postgres_port: names.postgresPort,
      database: names.citusDatabase,
      redis_host: names.redis.host,
      redis_ip: redis.instance.host,
      redis_port: redis.instance.port,
      ...(database.backupsBucket ?? alongside?.backupsBucket ? { backups_bucket: database.backupsBucket ?? alongside?.backupsBucket } : {}),
      ...(names.citusAlongside ? { citus_alongside_host: names.citusAlongside.host, citus_alongside_secret_ids: names.citusAlongside.secrets } : {}),
      tenant_service_account: tenantService.account.email,
      tenant_worker_account: tenantWorker.account.email,
      secret_ids: names.secrets,
    };
    for (const [name, value] of Object.entries(outputs)) {
      new TerraformOutput(this, name, { value });
    }
  }

  /** The Citus engine: coordinator and workers as Patroni groups, their etcd, pgBackRest's bucket. */
  private citusEngine(config: EnvironmentConfig, names: PlatformNames, network: PlatformNetwork, keys: PlatformKeys, labels: Record<string, string>): DatabaseEngine {
    const project = config.gcp.projectId;
    const region = config.gcp.region;
    const backups = new BackupsBucket(this, "Backups", {
      projectId: project,
      name: names.backupsBucket,
      location: region,
      kmsKey: keys.backups.id,
      nearlineAfterDays: config.backups.nearlineAfterDays,
      maxAgeDays: config.backups.maxAgeDays,
      noncurrentVersionDays: config.backups.noncurrentVersionDays,
      labels,
      dependsOn: [keys.grants.backups],
    });

    const citus = new CitusCluster(this, "Citus", {
      config,
      names,
      network: network.network.id,
      subnetwork: network.dataSubnet.id,
      dnsZoneName: network.dnsZone.name,
      diskKey: keys.disks.id,
      backupsBucket: backups.bucket.name,
      egress: network.nat,
      labels,
      dependsOn: [keys.grants.disks],
    });
    new EtcdCluster(this, "Etcd", {
      config,
      names,
      subnetwork: network.dataSubnet.id,
      dnsZoneName: network.dnsZone.name,
      diskKey: keys.disks.id,
      labels,
      secrets: { caKey: citus.secrets.dbCaKey, caCert: citus.secrets.dbCaCert, rootPassword: citus.secrets.etcdRootPassword, patroniPassword: citus.secrets.etcdPatroniPassword },
      egress: network.nat,
      dependsOn: [keys.grants.disks],
    });

    return { secrets: citus.secrets, address: citus.coordinatorLoadBalancer.address.address, backupsBucket: backups.bucket.name };
  }

  /** The postgres engine (docs/SCALING.md, "Phase 1"): one Cloud SQL instance on the VPC's Private Service Access range. */
  private cloudSqlEngine(config: EnvironmentConfig, names: PlatformNames, network: PlatformNetwork, keys: PlatformKeys, labels: Record<string, string>, serviceAgent: string): DatabaseEngine {
    const postgres = new CloudSqlPostgres(this, "Postgres", {
      config,
      names,
      network: network.network.id,
      privateServiceAccessRange: network.privateServiceAccessRange.name,
      dnsZoneName: network.dnsZone.name,
      kmsKey: keys.cloudSql!.key.id,
      serviceAgent,
      labels,
      dependsOn: [network.privateServiceAccess, keys.cloudSql!.grant],
    });
    return { secrets: postgres.secrets, address: postgres.instance.privateIpAddress };
  }

  /**
   * cdktf resolves every resource once before synthesis only to discover references to other stacks, which it then
   * wires through remote state. Each environment here is self-contained and must stay so (one environment's deploy
   * never reads another's state), so that pass is skipped: it was a quarter of synthesis time. Should a reference
   * to another stack creep in, the policy rule PLATFORM_REFERENCES_IN_STACK fails synthesis. It overrides cdktf's
   * own method, not a supported hook: test/internals.test.ts fails, saying so, when cdktf's pass would change the
   * synthesized JSON or App.synth stops calling it.
   */
  override prepareStack(): void {
    this.ensureBackendExists();
  }
}
