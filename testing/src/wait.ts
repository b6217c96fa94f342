/** What `waitFor` is waiting for: undefined or false means not yet; anything else is the value it returns. */
export type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

export interface WaitOptions {
  /** How long to keep trying before giving up (default 30 s): every wait in a test ends by itself. */
  readonly timeoutMs?: number;
  /** The pause between two tries (default 50 ms). */
  readonly intervalMs?: number;
  /** Appended to the timeout's message: what the test saw last (a log tail, a count), for whoever reads the failure. */
  readonly detail?: () => string | Promise<string>;
}

/**
 * Tries `probe` until it returns a value (neither undefined nor false) and returns that value. After `timeoutMs`
 * without one it throws `timed out after N ms waiting for <what>`, so a failure names what never happened instead of
 * surfacing later as an unrelated assertion. A probe that throws ends the wait with its error.
 */
export async function waitFor<T>(what: string, probe: Probe<T>, options: WaitOptions = {}): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) {
      const detail = options.detail ? `: ${await options.detail()}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}
