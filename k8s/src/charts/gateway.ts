import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { stringify } from "yaml";
import { imageRef, platformNames, type EnvironmentConfig } from "@platform/config";
import { IntOrString, KubeConfigMap, KubeService, type Volume } from "../k8s.js";
import { HardenedDeployment } from "../constructs/hardened-deployment.js";
import { NamespaceBaseline } from "../constructs/platform-namespace.js";
import { MEMORYSTORE_FILES, SECRETS_DIR, SecretManagerFiles } from "../constructs/secret-manager-files.js";
import { engineExceptionAnnotations, NETWORK_POLICY_EXCEPTION } from "../policy/exceptions.js";
import { quotaFor } from "../quantities.js";
import { PORTS, PRIORITY_CLASSES, WORKLOADS, peers, traceReceiver, type ChartContext } from "../topology.js";
import { WorkloadNetworkPolicy, addresses, podsOf, tcp, type PodPeer } from "../constructs/network-policy.js";

const PROXY_PORT = PORTS.kongProxy;
const PROXY_TLS_PORT = PORTS.kongProxyTls;
const STATUS_PORT = PORTS.kongStatus;
/** Memorystore's CA as Kong reads it: the same file the tenant service pins (MEMORYSTORE_FILES). */
const REDIS_CA_FILE = `${SECRETS_DIR}/${MEMORYSTORE_FILES.ca}`;
/**
 * How many certificates above Memorystore's may Kong walk to the CA: Kong's default of 1 refuses a chain with an
 * intermediate, which the instance's CA file may carry beside its root. Only that file is trusted, so a longer walk
 * cannot reach any other CA.
 */
const REDIS_CA_VERIFY_DEPTH = 3;
/**
 * The routes the gateway exposes: the single table the declarative configuration is generated from. Each entry is
 * one upstream service and the paths Kong sends to it.
 */
export interface GatewayRoute {
  readonly name: string;
  /** The Service Kong calls, and the name label of the pods behind it (for the egress NetworkPolicy). */
  readonly upstream: { readonly namespace: string; readonly service: string; readonly port: number; readonly pods: PodPeer };
  /** @default the API host and every tenant subdomain */
  readonly hosts?: readonly string[];
  readonly paths: readonly string[];
  readonly methods: readonly string[];
}

