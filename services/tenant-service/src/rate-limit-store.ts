import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { Redis } from "ioredis";

/**
 * A fixed-window per-key limit kept in Redis, shared by every replica, where a replica reserves a lease of several
 * requests at once and admits them locally, instead of a Redis round trip per request.
 *
 * Why: the round trip was the largest cost the limiter added to a request (about 15% of a point read's CPU in
 * `pnpm bench:tenant`, and one more wait on every request's path). With leases a busy tenant costs one Redis call
 * per lease, and a tenant past its limit none at all until the window ends.
 *
 * What it guarantees, and what it gives up:
 * - Never more than `max` admitted per window across all replicas: Redis counts reservations, and a lease is
 *   granted atomically only from what is left.
 * - A lease is a tenth of what is left (at least 1, at most 100), so leases shrink as the window fills: the
 *   last 19 requests of a window go one per lease, which is exact.
 * - The cost: a replica's unused lease is lost for that window. A tenant can be refused while another replica that
 *   no longer receives its traffic holds a few of its requests; load balancing spreads a tenant's traffic across the
 *   replicas, so leases are used, and the window ends the loss.
 * - `RateLimit-Remaining` is the limit less every replica's reservations as of this replica's last lease: other
 *   replicas' unused leases count as used, and what they reserved since is not seen yet.
 * - A tenant's limit may change within a window (plans.ts). Raised, a window this replica saw used up is asked of
 *   Redis again at once, against the new limit. Lowered, what a replica still holds of its lease is admitted (at most
 *   a tenth of what was left, 100 at most), and Redis grants nothing more past the new limit.
 */
/** Where the service keeps its rate-limit counts in Redis. */
export const RATE_LIMIT_PREFIX = "tenant-service:rate:";
/** A tenant's rate-limit key, under the prefix: the erasure job (worker/erasure.ts) removes it. */
export const tenantRateKey = (tenantId: string): string => `tenant:${tenantId}`;

/** The most requests one lease reserves. */
const LEASE_CAP = 100;
/** A lease is what is left divided by this (at least 1). */
const LEASE_DIVISOR = 10;

/** What a renewal came to: a lease, a window with nothing left, or Redis failing (the plugin then skips). */
export type RenewalResult = "granted" | "exhausted" | "error";

export interface LeaseStoreOptions {
  /** Called once per renewal asked of Redis: the metrics count them, so Redis's load from the limiter is visible. */
  readonly onRenewal?: (result: RenewalResult) => void;
}

// Atomic: read what is reserved, grant a lease from what is left, start the window's expiry when the key is new.
// Returns { reserved after the grant, granted, the window's remaining milliseconds }.
const LEASE_SCRIPT = `
local key = KEYS[1]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local divisor = tonumber(ARGV[4])
local reserved = tonumber(redis.call('GET', key) or '0')
local left = max - reserved
local granted = 0
if left > 0 then
  granted = math.min(cap, math.max(1, math.floor(left / divisor)), left)
  reserved = redis.call('INCRBY', key, granted)
end
local ttl = redis.call('PTTL', key)
if ttl < 0 then
  redis.call('PEXPIRE', key, window)
  ttl = window
end
return {reserved, granted, ttl}
`;

interface Lease {
  /** Reserved in Redis for the window, by every replica, when this lease was granted. */
  readonly reserved: number;
  /** Of this replica's lease, not yet admitted. */
  remaining: number;
  /** Redis had nothing left to grant: refuse locally until the window ends, or until the limit is raised. */
  readonly exhausted: boolean;
  /** The limit the lease was granted under: a tenant's limit can change within a window (plans.ts). */
  readonly max: number;
  readonly windowEnd: number;
}

type LeaseCommand = (key: string, window: number, max: number, cap: number, divisor: number) => Promise<[number, number, number]>;
type Result = { current: number; ttl: number };

