/**
 * The jobs of a worker that died (SIGKILL, an OOM kill, its node lost) go back to the queue within minutes, not the
 * 4 hours after which graphile-worker releases them by itself. Until then a tenant's erasure, its export or a rollup
 * batch would wait that long for an operator (docs/runbooks/worker-jobs.md).
 *
 * How a worker is known dead: each worker process holds one connection of its own (its liveness session) with a
 * session advisory lock on a random key, and records each of its graphile-worker ids with that key. A key whose lock
 * can be taken by someone else belongs to a session that ended. An advisory lock is used, not pg_stat_activity: a
 * role sees other sessions' start times only for roles it is a member of, and a hidden one must not read as dead.
 *
 * Why releasing is safe (a job must never run in two workers at once):
 * - a killed process's sockets are closed by its kernel, so its sessions end at once and nothing of it can commit;
 * - a worker that cannot reach its liveness session (a network cut, the session terminated) exits within
 *   `pingMs` + `pingTimeoutMs` (40 s) of the last answer it had, its transactions with it; the server drops a silent
 *   session only after its TCP keepalives fail, DEAD_PEER_DROP_SECONDS (60 s) after the last thing it heard
 *   (config/src/dead-peers.ts: every session of the worker asks for that), and the sweep releases 60 s after it first
 *   finds it so (WORKER_DEAD_RELEASE_SECONDS): 80 s to spare, and the order is proven with a real network cut
 *   (test/partition.test.ts);
 * - a key found free is first marked, and released only `releaseAfterSeconds` later if still free;
 * - a worker id that was never recorded (a worker of an older release) is never released here: the 4 hours apply.
 */
import type { Queryable } from "../db/database.js";
import { randomBytes } from "node:crypto";
import { DEAD_PEER_DROP_SECONDS, deadPeerStartupOptions } from "@platform/config/dead-peers";
import pg from "pg";

export const DEAD_WORKERS_TASK = "queue.release-dead-workers";
/** WORKER_DEAD_RELEASE_SECONDS's default: how long after a worker is first found dead its jobs are released. */
export const DEAD_WORKER_RELEASE_SECONDS = 60;
export const WORKER_SESSIONS = "graphile_worker.platform_worker_sessions";

/** Created with the queue (worker --install-queue), owned by the queue role like graphile-worker's own tables. */
export const WORKER_SESSIONS_DDL = `CREATE TABLE IF NOT EXISTS ${WORKER_SESSIONS} (
  worker_id     text PRIMARY KEY,
  lock_key      bigint NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  gone_since    timestamptz
)`;

export interface LivenessSession {
  /** Records a graphile-worker id as this process's (its jobs are released if the process dies). */
  register(workerId: string): Promise<void>;
  /** Graceful end: the ids are removed (graphile-worker has released their jobs), the session closed. */
  stop(): Promise<void>;
}

export interface LivenessOptions {
  /** How often the session is pinged. @default 10000 */
  readonly pingMs?: number;
  /**
   * A ping unanswered this long ends the process. Long enough that a busy database does not kill its workers, short
   * enough that a cut-off worker is gone well before the server drops its session. @default 30000
   */
  readonly pingTimeoutMs?: number;
  /** Called once when the session is lost: the process must stop at once (worker.ts exits). */
  readonly onLost: (reason: string) => void;
  readonly warn: (message: string) => void;
}

/**
 * Opens the liveness session, or returns undefined (with a warning) when the queue was installed before the sessions
 * table existed: the worker then runs as before, its dead jobs waiting graphile-worker's 4 hours.
 */