export function gatewayRoutes(config: EnvironmentConfig): GatewayRoute[] {
  const pods = peers(config);
  const names = platformNames(config);
  const tenants = { namespace: pods.tenantService.namespace, service: "tenant-service", port: PORTS.tenantService, pods: pods.tenantService };
  const hydra = { namespace: pods.hydra.namespace, service: "hydra-public", port: PORTS.hydraPublic, pods: pods.hydra };
  return [
    { name: "tenant-api", upstream: tenants, paths: ["/v1/"], methods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"] },
    { name: "tenant-api-docs", upstream: tenants, paths: ["/openapi.json"], methods: ["GET"] },
    // Hydra's public OAuth2/OIDC endpoints on the issuer's host (its admin API is never routed).
    {
      name: "oauth2",
      upstream: hydra,
      hosts: [names.auth.host],
      paths: ["/oauth2/", "/.well-known/", "/userinfo"],
      methods: ["GET", "POST", "OPTIONS"],
    },
  ];
}

/** Kong's declarative configuration (DB-less), from the route table and the environment. */
export function kongDeclarativeConfig(config: EnvironmentConfig, routes: readonly GatewayRoute[]): Record<string, unknown> {
  const names = platformNames(config);
  const k = config.kubernetes;
  return {
    _format_version: "3.0",
    _transform: true,
    services: routes.map((r) => ({
      name: r.name,
      url: `http://${r.upstream.service}.${r.upstream.namespace}.svc.cluster.local:${r.upstream.port}`,
      connect_timeout: 2000,
      read_timeout: 15000,
      write_timeout: 15000,
      retries: 1,
      routes: [
        {
          name: r.name,
          paths: [...r.paths],
          methods: [...r.methods],
          hosts: [...(r.hosts ?? [k.apiHostname, `*.${k.apiBaseDomain}`])],
          protocols: ["https"],
          strip_path: false,
          preserve_host: true,
          https_redirect_status_code: 308,
        },
      ],
    })),
    plugins: [
      { name: "correlation-id", config: { header_name: "X-Request-ID", generator: "uuid#counter", echo_downstream: true } },
      // Kong's kilobytes are KiB; the tenant service refuses the same size (BODY_LIMIT_BYTES, tenants chart).
      { name: "request-size-limiting", config: { allowed_payload_size: config.edge.requestBodyLimitKib, size_unit: "kilobytes", require_content_length: false } },
      {
        name: "cors",
        config: {
          origins: [`https://${k.apiBaseDomain}`, `https://*.${k.apiBaseDomain}`],
          methods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
          headers: ["Authorization", "Content-Type", "X-Request-ID", "X-Tenant-ID"],
          exposed_headers: ["X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"],
          credentials: false,
          max_age: 600,
        },
      },
      { name: "prometheus", config: { status_code_metrics: true, latency_metrics: true, upstream_health_metrics: true, bandwidth_metrics: false } },
      {
        // Kong starts each request's trace and hands it upstream as a W3C traceparent, which the tenant service and
        // Hydra continue: one trace from the edge to the database. A client's own trace headers are neither believed
        // nor forwarded (extract nothing, clear them), so no client picks trace ids, forces sampling or sends baggage.
        name: "opentelemetry",
        config: {
          traces_endpoint: `${traceReceiver(config).url}/v1/traces`,
          resource_attributes: { "service.name": "kong" },
          sampling_rate: config.monitoring.traceSamplingRate,
          propagation: { extract: [], clear: ["traceparent", "tracestate", "baggage"], inject: ["w3c"], default_format: "w3c" },
        },
      },
      {
        // Per client address, the one key here a client cannot forge: nothing authenticates a request before this
        // plugin runs, so a tenant id or anything else from the request would let a client spend another tenant's
        // quota or take a fresh bucket per request. The address is the TCP peer (see KONG_TRUSTED_IPS below).
        // Each tenant's own limit is the tenant service's, after it has verified the token (docs/ARCHITECTURE.md,
        // "The edge"). Counted in Memorystore, so the limit holds across every Kong replica.
        name: "rate-limiting",
        config: {
          ...config.edge.perAddressLimit,
          limit_by: "ip",
          policy: "redis",
          fault_tolerant: true,
          hide_client_headers: false,
          redis: {
            host: names.redis.host,
            port: names.redis.port,
            ssl: true,
            // The chain is verified against Memorystore's per-instance CA, the only CA Kong trusts
            // (KONG_LUA_SSL_TRUSTED_CERTIFICATE), so a certificate that verifies is this instance's: the chain is
            // pinned, as the tenant service pins it. No server_name: the certificate names the instance's IP, not the
            // DNS name used here, and Kong takes only a DNS name (not an IP) to check.
            ssl_verify: true,
            password: "{vault://env/kong-redis-password}",
            timeout: 200,
          },
        },
      },
    ],
  };
}

/**
 * Whose X-Forwarded-For Kong believes. With no proxy in front (the L4 passthrough load balancer, which keeps the
 * client's address), nobody's: Kong's default, so the address it limits and logs is the TCP peer. With proxies, only
 * theirs, reading the header from the right and skipping their own hops, so what a client wrote before the proxy's
 * entry is never taken.
 */
export function forwardedAddressTrust(trustedProxyCidrs: readonly string[]): Record<string, string> {
  if (trustedProxyCidrs.length === 0) return {};
  return { KONG_TRUSTED_IPS: trustedProxyCidrs.join(","), KONG_REAL_IP_HEADER: "X-Forwarded-For", KONG_REAL_IP_RECURSIVE: "on" };
}

/** Kong, DB-less: 8000/8443 as a non-root user, a LoadBalancer, HPA and PDB, status and metrics on 8100. */
export class GatewayChart extends Chart {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id, { disableResourceNameHashes: true });
    const { config, names } = ctx;
    const k = config.kubernetes;
    const namespace = k.gateway.namespace;
    const size = k.workloads.gateway;
    new NamespaceBaseline(this, "Baseline", { namespace, quota: quotaFor([size]) });
    const routes = gatewayRoutes(config);
    new KubeConfigMap(this, "DeclarativeConfig", {
      metadata: {
        name: "kong-declarative",
        namespace,
        annotations: engineExceptionAnnotations({
          trivy: {
            // Trivy's KSV-0109 matches the text "password:" in a ConfigMap's values.
            "KSV-0109":
              "the only password in Kong's configuration is a vault reference, {vault://env/kong-redis-password}, which Kong resolves from its environment at start; the value is a Secret Manager file, never in a manifest",
          },
        }),
      },
      data: { "kong.yml": stringify(kongDeclarativeConfig(config, routes), { lineWidth: 0 }) },
    });
    const secrets = new SecretManagerFiles(this, "Secrets", {
      namespace,
      name: "gateway-secrets",
      projectId: config.gcp.projectId,
      files: {
        [names.secrets.apiTlsCert]: "tls.crt",
        [names.secrets.apiTlsKey]: "tls.key",
        [names.secrets.redisAuth]: MEMORYSTORE_FILES.auth,
        [names.secrets.redisCa]: MEMORYSTORE_FILES.ca,
      },
    });
    const configVolume: Volume = { name: "declarative", configMap: { name: "kong-declarative" } };

    const gateway = new HardenedDeployment(this, "Kong", {
      exceptions: NETWORK_POLICY_EXCEPTION,
      namespace,
      ...WORKLOADS.gateway,
      priorityClassName: PRIORITY_CLASSES.edge.name,
      replicas: { min: size.minReplicas, max: size.maxReplicas },
      serviceAccount: { name: k.gateway.serviceAccount, googleServiceAccount: names.serviceAccounts.gateway.email },
      metrics: { port: STATUS_PORT, path: "/metrics" },
      extraVolumes: [secrets.volume, configVolume],
      container: {
        name: "kong",
        image: imageRef("kong"),
        ports: [
          { name: "proxy", containerPort: PROXY_PORT },
          { name: "proxy-tls", containerPort: PROXY_TLS_PORT },
          { name: "status", containerPort: STATUS_PORT },
        ],
        resources: size,
        readiness: { path: "/status/ready", port: STATUS_PORT },
        liveness: { path: "/status", port: STATUS_PORT },
        writableDirs: ["/kong_prefix", "/tmp"],
        readOnlyMounts: [
          { volume: secrets.volume.name, mountPath: SECRETS_DIR },
          { volume: configVolume.name, mountPath: "/kong/declarative" },
        ],
        // Kong reads its Redis password from the environment (the env vault: {vault://env/kong-redis-password});
        // the secret arrives as a file, so the shell exports it and execs Kong. No manifest holds the value. Assigned,
        // then exported, so an unreadable file stops the start rather than start Kong without the password (SC2155).
        command: ["/bin/sh", "-c"],
        args: [`KONG_REDIS_PASSWORD="$(cat ${SECRETS_DIR}/${MEMORYSTORE_FILES.auth})" && export KONG_REDIS_PASSWORD && exec /docker-entrypoint.sh kong docker-start`],
        env: {
          KONG_DATABASE: "off",
          KONG_DECLARATIVE_CONFIG: "/kong/declarative/kong.yml",
          KONG_PREFIX: "/kong_prefix",
          KONG_PROXY_LISTEN: `0.0.0.0:${PROXY_PORT}, 0.0.0.0:${PROXY_TLS_PORT} ssl http2`,
          KONG_STATUS_LISTEN: `0.0.0.0:${STATUS_PORT}`,
          KONG_ADMIN_LISTEN: "off",
          KONG_SSL_CERT: `${SECRETS_DIR}/tls.crt`,
          KONG_SSL_CERT_KEY: `${SECRETS_DIR}/tls.key`,
          // Only Memorystore's CA, not the system bundle: Kong's one TLS client is the Redis connection, and with no
          // host name checked any publicly trusted certificate would otherwise pass for Memorystore.
          KONG_LUA_SSL_TRUSTED_CERTIFICATE: REDIS_CA_FILE,
          KONG_LUA_SSL_VERIFY_DEPTH: String(REDIS_CA_VERIFY_DEPTH),
          KONG_PROXY_ACCESS_LOG: "/dev/stdout",
          KONG_PROXY_ERROR_LOG: "/dev/stderr",
          KONG_NGINX_WORKER_PROCESSES: "2",
          // Spans for the request and each phase (router, plugins, balancer, DNS); the opentelemetry plugin sends them.
          KONG_TRACING_INSTRUMENTATIONS: "all",
          KONG_TRACING_SAMPLING_RATE: String(config.monitoring.traceSamplingRate),
          ...forwardedAddressTrust(config.edge.trustedProxyCidrs),
        },
      },
    });

    new KubeService(this, "LoadBalancer", {
      metadata: {
        name: "kong-proxy",
        namespace,
        labels: { "app.kubernetes.io/name": "kong", "app.kubernetes.io/part-of": "api-gateway" },
        annotations: { "cloud.google.com/l4-rbs": "enabled" },
      },
      spec: {
        type: "LoadBalancer",
        // A passthrough load balancer that delivers to a pod on the node it picked, without SNAT: Kong's TCP peer is
        // the client itself, the address it limits and logs. Cluster would replace it with a node's address.
        externalTrafficPolicy: "Local",
        selector: gateway.selector,
        ports: [
          { name: "http", port: 80, targetPort: IntOrString.fromString("proxy"), protocol: "TCP" },
          { name: "https", port: 443, targetPort: IntOrString.fromString("proxy-tls"), protocol: "TCP" },
        ],
      },
    });

    new WorkloadNetworkPolicy(this, "KongPolicy", {
      namespace,
      name: WORKLOADS.gateway.name,
      selector: gateway.selector,
      ingress: [
        // Internet traffic through the load balancer (externalTrafficPolicy Local keeps client addresses).
        { ports: [tcp(PROXY_PORT), tcp(PROXY_TLS_PORT)] },
        { peers: [podsOf(ctx.peers.prometheus)], ports: [tcp(STATUS_PORT)] },
      ],
      egress: [
        ...routes.map((r) => ({ peers: [podsOf(r.upstream.pods)], ports: [tcp(r.upstream.port)] })),
        { peers: [addresses(config.network.privateServiceAccessCidr)], ports: [tcp(names.redis.port)] },
        { peers: [podsOf(traceReceiver(ctx.config).pods)], ports: [tcp(traceReceiver(ctx.config).port)] },
      ],
    });
  }
}

