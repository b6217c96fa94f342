import pg from "pg";
import { readShardMap } from "@platform/citus";
import { DEAD_PEER, deadPeerStartupOptions, nodeConnectionCap, retiredConnectionBudget } from "@platform/config/dead-peers";
import { NodeBulkhead, type NodePass } from "./node-bulkhead.js";
import { contextStatements, isTenantRowStatement, type Database, type Queryable, type TenantContext, type Transaction } from "./database.js";

export interface PostgresOptions {
  readonly url: string;
  readonly password?: string;
  readonly ssl?: pg.PoolConfig["ssl"];
  readonly poolSize: number;
  readonly statementTimeoutMs?: number;
  /** How its sessions are named in pg_stat_activity. @default "tenant-service" */
  readonly applicationName?: string;
  /** Connections it may close while the server may still be busy on them. @default retiredConnectionBudget(poolSize) */
  readonly retiredConnectionBudget?: number;
  /**
   * On Citus, the connections one node group's tenants may hold at once (db/node-bulkhead.ts); 0 turns the bound off.
   * @default nodeConnectionCap(poolSize)
   */
  readonly nodeConnectionCap?: number;
}

/**
 * How long a failed transaction waits for its ROLLBACK before the request is answered without it. A server that is
 * well answers a ROLLBACK at once; one that does not is still busy with the failed statement. On a Citus coordinator
 * that is the normal case when a worker is lost: after reporting the error (the statement timeout, or the worker's
 * connection timing out), the backend cancels the statement on the worker with libpq's blocking PQcancel, which only
 * the tcp_user_timeout of its connections to the workers ends (15 s, nodeLinkUserTimeoutMs in
 * config/src/dead-peers.ts; measured by infra/test/citus-dead-worker.test.ts). Waiting for it would hold the request
 * that long, and with it its pool slot: with every request to the lost worker's tenants doing the same, the pool
 * drains and every tenant waits.
 *
 * The connection is then closed, which frees the pool slot at once, while the pool's budget of closed connections
 * still busy on the server allows (retiredConnectionBudget: their sessions stay on the coordinator until the cancel
 * ends, and must not fill its max_connections); past the budget it stays out of the pool, busy, until the server
 * answers the ROLLBACK, and is released then.
 */
export const ROLLBACK_WAIT_MS = 2_000;

/** How old the node bulkhead's shard map may get before it is read again: shard moves are rare and take minutes. */
export const NODE_MAP_REFRESH_MS = 30_000;
/** How long a transaction waits for a connection: the pool's own wait, and the node bulkhead's. */
const CONNECTION_WAIT_MS = 5_000;

/**
 * How much longer than the statement timeout a statement's answer may take before the server is taken for gone: the
 * connection is then closed (pg's query_timeout; in pipeline mode it destroys the connection) and the request
 * answered 503. A server that is there answers the statement timeout's error within milliseconds; one that went
 * silent (its VM lost, the network cut) never does, and without this bound the request and its pool slot waited for
 * TCP's retransmissions to give up, about 15 minutes (test/lost-database.test.ts: still waiting after 150 s). The
 * server-side settings (DEAD_PEER) end the server's half; this ends ours.
 */
export const SERVER_ANSWER_MARGIN_MS = 5_000;

