/**
 * Patroni's configuration for one member of a Citus group: the file a Citus VM's boot will write instead of starting
 * PostgreSQL itself (issue 21's design: each Citus group, the coordinator's 0 and each worker's, is a Patroni cluster
 * with its leader lock in etcd; Patroni keeps pg_dist_node pointing at each group's primary).
 *
 * The same function serves the VMs and the failover tests, which run real Patroni 3.0 and etcd on loopback with it
 * (infra/test/patroni-failover.test.ts): what the tests prove is the configuration production gets, not a copy.
 * Rendered as JSON, which is YAML too.
 */
import { CITUS_SETTINGS } from "@platform/config";

export interface PatroniMemberInput {
  /** The Patroni cluster name all groups of one Citus formation share; groups are told apart by `citus.group`. */
  readonly scope: string;
  /** This member's name, unique in the group (the VM's name). */
  readonly name: string;
  /** Citus mode: the group (0 the coordinator) and the database Citus lives in. Absent: a plain PostgreSQL pair. */
  readonly citus?: { readonly group: number; readonly database: string };
  readonly etcd: {
    readonly hosts: readonly string[];
    /** TLS to etcd: the CA that signed etcd's certificates, and optionally this member's client certificate. */
    readonly tls?: { readonly cacert: string; readonly cert?: string; readonly key?: string };
    readonly username?: string;
    readonly password?: string;
  };
  readonly restApi: {
    readonly listen: string;
    readonly connectAddress: string;
    /** Basic auth for the API's unsafe endpoints (switchover, restart, reinitialize). */
    readonly username?: string;
    readonly password?: string;
    readonly tls?: { readonly certfile: string; readonly keyfile: string; readonly cafile?: string };
  };
  readonly postgres: {
    readonly listen: string;
    readonly connectAddress: string;
    readonly dataDir: string;
    readonly binDir: string;
    readonly pgpass: string;
    /**
     * Passwords may be left out of the file: the VMs give them to Patroni as PATRONI_SUPERUSER_PASSWORD,
     * PATRONI_REPLICATION_PASSWORD and PATRONI_REWIND_PASSWORD from Secret Manager, so the configuration (in
     * instance metadata and Terraform) carries none.
     */
    readonly superuser: { readonly username: string; readonly password?: string };
    readonly replication: { readonly username: string; readonly password?: string };
    /** TLS for the connections Patroni makes to other members (replication, pg_rewind): e.g. verify-full and the CA. */
    readonly ssl?: { readonly sslmode: string; readonly sslrootcert?: string };
    /** Server settings; Patroni manages the ones replication needs (wal_level, hot_standby, ...) itself. */
    readonly parameters?: Readonly<Record<string, string | number | boolean>>;
    /**
     * Settings every member of a group must share, which Patroni takes from the DCS only (max_connections, ...), and
     * overrides of the defaults below (max_slot_wal_keep_size).
     */
    readonly clusterParameters?: Readonly<Record<string, string | number | boolean>>;
    /**
     * A postgresql.conf Patroni includes before its own settings: what the VM decides at boot (memory sizes, and
     * output_plugin_libraries where the installed minor has it). A setting Patroni does not know must go here:
     * Patroni 3.0 removes it from `parameters` with only a warning ("Removing unexpected parameter"), and
     * output_plugin_libraries (PostgreSQL 15.19, 16.15, 17.11) is newer than it.
     */
    readonly customConf?: string;
    /** Patroni's own connection over the local socket (peer authentication as postgres) instead of TCP. */
    readonly useUnixSocket?: boolean;
    /** pg_hba.conf lines, first match wins. */
    readonly pgHba: readonly string[];
  };
  /**
   * Production: a commit returns only once the group's synchronous standby has it, so a failover loses no
   * acknowledged write. Not strict: with the standby gone the primary keeps accepting writes alone (availability over
   * a second copy, docs/ARCHITECTURE.md) and `CitusStandbyNotStreaming` pages.
   */
  readonly synchronous: boolean;
  /** Leader lock lifetime and loop timing, seconds. @default { ttl: 30, loopWait: 10, retryTimeout: 10 } */
  readonly timing?: { readonly ttl: number; readonly loopWait: number; readonly retryTimeout: number };
  /** /dev/watchdog (softdog): a member that cannot renew its lock in time is reset before another is promoted. */
  readonly watchdog?: "required" | "automatic" | "off";
}

