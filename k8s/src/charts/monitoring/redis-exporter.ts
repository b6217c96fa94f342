import { Construct } from "constructs";
import { imageRef } from "@platform/config";
import { REDIS_EXPORTER_PORT } from "@platform/monitoring";
import { Quantity } from "../../k8s.js";
import { HardenedDeployment } from "../../constructs/hardened-deployment.js";
import { WorkloadNetworkPolicy, addresses, localPods, tcp } from "../../constructs/network-policy.js";
import { MEMORYSTORE_FILES, SECRETS_DIR, SecretManagerFiles } from "../../constructs/secret-manager-files.js";
import { PRIORITY_CLASSES, WORKLOADS, type ChartContext } from "../../topology.js";

/**
 * redis_exporter for Memorystore, over TLS with the instance's CA. It takes the password only as a JSON map from
 * address to password, so an init container (the tenant-service image: node, no shell) writes that map from the
 * Secret Manager file into memory-backed storage the exporter reads.
 */
export class RedisExporter extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id);
    const { config, names, peers } = ctx;
    const k = config.kubernetes;
    const { namespace, serviceAccount } = k.redisExporter;
    const redisAddress = `rediss://${names.redis.host}:${names.redis.port}`;
    const secrets = new SecretManagerFiles(this, "Secrets", {
      namespace,
      name: "redis-exporter-secrets",
      projectId: config.gcp.projectId,
      files: { [names.secrets.redisAuth]: MEMORYSTORE_FILES.auth, [names.secrets.redisCa]: MEMORYSTORE_FILES.ca },
    });
    const render = `const fs = require("node:fs");
fs.writeFileSync("/rendered/password.json", JSON.stringify({ [process.env.REDIS_ADDR]: fs.readFileSync("${SECRETS_DIR}/${MEMORYSTORE_FILES.auth}", "utf8").trim() }), { mode: 0o600 });`;
    const deployment = new HardenedDeployment(this, "Deployment", {
      namespace,
      ...WORKLOADS.redisExporter,
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: 2, max: 2 },
      serviceAccount: { name: serviceAccount, googleServiceAccount: names.serviceAccounts.redisExporter.email },
      service: { port: REDIS_EXPORTER_PORT, targetPortName: "metrics" },
      extraVolumes: [secrets.volume, { name: "rendered", emptyDir: { medium: "Memory", sizeLimit: Quantity.fromString("1Mi") } }],
      initContainers: [
        {
          name: "password-file",
          image: k.images.tenantService,
          command: ["/nodejs/bin/node", "-e", render],
          env: { REDIS_ADDR: redisAddress },
          resources: { cpuRequest: "50m", cpuLimit: "200m", memoryRequest: "64Mi", memoryLimit: "128Mi", ephemeralStorage: "16Mi" },
          persistentMounts: [{ volume: "rendered", mountPath: "/rendered" }],
          readOnlyMounts: [{ volume: secrets.volume.name, mountPath: SECRETS_DIR }],
        },
      ],
      container: {
        name: "redis-exporter",
        image: imageRef("redisExporter"),
        args: [
          `--redis.addr=${redisAddress}`,
          "--redis.password-file=/rendered/password.json",
          `--tls-ca-cert-file=${SECRETS_DIR}/${MEMORYSTORE_FILES.ca}`,
          `--web.listen-address=:${REDIS_EXPORTER_PORT}`,
        ],
        ports: [{ name: "metrics", containerPort: REDIS_EXPORTER_PORT }],
        resources: { cpuRequest: "50m", cpuLimit: "200m", memoryRequest: "32Mi", memoryLimit: "128Mi", ephemeralStorage: "16Mi" },
        readiness: { path: "/health", port: REDIS_EXPORTER_PORT },
        liveness: { path: "/", port: REDIS_EXPORTER_PORT },
        readOnlyMounts: [
          { volume: secrets.volume.name, mountPath: SECRETS_DIR },
          { volume: "rendered", mountPath: "/rendered" },
        ],
      },
    });
    this.selector = deployment.selector;
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: WORKLOADS.redisExporter.name,
      selector: this.selector,
      ingress: [{ peers: [localPods(peers.prometheus.selector)], ports: [tcp(REDIS_EXPORTER_PORT)] }],
      egress: [{ peers: [addresses(config.network.privateServiceAccessCidr)], ports: [tcp(names.redis.port)] }],
    });
  }
}