export async function holdLivenessSession(connection: pg.ClientConfig, options: LivenessOptions): Promise<LivenessSession | undefined> {
  const pingMs = options.pingMs ?? 10_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 30_000;
  // A cut-off worker must be gone before the server lets go of its lock, or its jobs could run twice.
  if (pingMs + pingTimeoutMs >= DEAD_PEER_DROP_SECONDS * 1000) {
    throw new Error(`the liveness ping (${pingMs} + ${pingTimeoutMs} ms) must end a cut-off worker before the server drops its session (${DEAD_PEER_DROP_SECONDS} s)`);
  }
  // The keepalive settings whatever the caller's connection carries: the margin above depends on them.
  const client = new pg.Client({ ...connection, options: deadPeerStartupOptions(), application_name: "tenant-worker-liveness", query_timeout: pingTimeoutMs });
  let stopping = false;
  let lost = false;
  const lose = (reason: string) => {
    if (stopping || lost) return;
    lost = true;
    options.onLost(reason);
  };
  client.on("error", (error) => lose(`its liveness session failed: ${error.message}`));
  client.on("end", () => lose("its liveness session ended"));
  await client.connect();
  const { rows } = await client.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [WORKER_SESSIONS]);
  if (rows[0]?.t === null) {
    stopping = true;
    await client.end();
    options.warn(`${WORKER_SESSIONS} is missing: run worker --install-queue as the migration role. Until then a dead worker's jobs wait 4 hours (docs/runbooks/worker-jobs.md)`);
    return undefined;
  }
  const key = randomBytes(8).readBigInt64BE(0).toString();
  await client.query("SELECT pg_advisory_lock($1::bigint)", [key]);
  const ids: string[] = [];
  // One ping at a time: a slow answer is waited for (up to the timeout), not queued behind.
  let pinging = false;
  const ping = setInterval(() => {
    if (pinging) return;
    pinging = true;
    client
      .query("SELECT 1")
      .catch((error: Error) => lose(`its liveness session did not answer: ${error.message}`))
      .finally(() => (pinging = false));
  }, pingMs);
  ping.unref();
  return {
    async register(workerId) {
      ids.push(workerId);
      await client.query(
        `INSERT INTO ${WORKER_SESSIONS} (worker_id, lock_key) VALUES ($1, $2::bigint)
         ON CONFLICT (worker_id) DO UPDATE SET lock_key = EXCLUDED.lock_key, registered_at = now(), gone_since = NULL`,
        [workerId, key],
      );
    },
    async stop() {
      stopping = true;
      clearInterval(ping);
      await client.query(`DELETE FROM ${WORKER_SESSIONS} WHERE worker_id = ANY($1::text[])`, [ids]).catch(() => {});
      await client.end().catch(() => {});
    },
  };
}

export interface Released {
  /** Worker ids found dead this run, released later if still dead. */
  readonly marked: number;
  /** Worker processes whose ids were released (each process records one id per slot). */
  readonly processes: number;
  /** Worker ids released, and how many jobs they held. */
  readonly workers: string[];
  readonly jobs: number;
}

/**
 * One sweep, in one transaction on the queue's database: marks the recorded workers whose liveness lock is free, and
 * releases the jobs of those marked at least `releaseAfterSeconds` ago whose lock is still free.
 */
export async function releaseDeadWorkers(tx: Queryable, releaseAfterSeconds: number): Promise<Released> {
  // pg_try_advisory_xact_lock takes the key until this transaction ends: a free key is a session that ended (keys are
  // random per process, and no live process takes one that is not its own).
  const marked = await tx.query(
    `UPDATE ${WORKER_SESSIONS} SET gone_since = now() WHERE gone_since IS NULL AND pg_try_advisory_xact_lock(lock_key)`,
  );
  const { rows } = await tx.query<{ worker_id: string; lock_key: string }>(
    `DELETE FROM ${WORKER_SESSIONS}
      WHERE gone_since < now() - make_interval(secs => $1) AND pg_try_advisory_xact_lock(lock_key)
      RETURNING worker_id, lock_key`,
    [releaseAfterSeconds],
  );
  const workers = rows.map((r) => r.worker_id).sort();
  const processes = new Set(rows.map((r) => r.lock_key)).size;
  if (workers.length === 0) return { marked: marked.rowCount ?? 0, processes, workers, jobs: 0 };
  const held = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE locked_by = ANY($1::text[])", [workers]);
  await tx.query("SELECT graphile_worker.force_unlock_workers($1::text[])", [workers]);
  return { marked: marked.rowCount ?? 0, processes, workers, jobs: held.rows[0]!.n };
}
