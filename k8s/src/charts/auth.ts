import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { imageRef } from "@platform/config";
import { IntOrString, KubeJob, KubeService, KubeServiceAccount, type Volume } from "../k8s.js";
import { HardenedDeployment } from "../constructs/hardened-deployment.js";
import { hardenedPodSecurityContext, hardenedTaskContainer } from "../constructs/hardened-container.js";
import { WorkloadNetworkPolicy, addresses, localPods, podsOf, tcp } from "../constructs/network-policy.js";
import { NamespaceBaseline } from "../constructs/platform-namespace.js";
import { SECRETS_DIR, SecretManagerFiles } from "../constructs/secret-manager-files.js";
import { PULL_POLICY_EXCEPTION, engineExceptionAnnotations, mergeExceptions, type EngineExceptions } from "../policy/exceptions.js";
import { quotaFor } from "../quantities.js";
import { HYDRA_SERVICES, PORTS, PRIORITY_CLASSES, WORKLOADS, controllerLabels, traceReceiver, type ChartContext } from "../topology.js";

/** Polaris's sensitiveContainerEnvVar matches the variable's name, not what it holds. */
const TOKEN_FORMAT_ENV_EXCEPTION: EngineExceptions = {
  polaris: {
    sensitiveContainerEnvVar:
      "STRATEGIES_ACCESS_TOKEN is Hydra's access token format (jwt), not a token; Hydra's secrets and database URL are files mounted from Secret Manager",
  },
};

export const HYDRA_PUBLIC_PORT = PORTS.hydraPublic;
export const HYDRA_ADMIN_PORT = PORTS.hydraAdmin;

/**
 * Ory Hydra (OAuth2/OIDC): public endpoints for the gateway and the tenant service (JWKS), the admin API reachable
 * only from inside its namespace, its schema migrated by a Job before the rollout. It keeps its data in its own
 * database on the Citus coordinator or the Cloud SQL instance (config database.engine); the DSN is assembled at start from mounted files, so no manifest holds it.
 */