class LeasedRedisStore implements FastifyRateLimitStore {
  private readonly leases = new Map<string, Lease>();
  private readonly renewing = new Map<string, Promise<void>>();
  private renewalsSinceSweep = 0;
  private sweepAfter = 1000;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly onRenewal: (result: RenewalResult) => void,
  ) {
    if (!(redis as unknown as { rateLease?: unknown }).rateLease) redis.defineCommand("rateLease", { numberOfKeys: 1, lua: LEASE_SCRIPT });
  }

  incr(key: string, callback: (error: Error | null, result?: Result) => void, timeWindow: number, max: number): void {
    const k = this.prefix + key;
    // Most requests are answered here, synchronously, from the replica's lease.
    const local = this.fromLease(k, Date.now(), max);
    if (local) return callback(null, local);
    this.take(k, timeWindow, max).then(
      (result) => callback(null, result),
      (error: Error) => callback(error),
    );
  }

  /** Leases held, for tests and debugging: ended windows are swept away as renewals go on. */
  get activeLeases(): number {
    return this.leases.size;
  }

  // A route with its own limit counts under its own keys, as the plugin's RedisStore does.
  child(routeOptions: Parameters<FastifyRateLimitStore["child"]>[0]): FastifyRateLimitStore {
    // The plugin passes the route's merged options, routeInfo included, though its types leave that out.
    const route = (routeOptions as { routeInfo?: { method?: string; url?: string } }).routeInfo ?? {};
    return new LeasedRedisStore(this.redis, `${this.prefix}${route.method}${route.url}-`, this.onRenewal);
  }

  private fromLease(k: string, now: number, max: number): Result | undefined {
    const lease = this.leases.get(k);
    if (!lease || now >= lease.windowEnd) return undefined;
    // A window used up under a lower limit than the tenant's now: ask Redis again, which counts against the new one.
    if (lease.exhausted && max > lease.max) return undefined;
    const ttl = lease.windowEnd - now;
    if (lease.remaining > 0) {
      lease.remaining -= 1;
      return { current: lease.reserved - lease.remaining, ttl };
    }
    return lease.exhausted ? { current: lease.reserved + 1, ttl } : undefined;
  }

  private async take(k: string, timeWindow: number, max: number): Promise<Result> {
    // Each pass either admits from a lease, refuses on an exhausted window, or renews. A renewal grants at least
    // one request or marks the window exhausted, so waiting requests make progress; they loop only when others
    // used a fresh lease first.
    for (;;) {
      const result = this.fromLease(k, Date.now(), max);
      if (result) return result;
      await this.renew(k, timeWindow, max);
    }
  }

  // One renewal per key at a time: the requests that find the lease empty while it is out wait for the same one.
  private renew(k: string, timeWindow: number, max: number): Promise<void> {
    const inFlight = this.renewing.get(k);
    if (inFlight) return inFlight;
    const command = (this.redis as unknown as { rateLease: LeaseCommand }).rateLease;
    const renewal = command
      .call(this.redis, k, timeWindow, max, LEASE_CAP, LEASE_DIVISOR)
      .then(
        ([reserved, granted, ttl]) => {
          this.onRenewal(granted > 0 ? "granted" : "exhausted");
          this.leases.set(k, { reserved, remaining: granted, exhausted: granted === 0, max, windowEnd: Date.now() + Math.max(1, ttl) });
          // A sweep walks every lease, so it waits for as many renewals as the last one kept: constant work per
          // renewal however many tenants are active.
          if (++this.renewalsSinceSweep >= this.sweepAfter) this.sweep();
        },
        (error: unknown) => {
          this.onRenewal("error");
          throw error;
        },
      )
      .finally(() => this.renewing.delete(k));
    this.renewing.set(k, renewal);
    return renewal;
  }

  // Leases of ended windows are dead weight: drop them now and then, so the map holds only active keys.
  private sweep(): void {
    this.renewalsSinceSweep = 0;
    const now = Date.now();
    for (const [k, lease] of this.leases) if (now >= lease.windowEnd) this.leases.delete(k);
    this.sweepAfter = Math.max(1000, this.leases.size);
  }
}

/** The store for `@fastify/rate-limit`'s `store` option: leases from `redis`, keys under `prefix`. */
export function leasedRedisStore(redis: Redis, prefix: string, options: LeaseStoreOptions = {}): FastifyRateLimitStoreCtor {
  const onRenewal = options.onRenewal ?? (() => {});
  return class extends LeasedRedisStore {
    constructor(_options: FastifyRateLimitOptions) {
      super(redis, prefix, onRenewal);
    }
  };
}
