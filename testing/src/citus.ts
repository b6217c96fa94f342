import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { isolatedHostUnavailable, startIsolatedHost, type IsolatedHost } from "./netns.js";
import { POSTGRES_BIN, citusUnavailable, startPostgres, type PostgresServer } from "./postgres.js";

/** A Citus coordinator here and its one worker on an isolated host, so a test can cut the network between them. */
export interface CitusAcrossNetwork {
  readonly host: IsolatedHost;
  readonly coordinator: PostgresServer;
  readonly worker: PostgresServer;
  /** The superuser's connection string to a server over its Unix socket (no network between the test and it). */
  socketUrl(server: PostgresServer): string;
  /** Runs SQL on a server as the superuser (psql, over its socket) and returns what it printed, unaligned. */
  sql(server: PostgresServer, statement: string): string;
  stop(): void;
}

/** Why the cluster cannot be started here (no Citus, not root), or undefined when it can. */
export function citusAcrossNetworkUnavailable(): string | undefined {
  return citusUnavailable() ?? isolatedHostUnavailable();
}

/**
 * Starts Citus (built from its source; in no registry here) on PostgreSQL 15: the coordinator in this namespace with
 * `nodeConninfo` as its citus.node_conninfo (how it connects to the worker: the platform's dead-peer settings), the
 * worker on an isolated host (@platform/testing's netns), trust between the two, and the worker added to the cluster.
 * `host.cut()` then loses the worker as a failed VM or zone would: silently.
 */
export async function startCitusAcrossNetwork(options: { nodeConninfo: string }): Promise<CitusAcrossNetwork> {
  const unavailable = citusAcrossNetworkUnavailable();
  if (unavailable) throw new Error(unavailable);
  const host = startIsolatedHost();
  const servers: PostgresServer[] = [];
  const stop = () => {
    // The network first: a backend blocked on the lost worker then hears back instead of waiting out its timeouts.
    host.heal();
    for (const server of servers.reverse()) server.stop();
    host.remove();
  };
  try {
    // As the platform's nodes run (config/src/citus-settings.ts, CITUS_SETTINGS): a lone SET LOCAL of the tenant reaches
    // the workers, so row-level security there sees it.
    const citus = { shared_preload_libraries: "'citus'", max_worker_processes: "16", "citus.propagate_set_commands": "'local'" };
    const worker = await startPostgres({
      settings: { ...citus, listen_addresses: `'${host.hostAddress}'` },
      hbaRules: [`host all all ${host.serverAddress}/32 trust`],
      prefix: host.prefix,
    });
    servers.push(worker);
    const coordinator = await startPostgres({
      settings: { ...citus, listen_addresses: `'127.0.0.1,${host.serverAddress}'`, "citus.node_conninfo": `'${options.nodeConninfo}'` },
      // The worker, and the coordinator itself: once it holds shards, it reaches its own placements by its address.
      hbaRules: [`host all all ${host.hostAddress}/32 trust`, `host all all ${host.serverAddress}/32 trust`],
    });
    servers.push(coordinator);
    const socketUrl = (server: PostgresServer) => `postgresql://postgres@/postgres?host=${encodeURIComponent(server.socketDir)}&port=${server.port}`;
    const sql = (server: PostgresServer, statement: string) =>
      execFileSync(join(POSTGRES_BIN, "psql"), ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", socketUrl(server), "-c", statement], { encoding: "utf8" }).trim();
    sql(worker, "CREATE EXTENSION citus");
    sql(coordinator, "CREATE EXTENSION citus");
    sql(coordinator, `SELECT citus_set_coordinator_host('${host.serverAddress}', ${coordinator.port})`);
    sql(coordinator, `SELECT citus_add_node('${host.hostAddress}', ${worker.port})`);
    return { host, coordinator, worker, socketUrl, sql, stop };
  } catch (error) {
    stop();
    throw error;
  }
}
