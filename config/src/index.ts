export { ENVIRONMENT_NAMES, EnvironmentConfigSchema, type EnvironmentConfig, type EnvironmentName } from "./schema.js";
export { ConfigError, loadAllEnvironments, loadEnvironment, envVarName, merge as mergeOverrides, isEnvironmentName, ENV_VAR_OVERRIDES, DEFAULT_OVERRIDE_FILE, type LoadOptions } from "./load.js";
export { deriveSizing, tierFor, workersFor, shardCountFor, workerDiskGbFor, type Sizing, type SizingTier } from "./sizing.js";
export { ENVIRONMENT_DEFINITIONS, COMMON_DEFAULTS, EXAMPLE_TENANT_SERVICE_IMAGE } from "./environments.js";
export { IMAGES, UNRESOLVED_DIGEST, imageRef, unresolvedImages, admittedImagePatterns, imageAdmitted, imageRepository, type ImageEntry } from "./images.js";
export { PORTS } from "./ports.js";
export { CITUS_SETTINGS, CITUS_OUTPUT_PLUGIN_LIBRARIES } from "./citus-settings.js";
export { DEAD_PEER, DEAD_PEER_DROP_SECONDS, DEAD_PEER_SETTINGS, DEAD_PEER_CONNINFO, RETIRED_PER_POOL_CONNECTION, RESERVED_FROM_ANY_NODE, deadPeerStartupOptions, nodeConnectionCap, retiredConnectionBudget } from "./dead-peers.js";
export { DATABASE_ROLES, platformNames, runsCitusCluster, type DatabaseRole, type PlatformNames, type ServiceAccountName, type CitusNodeName } from "./names.js";
export { parseCidr, rangesOverlap, prefixLength, formatIpv4 } from "./cidr.js";
export {
  planForQps,
  tenantServicePoolSize,
  cpuCores,
  machineVcpus,
  DEFAULT_THROUGHPUT,
  HPA_TARGET_CPU_PERCENT,
  SERVICE_CONNECTION_SHARE,
  type ThroughputAssumptions,
  type ThroughputPlan,
  type ThroughputCheck,
} from "./throughput.js";
