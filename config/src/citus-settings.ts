/**
 * The server settings tenant isolation and shard operations depend on, on every Citus node (docs/ARCHITECTURE.md,
 * "Tenant isolation"): without propagate_set_commands = 'local' a worker never sees the request's tenant, and row-level
 * security refuses every write there (the Citus failover test saw exactly that before this was here). Written once:
 * the nodes' Patroni configuration (infra/src/citus/patroni.ts) sets them, and the Citus test suites refuse a cluster
 * that lacks them (citus/src/testing.ts), naming the node and the setting, rather than failing later for it.
 */
export const CITUS_SETTINGS: Readonly<Record<string, string | number>> = {
  "citus.propagate_set_commands": "local",
  "citus.stat_tenants_track": "all",
  "citus.shard_replication_factor": 1,
};

/**
 * The logical decoding plugins a Citus node allows, where the server restricts them (output_plugin_libraries,
 * PostgreSQL 15.19, 16.15, 17.11 on): Citus splits shards with its own "citus" plugin; moves use pgoutput. The VMs'
 * boot writes the same line (infra/src/citus/bootstrap/lib/patroni.sh, which cannot import this).
 */
export const CITUS_OUTPUT_PLUGIN_LIBRARIES = "pgoutput, citus";
