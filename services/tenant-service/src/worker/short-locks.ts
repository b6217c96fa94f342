import type { JobHelpers } from "graphile-worker";
import type { Database, Queryable, TenantContext } from "../db/database.js";

export interface ShortLockOptions {
  /** How long a statement waits for a lock before giving it up (lock_timeout). */
  readonly lockTimeoutMs: number;
  /** Tries before the job fails (and graphile-worker retries it later). */
  readonly attempts: number;
}

/**
 * Runs `work` in one transaction that waits at most `lockTimeoutMs` for any lock, and on a lock timeout (55P03) tries
 * again after a growing pause. A worker's statement queued behind a long transaction would queue every later writer
 * of that table behind itself; giving up the wait lets those writes through in the pause.
 */
export async function withShortLocks<T>(
  db: Database,
  context: Omit<TenantContext, "lockTimeoutMs">,
  work: (tx: Queryable) => Promise<T>,
  helpers: Pick<JobHelpers, "logger">,
  what: string,
  options: ShortLockOptions,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction({ ...context, lockTimeoutMs: options.lockTimeoutMs }, work);
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03" || attempt >= options.attempts) throw error;
      const pause = Math.min(5_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
      helpers.logger.info(`${what} busy (lock not granted in ${options.lockTimeoutMs} ms, attempt ${attempt} of ${options.attempts}): trying again in ${Math.round(pause)} ms`);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