export function patroniMemberConfig(m: PatroniMemberInput): Record<string, unknown> {
  const timing = m.timing ?? { ttl: 30, loopWait: 10, retryTimeout: 10 };
  if (timing.loopWait + 2 * timing.retryTimeout > timing.ttl) {
    // Patroni's own rule: otherwise a primary can lose its lock while still retrying the DCS, and two primaries overlap.
    throw new Error(`Patroni timing for ${m.name}: loop_wait + 2 * retry_timeout (${timing.loopWait + 2 * timing.retryTimeout}) must not exceed ttl (${timing.ttl})`);
  }
  return {
    scope: m.scope,
    namespace: "/service/",
    name: m.name,
    ...(m.citus ? { citus: { group: m.citus.group, database: m.citus.database } } : {}),
    etcd3: {
      hosts: [...m.etcd.hosts],
      protocol: m.etcd.tls ? "https" : "http",
      ...(m.etcd.tls ? { cacert: m.etcd.tls.cacert, ...(m.etcd.tls.cert ? { cert: m.etcd.tls.cert, key: m.etcd.tls.key } : {}) } : {}),
      ...(m.etcd.username ? { username: m.etcd.username, password: m.etcd.password } : {}),
    },
    restapi: {
      listen: m.restApi.listen,
      connect_address: m.restApi.connectAddress,
      ...(m.restApi.username ? { authentication: { username: m.restApi.username, password: m.restApi.password } } : {}),
      ...(m.restApi.tls ? { certfile: m.restApi.tls.certfile, keyfile: m.restApi.tls.keyfile, ...(m.restApi.tls.cafile ? { cafile: m.restApi.tls.cafile } : {}) } : {}),
    },
    bootstrap: {
      dcs: {
        ttl: timing.ttl,
        loop_wait: timing.loopWait,
        retry_timeout: timing.retryTimeout,
        // A replica further behind than this is not promoted automatically (asynchronous groups only; a synchronous
        // standby is always complete).
        maximum_lag_on_failover: 16 * 1024 * 1024,
        // A crashed primary is not restarted in place while a healthy standby could take over: fail over at once.
        primary_start_timeout: 0,
        synchronous_mode: m.synchronous,
        synchronous_mode_strict: false,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            wal_level: "logical",
            hot_standby: "on",
            wal_log_hints: "on",
            max_wal_senders: 10,
            max_replication_slots: 10,
            max_slot_wal_keep_size: "10GB",
            ...(m.citus ? CITUS_SETTINGS : {}),
            ...(m.postgres.clusterParameters ?? {}),
          },
        },
      },
      initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
    },
    postgresql: {
      listen: m.postgres.listen,
      connect_address: m.postgres.connectAddress,
      data_dir: m.postgres.dataDir,
      bin_dir: m.postgres.binDir,
      pgpass: m.postgres.pgpass,
      ...(m.postgres.useUnixSocket ? { use_unix_socket: true, use_unix_socket_repl: false } : {}),
      ...(m.postgres.customConf ? { custom_conf: m.postgres.customConf } : {}),
      authentication: {
        superuser: { ...m.postgres.superuser, ...m.postgres.ssl },
        replication: { ...m.postgres.replication, ...m.postgres.ssl },
        // pg_rewind as the superuser: a rejoining old primary rewinds what it wrote after losing the lock.
        rewind: { ...m.postgres.superuser, ...m.postgres.ssl },
      },
      parameters: { ...(m.postgres.parameters ?? {}) },
      pg_hba: [...m.postgres.pgHba],
    },
    watchdog: { mode: m.watchdog ?? "off", device: "/dev/watchdog", safety_margin: 5 },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

/** The file Patroni reads: JSON, which PyYAML reads as YAML. */
export function renderPatroniConfig(m: PatroniMemberInput): string {
  return `${JSON.stringify(patroniMemberConfig(m), null, 2)}\n`;
}