export class AuthChart extends Chart {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id, { disableResourceNameHashes: true });
    const { config, names, peers } = ctx;
    const k = config.kubernetes;
    const namespace = k.hydra.namespace;
    const size = k.workloads.hydra;
    new NamespaceBaseline(this, "Baseline", { namespace, quota: quotaFor([size, { maxReplicas: 1, cpuLimit: size.cpuLimit, memoryLimit: size.memoryLimit }]) });

    const secrets = new SecretManagerFiles(this, "Secrets", {
      namespace,
      name: "hydra-secrets",
      projectId: config.gcp.projectId,
      files: { [names.secrets.hydraDbPassword]: "db-password", [names.secrets.hydraSystemSecret]: "system-secret", [names.secrets.dbCaCert]: "db-ca.crt" },
    });
    const dsn =
      `postgres://${names.databaseRoles.hydra}:$(cat ${SECRETS_DIR}/db-password)@${names.database.host}:${names.postgresPort}/${names.hydraDatabase}` +
      `?sslmode=verify-full&sslrootcert=${SECRETS_DIR}/db-ca.crt&max_conns=10`;
    // Assigned, then exported: a plain assignment fails when its `cat` does, so a missing file stops the start
    // instead of starting Hydra with an empty secret (`export NAME="$(cat ...)"` succeeds either way, SC2155).
    const start = (command: string) =>
      [`DSN="${dsn}" && SECRETS_SYSTEM="$(cat ${SECRETS_DIR}/system-secret)" && export DSN SECRETS_SYSTEM && exec hydra ${command}`];
    const env = {
      URLS_SELF_ISSUER: names.auth.issuer,
      URLS_LOGIN: `https://${k.apiBaseDomain}/login`,
      URLS_CONSENT: `https://${k.apiBaseDomain}/consent`,
      SERVE_PUBLIC_PORT: String(HYDRA_PUBLIC_PORT),
      SERVE_ADMIN_PORT: String(HYDRA_ADMIN_PORT),
      STRATEGIES_ACCESS_TOKEN: "jwt",
      LOG_FORMAT: "json",
      // Spans over OTLP/HTTP to the trace receiver (Ory's otelx). Hydra continues a W3C traceparent (Kong's),
      // following Kong's sampling; only its own root traces (in-cluster JWKS fetches, few) use this ratio.
      TRACING_PROVIDER: "otel",
      TRACING_SERVICE_NAME: "hydra",
      TRACING_PROVIDERS_OTLP_SERVER_URL: new URL(traceReceiver(config).url).host,
      TRACING_PROVIDERS_OTLP_INSECURE: "true",
      TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO: "1",
    };

    const hydra = new HardenedDeployment(this, "Hydra", {
      exceptions: TOKEN_FORMAT_ENV_EXCEPTION,
      namespace,
      ...WORKLOADS.hydra,
      priorityClassName: PRIORITY_CLASSES.api.name,
      replicas: { min: size.minReplicas, max: size.maxReplicas },
      serviceAccount: { name: k.hydra.serviceAccount, googleServiceAccount: names.serviceAccounts.hydra.email },
      metrics: { port: HYDRA_ADMIN_PORT, path: "/admin/metrics/prometheus" },
      extraVolumes: [secrets.volume],
      container: {
        name: "hydra",
        image: imageRef("hydra"),
        command: ["/bin/sh", "-c"],
        args: start("serve all"),
        ports: [
          { name: "public", containerPort: HYDRA_PUBLIC_PORT },
          { name: "admin", containerPort: HYDRA_ADMIN_PORT },
        ],
        resources: size,
        readiness: { path: "/health/ready", port: HYDRA_ADMIN_PORT },
        liveness: { path: "/health/alive", port: HYDRA_ADMIN_PORT },
        writableDirs: ["/tmp"],
        readOnlyMounts: [{ volume: secrets.volume.name, mountPath: SECRETS_DIR }],
        env,
      },
    });

    const service = (name: string, port: number, portName: string) =>
      new KubeService(this, name, {
        metadata: { name, namespace, labels: { "app.kubernetes.io/name": "hydra", "app.kubernetes.io/part-of": "auth" } },
        spec: { type: "ClusterIP", selector: hydra.selector, ports: [{ name: "http", port, targetPort: IntOrString.fromString(portName), protocol: "TCP" }] },
      });
    service(HYDRA_SERVICES.public, HYDRA_PUBLIC_PORT, "public");
    service(HYDRA_SERVICES.admin, HYDRA_ADMIN_PORT, "admin");

    // Schema migrations before the rollout; the finished Job removes itself after a day.
    // Hydra's pods by name (its NetworkPolicy lets the Job reach the database too); the Job's own instance.
    const jobLabels = { ...controllerLabels({ name: WORKLOADS.hydra.name, component: "migrate", partOf: WORKLOADS.hydra.partOf }), "app.kubernetes.io/instance": "hydra-migrate" };
    new KubeServiceAccount(this, "MigrateAccount", {
      metadata: { name: "hydra-migrate", namespace, annotations: { "iam.gke.io/gcp-service-account": names.serviceAccounts.hydra.email } },
      automountServiceAccountToken: false,
    });
    const { container, volumes } = hardenedTaskContainer({
      name: "migrate",
      image: imageRef("hydra"),
      command: ["/bin/sh", "-c"],
      args: start("migrate sql --read-from-env --yes"),
      resources: size,
      writableDirs: ["/tmp"],
      readOnlyMounts: [{ volume: secrets.volume.name, mountPath: SECRETS_DIR }],
      env,
    });
    new KubeJob(this, "Migrate", {
      metadata: {
        name: "hydra-migrate",
        namespace,
        labels: jobLabels,
        annotations: engineExceptionAnnotations(mergeExceptions(PULL_POLICY_EXCEPTION, TOKEN_FORMAT_ENV_EXCEPTION)),
      },
      spec: {
        ttlSecondsAfterFinished: 86400,
        backoffLimit: 3,
        // No probes on a run-to-completion container: the deadline bounds a hang.
        activeDeadlineSeconds: 600,
        template: {
          metadata: { labels: jobLabels },
          spec: {
            serviceAccountName: "hydra-migrate",
            automountServiceAccountToken: false,
            restartPolicy: "OnFailure",
            priorityClassName: PRIORITY_CLASSES.batch.name,
            securityContext: hardenedPodSecurityContext(),
            containers: [container],
            volumes: [...volumes, secrets.volume as Volume],
          },
        },
      },
    });

    new WorkloadNetworkPolicy(this, "HydraPolicy", {
      namespace,
      name: WORKLOADS.hydra.name,
      // Every Hydra pod, the server's and the migration Job's (component "migrate"): both reach the database.
      selector: { "app.kubernetes.io/name": WORKLOADS.hydra.name },
      ingress: [
        // Public endpoints: the gateway (OAuth2 flows) and the tenant service (JWKS).
        { peers: [podsOf(peers.gateway), podsOf(peers.tenantService)], ports: [tcp(HYDRA_PUBLIC_PORT)] },
        // Admin API: from inside this namespace; the tenant worker (it creates each tenant's OAuth2 client) and the
        // tenant service (a tenant admin rotates that client's secret), issue 24; metrics for Prometheus.
        { peers: [localPods({})], ports: [tcp(HYDRA_ADMIN_PORT)] },
        { peers: [podsOf(peers.tenantWorker), podsOf(peers.tenantService)], ports: [tcp(HYDRA_ADMIN_PORT)] },
        { peers: [podsOf(peers.prometheus)], ports: [tcp(HYDRA_ADMIN_PORT)] },
      ],
      egress: [
        { peers: [addresses(names.database.cidr)], ports: [tcp(names.postgresPort)] },
        { peers: [podsOf(traceReceiver(config).pods)], ports: [tcp(traceReceiver(config).port)] },
      ],
    });
  }
}