/** PostgreSQL or a Citus coordinator, through a pg pool. */
export function createPostgresDatabase(options: PostgresOptions): Database & { pool: pg.Pool } {
  const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
  const pool = new pg.Pool({
    connectionString: options.url,
    password: options.password,
    ssl: options.ssl,
    max: options.poolSize,
    application_name: options.applicationName ?? "tenant-service",
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: CONNECTION_WAIT_MS,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + SERVER_ANSWER_MARGIN_MS,
    // The server drops a session of this process within a minute of it going silent (config/src/dead-peers.ts).
    options: deadPeerStartupOptions(),
    // pg >= 8.23: queries issued without awaiting the previous one go out at once (see transaction()).
    ...({ pipeline: true } as object),
  });
  // An idle client's connection dropping (failover, restart) must not crash the process; the pool replaces it.
  pool.on("error", () => {});

  // Connections closed by a failed transaction whose ROLLBACK did not come back in time: each may leave a busy session
  // on the server until the coordinator's cancel ends (DEAD_PEER.nodeLinkUserTimeoutMs). Each counts for the longer
  // userTimeoutMs: a margin, so the budget holds against a coordinator slower to give up than ours.
  const retiredBudget = options.retiredConnectionBudget ?? retiredConnectionBudget(options.poolSize);
  let retired = 0;
  let heldBusy = 0;
  const retire = () => {
    retired += 1;
    setTimeout(() => (retired -= 1), DEAD_PEER.userTimeoutMs).unref();
  };

  // Whether this is a Citus coordinator (contextStatements: SET LOCAL must go first there), asked once; a failed
  // question is asked again by the next transaction.
  let citus: Promise<boolean> | undefined;
  const isCitus = (): Promise<boolean> =>
    (citus ??= pool.query<{ citus: boolean }>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus").then(
      (r) => r.rows[0]!.citus,
      (error: unknown) => {
        citus = undefined;
        throw error;
      },
    ));

  const listened = new WeakSet<pg.PoolClient>();
  const nodeCap = options.nodeConnectionCap ?? nodeConnectionCap(options.poolSize);
  const nodes =
    nodeCap > 0
      ? new NodeBulkhead({ cap: nodeCap, waitMs: CONNECTION_WAIT_MS, quarantineMs: DEAD_PEER.nodeLinkUserTimeoutMs, refreshMs: NODE_MAP_REFRESH_MS, readMap: () => readShardMap(pool) })
      : undefined;

  return {
    kind: "postgres",
    pool,
    async transaction<T>(context: TenantContext, work: (tx: Transaction) => Promise<T>): Promise<T> {
      const citusTenant = context.tenantId !== undefined && (await isCitus());
      const statements = contextStatements(context, { citus: citusTenant });
      // On Citus, a tenant's transaction first takes a place among its node's (db/node-bulkhead.ts), then a connection.
      // A registry change writes platform.tenants, a reference table on every node: it takes no node's place, and is
      // refused at once while a node is quarantined (it could only hang there, then fail).
      if (citusTenant && context.registry) nodes?.enterEveryNode();
      const pass: NodePass = citusTenant && !context.registry && nodes ? await nodes.enter(context.tenantId!) : { release() {}, troubled() {} };
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        pass.release();
        throw error;
      }
      // A connection that dies while checked out (closed on a query_timeout, or by the server) emits 'error' on its
      // client, which the pool listens for only while the client is idle: unheard, it would end the process. The
      // failure reaches the transaction through its queries anyway.
      if (!listened.has(client)) {
        listened.add(client);
        client.on("error", () => {});
      }
      let broken: Error | undefined;
      let released = false;
      // BEGIN and the SET LOCALs are sent without waiting for their answers (pg's pipeline mode): the work's first
      // statement follows them on the wire, and PostgreSQL runs them in order, so it still runs inside the
      // transaction and under the tenant context. Each is still its own Query message, which is what Citus needs
      // to forward SET LOCAL to the workers. A point read is two round trips instead of four.
      const flush = corkUntilFlushed(client);
      const answers = [client.query("BEGIN"), ...statements.map((statement) => client.query(statement))];
      const opened = Promise.all(answers);
      opened.catch(() => {}); // surfaced below, by the first statement or before COMMIT
      const rowAt = statements.findIndex(isTenantRowStatement);
      const tenantRow = rowAt === -1 ? undefined : answers[rowAt + 1]!.then((r) => r.rows[0] as Record<string, unknown> | undefined);
      tenantRow?.catch(() => {}); // the same failure as `opened`'s, reported there
      const tx: Transaction = {
        ...(tenantRow ? { tenantRow } : {}),
        async query(sql, params) {
          const result = client.query(sql, params as unknown[]);
          flush();
          result.catch(() => {}); // a failed BEGIN or SET LOCAL is the error to report, not this one
          // Answers arrive in order: when this statement's is here, the opening ones have been answered. If one
          // failed, the statement ran in an aborted transaction or without context; its result is never used.
          await opened;
          return (await result) as Awaited<ReturnType<Queryable["query"]>>;
        },
      } as Transaction;
      try {
        const result = await work(tx).finally(flush);
        await opened;
        await client.query("COMMIT");
        return result;
      } catch (error) {
        // A connection whose ROLLBACK fails is destroyed rather than handed, mid-transaction, to the next request.
        const rolledBack = rollBack(client);
        const outcome = await within(rolledBack, ROLLBACK_WAIT_MS);
        // Unanswered: the coordinator is cancelling on a worker it cannot reach, so that node's tenants get one connection.
        if (outcome === LATE) pass.troubled();
        if (outcome !== LATE) broken = outcome;
        else if (retired < retiredBudget) {
          retire();
          broken = new Error(`ROLLBACK not answered within ${ROLLBACK_WAIT_MS} ms: the connection is closed`);
        } else {
          // Over the budget: answer the request now, and give the connection back when the server is done with it.
          heldBusy += 1;
          released = true;
          void rolledBack.then((failure) => {
            heldBusy -= 1;
            client.release(failure);
            pass.release();
          });
        }
        throw error;
      } finally {
        if (!released) {
          client.release(broken);
          pass.release();
        }
      }
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: options.poolSize, retired, heldBusy, nodesQuarantined: nodes?.quarantined() ?? 0 }),
    async close() {
      await pool.end();
    },
  };
}

/**
 * Holds the connection's writes so BEGIN, the SET LOCALs and the first statement leave in one write (one syscall,
 * one wake-up of the backend), as pg itself does for the messages of one extended-protocol query. The returned
 * flush is idempotent, and runs on the next tick anyway in case the work sends nothing synchronously.
 */
function corkUntilFlushed(client: pg.PoolClient): () => void {
  const stream = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream;
  if (!stream?.cork || !stream.uncork) return () => {};
  stream.cork();
  let flushed = false;
  const flush = () => {
    if (flushed) return;
    flushed = true;
    stream.uncork!();
  };
  process.nextTick(flush);
  return flush;
}

const LATE = Symbol("late");

/** The promise's value, or LATE if it has none within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(resolve, ms, LATE);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * A ROLLBACK may wait for a Citus coordinator that is cancelling on a lost worker (up to its link's timeout, see
 * ROLLBACK_WAIT_MS) longer than a statement waits: past that and the margin, the server is taken for gone.
 */
const ROLLBACK_ANSWER_MS = DEAD_PEER.nodeLinkUserTimeoutMs + SERVER_ANSWER_MARGIN_MS;

/** Rolls back the client's transaction; resolves with why the connection must not be reused, if it must not. */
function rollBack(client: pg.PoolClient): Promise<Error | undefined> {
  return client.query({ text: "ROLLBACK", query_timeout: ROLLBACK_ANSWER_MS } as pg.QueryConfig).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
}
