/**
 * How soon a PostgreSQL server lets go of a client it can no longer reach: a GKE node lost, a network cut, a VM
 * stopped. Such a client sends nothing, not even a reset, so without these the server keeps its session for Linux's
 * default keepalive (2 hours 11 minutes) or, with a result on its way, TCP's retransmissions (about 15 minutes); all
 * that time the session's open transaction keeps its locks (a queue job's row locks, a schema change waiting behind
 * them) and its snapshot (vacuum held back), and a dead worker's session advisory lock, by which the queue finds its
 * jobs (services/tenant-service/src/worker/dead-workers.ts), stays taken.
 *
 * Written once, read by every layer that opens or serves a connection:
 * - the Citus nodes' server settings (infra/src/citus/patroni-vm.ts), for every client, an operator's psql included;
 * - the coordinator's connections to its workers (citus.node_conninfo, in libpq's keywords);
 * - the tenant service's and worker's connections, as startup options, so that they hold on any PostgreSQL, Cloud
 *   SQL included, whose server settings the platform does not set (services/tenant-service/src/connections.ts).
 *
 * Under Google Cloud's 10 minutes after which its firewall forgets an idle connection, so a long-idle pooled
 * connection is kept known to it, too.
 */
export const DEAD_PEER = {
  /** Seconds of silence before the first keepalive probe. */
  keepalivesIdleSeconds: 30,
  /** Seconds between unanswered probes. */
  keepalivesIntervalSeconds: 10,
  /** Unanswered probes after which the connection is dropped. */
  keepalivesCount: 3,
  /** Data left unacknowledged this long (a result sent to a client that is gone) drops the connection. */
  userTimeoutMs: 60_000,
  /**
   * The same, on a Citus node's connections to the other nodes (citus.node_conninfo): shorter, because there a lost
   * peer costs more than its own connection. A coordinator that loses a worker cancels the statement there with
   * libpq's PQcancel, which blocks, cannot be interrupted, and is ended only by this timeout; its client's session
   * (a pool slot of the tenant service) answers nothing meanwhile (infra/test/citus-dead-worker.test.ts measures it).
   * 15 s is long for one VPC: a live peer's kernel acknowledges within milliseconds, however busy its PostgreSQL; a
   * network that stays silent this long is an outage that Patroni's 30 s lock would act on; and the service's own
   * statement timeout (10 s) has given up by then. With keepalives on, Linux also drops an idle connection once a probe
   * is unanswered and this much time has passed since the peer was last heard: about 40 s here.
   */
  nodeLinkUserTimeoutMs: 15_000,
  /** How often a running statement checks that its client is still connected (PostgreSQL 14 and later). */
  connectionCheckIntervalMs: 10_000,
} as const;

/**
 * The longest a server keeps the session of a silent, idle client after the last thing it heard from it: 60 s.
 * The queue worker's liveness argument rests on it (a cut-off worker stops itself before this).
 */
export const DEAD_PEER_DROP_SECONDS = DEAD_PEER.keepalivesIdleSeconds + DEAD_PEER.keepalivesIntervalSeconds * DEAD_PEER.keepalivesCount;

/** As PostgreSQL settings: a server's parameters, or a session's (every one of them can be set by any role). */
export const DEAD_PEER_SETTINGS: Readonly<Record<string, number>> = {
  tcp_keepalives_idle: DEAD_PEER.keepalivesIdleSeconds,
  tcp_keepalives_interval: DEAD_PEER.keepalivesIntervalSeconds,
  tcp_keepalives_count: DEAD_PEER.keepalivesCount,
  tcp_user_timeout: DEAD_PEER.userTimeoutMs,
  client_connection_check_interval: DEAD_PEER.connectionCheckIntervalMs,
};

/** The client's side in libpq's connection keywords (citus.node_conninfo): a worker that went silent is given up. */
export const DEAD_PEER_CONNINFO = [
  "keepalives=1",
  `keepalives_idle=${DEAD_PEER.keepalivesIdleSeconds}`,
  `keepalives_interval=${DEAD_PEER.keepalivesIntervalSeconds}`,
  `keepalives_count=${DEAD_PEER.keepalivesCount}`,
  `tcp_user_timeout=${DEAD_PEER.nodeLinkUserTimeoutMs}`,
].join(" ");

/** The settings as a connection's startup `options` (`-c name=value ...`): the server applies them to that session. */
export function deadPeerStartupOptions(): string {
  return Object.entries(DEAD_PEER_SETTINGS)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(" ");
}

/**
 * Connections a pool may close while their server sessions may still be busy, per connection of the pool: at most a
 * quarter more sessions than the pool holds. A Citus coordinator that has lost a worker answers nothing on a session
 * for up to `nodeLinkUserTimeoutMs` after reporting a statement's error: it cancels the statement on the worker with
 * libpq's blocking PQcancel. The tenant service answers such a request at once and closes its connection to free
 * the pool slot (services/tenant-service/src/db/postgres.ts); the session it leaves on the coordinator lasts up to
 * that long. Without a bound, a busy replica would leave sessions faster than they end and fill the coordinator's
 * max_connections, failing every tenant; past it, the connection is kept out of the pool, busy, until the server
 * answers, and then given back.
 * config/src/throughput.ts counts these sessions in the coordinator's connections.
 */
export const RETIRED_PER_POOL_CONNECTION = 0.25;

/** How many connections a pool of `poolSize` may have closed and still busy on the server: at least one. */
export function retiredConnectionBudget(poolSize: number): number {
  return Math.max(1, Math.floor(poolSize * RETIRED_PER_POOL_CONNECTION));
}

/**
 * A pool's connections kept from any one Citus node's tenants, per connection of the pool: at least one. The tenant
 * service bounds the transactions in flight for the tenants of each node group (services/tenant-service/src/db/
 * node-bulkhead.ts), so a lost worker, whose tenants' transactions each hold a connection for the statement timeout,
 * cannot take the whole pool: every other node's tenants keep this share. A node quarantined after its coordinator
 * sessions stopped answering (a ROLLBACK left unanswered, as above) gets one connection until `nodeLinkUserTimeoutMs`
 * after the last such sign.
 */
export const RESERVED_FROM_ANY_NODE = 0.25;

/** How many of a pool's connections one node group's tenants may hold at once: all but the reserve, at least one. */
export function nodeConnectionCap(poolSize: number): number {
  return Math.max(1, poolSize - Math.max(1, Math.ceil(poolSize * RESERVED_FROM_ANY_NODE)));
}
