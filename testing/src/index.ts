export { startPostgres, postgresUnavailable, citusUnavailable, freePort, POSTGRES_BIN, type PostgresServer, type StartPostgresOptions } from "./postgres.js";
export { startRedis, redisUnavailable, type RedisServer } from "./redis.js";
export { startEtcd, startPatroniMember, reserveMember, patroniUnavailable, ETCD_BIN, ETCDCTL_BIN, PATRONI_BIN, type Etcd, type EtcdOptions, type PatroniMember, type MemberPorts } from "./patroni.js";
export { startControlPlane, type ControlPlane } from "./kubernetes.js";
export { installHydra, startHydra, type HydraServer } from "./hydra.js";
export { startIsolatedHost, isolatedHostUnavailable, type IsolatedHost } from "./netns.js";
export { waitFor, type Probe, type WaitOptions } from "./wait.js";
export { scratchDirs, type ScratchDirs } from "./scratch.js";
export { startCitusAcrossNetwork, citusAcrossNetworkUnavailable, type CitusAcrossNetwork } from "./citus.js";
