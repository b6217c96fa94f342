/**
 * The Patroni configuration of one Citus VM, from patroniMemberConfig (the function the failover tests run): what
 * the bootstrap writes to /etc/patroni/config.yml. Everything here is known at synthesis; the bootstrap adds only the
 * passwords, read from Secret Manager at boot (write_patroni_config in bootstrap/lib/patroni.sh), and the sizes that
 * depend on the VM's memory (the custom_conf file).
 */
import { CITUS_SETTINGS, DATABASE_ROLES, DEAD_PEER_CONNINFO, DEAD_PEER_SETTINGS } from "@platform/config";
import { patroniMemberConfig, type PatroniMemberInput } from "./patroni.js";

/** Where things are on a Citus VM. bootstrap/lib/paths.sh uses the same paths; infra/test/bootstrap-patroni.test.ts checks they agree. */
export const CITUS_VM_PATHS = {
  dataMount: "/var/lib/postgresql",
  tlsDir: "/etc/postgresql/tls",
  patroniDir: "/etc/patroni",
  postgresHome: "/var/lib/postgresql",
} as const;

/**
 * The users Patroni connects and authenticates as: the database roles from the config's table (DATABASE_ROLES), its
 * REST API's basic-auth user and its etcd user.
 */
export const CITUS_ROLES = { superuser: DATABASE_ROLES.superuser, replication: DATABASE_ROLES.replication, patroniRestApi: "patroni", etcdUser: "patroni" } as const;

export interface CitusPatroniProps {
  /** The Patroni scope all groups of the formation share. */
  readonly scope: string;
  /** This member's name: its VM's. */
  readonly memberName: string;
  /** This VM's own DNS name: Patroni's connect address, which pg_dist_node lists while this member leads a worker group. */
  readonly memberHost: string;
  readonly group: number;
  readonly database: string;
  readonly postgresMajor: number;
  readonly port: number;
  readonly restApiPort: number;
  /** The etcd members, host:port. */
  readonly etcdHosts: readonly string[];
  readonly maxConnections: number;
  readonly shardCount: number;
  readonly stanza: string;
  readonly maxSlotWalKeepSize: string;
  readonly clientCidrs: readonly string[];
  readonly dataCidr: string;
  /** Production: synchronous replication in the group (no acknowledged write lost in a failover). */
  readonly synchronous: boolean;
  /** Production: `required` (a member whose Patroni stops looping is reset before its lock runs out). */
  readonly watchdog: "required" | "automatic" | "off";
}

/**
 * pg_hba.conf, first match wins: the superuser and replication only from the database subnet, the application
 * database and Hydra's from the client ranges, everything over TLS with SCRAM, the rest rejected. Patroni itself and
 * the exporter connect over the local socket (peer).
 */
export function citusPgHba(database: string, dataCidr: string, clientCidrs: readonly string[]): string[] {
  const { superuser, monitoring, replication, hydra } = DATABASE_ROLES;
  // Hydra's database is named after its role (names.hydraDatabase). Padded as the file always was.
  const col = (value: string, width: number) => value.padEnd(width);
  return [
    `local   all          ${col(superuser, 25)}peer`,
    `local   all          ${col(monitoring, 25)}peer`,
    "local   all          all                      scram-sha-256",
    `hostssl replication  ${col(replication, 12)}${dataCidr}   scram-sha-256`,
    `hostssl all          ${col(superuser, 12)}${dataCidr}   scram-sha-256`,
    `hostssl all          ${col(superuser, 12)}0.0.0.0/0    reject`,
    `hostssl all          ${col(replication, 12)}0.0.0.0/0    reject`,
    ...clientCidrs.flatMap((cidr) => [`hostssl ${database}     all         ${cidr}   scram-sha-256`, `hostssl ${col(hydra, 13)}${col(hydra, 12)}${cidr}   scram-sha-256`]),
    "host    all          all         0.0.0.0/0    reject",
    "host    all          all         ::/0         reject",
  ];
}

export function citusPatroniInput(p: CitusPatroniProps): PatroniMemberInput {
  const tls = CITUS_VM_PATHS.tlsDir;
  const dataDir = `${CITUS_VM_PATHS.dataMount}/${p.postgresMajor}/main`;
  return {
    scope: p.scope,
    name: p.memberName,
    citus: { group: p.group, database: p.database },
    etcd: {
      hosts: p.etcdHosts,
      // TLS verifies etcd; the member authenticates with its etcd user's password, not a client certificate: etcd
      // 3.4's JSON gateway, which Patroni 3.0 speaks, refuses every request that carries a certificate with a common
      // name while authentication is on ("CommonName of client sending a request against gateway will be ignored").
      tls: { cacert: `${tls}/ca.crt` },
      username: CITUS_ROLES.etcdUser,
    },
    restApi: { listen: `0.0.0.0:${p.restApiPort}`, connectAddress: `${p.memberHost}:${p.restApiPort}`, username: CITUS_ROLES.patroniRestApi },
    postgres: {
      listen: `0.0.0.0:${p.port}`,
      connectAddress: `${p.memberHost}:${p.port}`,
      dataDir,
      binDir: `/usr/lib/postgresql/${p.postgresMajor}/bin`,
      // Patroni rewrites this file for its own replication connections; ~/.pgpass stays the bootstrap's (Citus reads it).
      pgpass: `${CITUS_VM_PATHS.postgresHome}/.pgpass.patroni`,
      superuser: { username: CITUS_ROLES.superuser },
      replication: { username: CITUS_ROLES.replication },
      ssl: { sslmode: "verify-full", sslrootcert: `${tls}/ca.crt` },
      useUnixSocket: true,
      customConf: `${CITUS_VM_PATHS.patroniDir}/platform.conf`,
      clusterParameters: { max_connections: p.maxConnections, max_slot_wal_keep_size: p.maxSlotWalKeepSize },
      parameters: {
        shared_preload_libraries: "citus,pg_stat_statements",
        password_encryption: "scram-sha-256",
        ssl: "on",
        ssl_cert_file: `${tls}/server.crt`,
        ssl_key_file: `${tls}/server.key`,
        ssl_ca_file: `${tls}/ca.crt`,
        ssl_min_protocol_version: "TLSv1.2",
        wal_compression: "on",
        // Only the leader archives (archive_mode on, not always): after a failover the new leader carries on.
        archive_mode: "on",
        archive_command: `pgbackrest --stanza=${p.stanza} archive-push %p`,
        archive_timeout: 60,
        "citus.shard_count": p.shardCount,
        ...CITUS_SETTINGS,
        // The coordinator gives up a worker that went silent (a lost VM, before Patroni's failover) within a minute,
        // instead of TCP's 15 minutes of retransmissions with the tenant's statement waiting on it.
        "citus.node_conninfo": `sslmode=verify-full sslrootcert=${tls}/ca.crt ${DEAD_PEER_CONNINFO}`,
        // And every node lets go of a client gone silent within a minute: its locks, its snapshot (dead-peers.ts).
        ...DEAD_PEER_SETTINGS,
        log_line_prefix: "%m [%p] %q%u@%d/%a ",
        log_min_duration_statement: 1000,
        log_lock_waits: "on",
        log_temp_files: 0,
      },
      pgHba: citusPgHba(p.database, p.dataCidr, p.clientCidrs),
    },
    synchronous: p.synchronous,
    watchdog: p.watchdog,
  };
}

/** The configuration file, without passwords: JSON (which Patroni reads as YAML). */
export function citusPatroniConfig(p: CitusPatroniProps): string {
  return JSON.stringify(patroniMemberConfig(citusPatroniInput(p)));
}
