/**
 * A tenant's effective limits (plans.ts), applied to each request in this replica:
 *
 * - **Concurrent requests**: a tenant has at most `concurrentRequests` requests in flight here (never more than half
 *   the replica's database pool, whatever the plan says), so one tenant flooding the service holds a bounded share
 *   of the pool and the others' requests still find connections. One more is refused at once with 429 and
 *   Retry-After, before it reads anything: a refused request costs no database work.
 * - **Requests a minute**: the `max` the rate-limit plugin (tenant-context.ts) uses for the tenant's window.
 *
 * Both need the tenant's row, which a request naming its tenant by id may not have before its transaction reads it
 * (TenantAccess, tenant-scope.ts: at a million tenants most requests miss the cache, and a lookup of their own cost
 * throughput). So:
 * - a row this replica holds (cached, or just read by another request of the tenant still in flight here) decides
 *   before the request runs;
 * - with none, the request is the tenant's only one in flight here (its *pioneer*): a cap is at least 1, so it cannot
 *   be over it, and the rate limit is charged when its transaction has read the row (learn(), from
 *   routes/context.ts), before any answer: a refusal then rolls the transaction back. Requests of the same tenant
 *   that arrive meanwhile wait for that row (one round trip) instead of running unjudged, so a burst against a cold
 *   tenant cannot slip past the cap.
 *
 * A tenant's limits bound its own callers. A platform administrator acting on a tenant is counted as itself
 * (PLATFORM_REQUESTS_PER_MINUTE) and never refused for the tenant's requests in flight: it can always suspend a
 * tenant that floods, or raise the limit of one that has spent it.
 *
 * How late a change arrives: the row that decides is at most TENANT_CACHE_TTL_MS old when cached, and otherwise the
 * newest one a request of the tenant in flight here read; every admitted request reads or brings a fresh one, so a
 * limit changed through another replica applies here within TENANT_CACHE_TTL_MS plus one request's duration
 * (test/tenant-limits.test.ts). Through this replica: at once (changed()).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "./errors.js";
import { effectiveLimits, type Limits } from "./plans.js";
import type { TenantRecord } from "./repositories/tenants.js";

/** Seconds a request refused for concurrency is told to wait: the tenant's requests in flight end well within it. */
export const CONCURRENCY_RETRY_AFTER_SECONDS = 1;
/** Requests a minute for a caller acting on no tenant (a platform administrator creating or listing tenants). */
export const PLATFORM_REQUESTS_PER_MINUTE = 6_000;

export interface TenantLimiterOptions {
  /** The replica's database pool: no tenant may hold more than half of it. */
  readonly poolSize: number;
  /** The rate-limit window (RATE_LIMIT_WINDOW_MS): a tenant's requests a minute are scaled to it. */
  readonly windowMs: number;
  /**
   * RATE_LIMIT_MAX: a flat limit, every tenant's requests per window instead of its own, and no concurrency cap.
   * Benchmarks and some tests measure the service without tenant limits this way; production leaves it unset.
   */
  readonly flatRateLimit?: number;
  /** A request refused for concurrency (for the metrics). */
  readonly onRefused?: () => void;
}

type RateCheck = ReturnType<FastifyInstance["createRateLimit"]>;

/** One tenant's requests in flight in this replica. */
interface InFlight {
  active: number;
  /** The newest limits a request of the tenant brought or read; gone with the last request. */
  limits?: Limits;
  /** While the pioneer's transaction reads the row: the others wait on it. */
  learning?: Promise<void>;
  learned?: () => void;
}

/** One admitted request. */
interface Ticket {
  readonly tenantId: string;
  limits?: Limits;
  /** Admitted without the row: its rate limit is charged when its transaction has read it. */
  rateDeferred: boolean;
  released: boolean;
  headers?: Record<string, string>;
}

export class TenantLimiter {
  private readonly tenants = new Map<string, InFlight>();
  private readonly tickets = new WeakMap<FastifyRequest, Ticket>();
  private rateCheck?: RateCheck;

  constructor(private readonly options: TenantLimiterOptions) {}

  /** The rate-limit plugin's own check, used for a pioneer once its row is known (tenant-context.ts). */
  useRateCheck(check: RateCheck): void {
    this.rateCheck = check;
  }

  /** A tenant's concurrency cap in this replica. */
  capOf(limits: Limits): number {
    return Math.max(1, Math.min(limits.concurrentRequests, Math.floor(this.options.poolSize / 2)));
  }

  /** Requests a tenant may make per rate-limit window. */
  perWindow(limits: Limits): number {
    return Math.max(1, Math.ceil((limits.requestsPerMinute * this.options.windowMs) / 60_000));
  }

  /** The rate-limit plugin's `max` for this request. */
  requestsPerWindow(request: FastifyRequest): number {
    if (this.options.flatRateLimit !== undefined) return this.options.flatRateLimit;
    const limits = this.tickets.get(request)?.limits;
    return limits ? this.perWindow(limits) : Math.max(1, Math.ceil((PLATFORM_REQUESTS_PER_MINUTE * this.options.windowMs) / 60_000));
  }

  /** The rate-limit plugin skips a pioneer: its limit is not known yet, and learn() charges it. */
  rateDeferred(request: FastifyRequest): boolean {
    return this.tickets.get(request)?.rateDeferred === true;
  }

  /** Admits a tenant-scoped request or refuses it (429), before it reads anything. */
  async admit(request: FastifyRequest): Promise<void> {
    if (this.options.flatRateLimit !== undefined || request.principal?.isPlatformAdmin) return;
    const access = request.tenant!;
    const id = access.id;
    const known = access.record ? effectiveLimits(access.record) : undefined;
    for (;;) {
      const entry = this.tenants.get(id);
      const limits = known ?? entry?.limits;
      if (limits) {
        if (entry && entry.active >= this.capOf(limits)) {
          this.options.onRefused?.();
          throw new AppError(
            429,
            "too_many_concurrent_requests",
            `this tenant already has ${entry.active} requests in flight on this replica, its limit (${this.capOf(limits)}); retry after ${CONCURRENCY_RETRY_AFTER_SECONDS} s`,
            { "retry-after": String(CONCURRENCY_RETRY_AFTER_SECONDS) },
          );
        }
        const current = entry ?? this.track(id);
        current.active += 1;
        if (known) this.settle(current, known);
        this.tickets.set(request, { tenantId: id, limits, rateDeferred: false, released: false });
        return;
      }
      if (entry?.learning) {
        await entry.learning;
        continue;
      }
      // The tenant's only request here, or the pioneers before it left without a row: this one reads it.
      const pioneer = entry ?? this.track(id);
      pioneer.active += 1;
      pioneer.learning = new Promise((resolve) => (pioneer.learned = resolve));
      this.tickets.set(request, { tenantId: id, rateDeferred: true, released: false });
      return;
    }
  }

  /**
   * The tenant's row, read for this request (in its transaction, or looked up): refreshes the limits every request
   * of the tenant here is judged by, and charges a pioneer's rate limit (429, which rolls its transaction back).
   */
  async learn(request: FastifyRequest, record: TenantRecord): Promise<void> {
    const ticket = this.tickets.get(request);
    if (!ticket) return;
    const limits = effectiveLimits(record);
    ticket.limits = limits;
    const entry = this.tenants.get(ticket.tenantId);
    if (entry && !ticket.released) this.settle(entry, limits);
    if (!ticket.rateDeferred) return;
    ticket.rateDeferred = false;
    const result = await this.rateCheck?.(request);
    if (!result || result.isAllowed) return;
    const reset = String(result.ttlInSeconds);
    if (result.isExceeded) {
      throw new AppError(429, "rate_limited", `too many requests for this tenant: ${result.max} per window; retry after ${reset} s`, {
        "ratelimit-limit": String(result.max),
        "ratelimit-remaining": "0",
        "ratelimit-reset": reset,
        "retry-after": reset,
      });
    }
    ticket.headers = { "ratelimit-limit": String(result.max), "ratelimit-remaining": String(result.remaining), "ratelimit-reset": reset };
  }

  /** A change to a tenant made through this replica applies to its requests here at once. */
  changed(record: TenantRecord): void {
    const entry = this.tenants.get(record.id);
    if (entry) this.settle(entry, effectiveLimits(record));
  }

  /** The request's database work is over (its answer is being sent): its place is free. Idempotent. */
  release(request: FastifyRequest, reply?: FastifyReply): void {
    const ticket = this.tickets.get(request);
    if (!ticket || ticket.released) return;
    ticket.released = true;
    if (ticket.headers && reply && !reply.sent) reply.headers(ticket.headers);
    const entry = this.tenants.get(ticket.tenantId);
    if (!entry) return;
    entry.active -= 1;
    // A pioneer that leaves without a row (refused, invalid body) lets the next waiting request read it.
    if (ticket.rateDeferred && !entry.limits) this.wake(entry);
    if (entry.active <= 0) {
      this.wake(entry);
      this.tenants.delete(ticket.tenantId);
    }
  }

  /** Tenants with requests in flight here, and how many: for tests. */
  inFlight(tenantId: string): number {
    return this.tenants.get(tenantId)?.active ?? 0;
  }

  private track(id: string): InFlight {
    const entry: InFlight = { active: 0 };
    this.tenants.set(id, entry);
    return entry;
  }

  private settle(entry: InFlight, limits: Limits): void {
    entry.limits = limits;
    this.wake(entry);
  }

  private wake(entry: InFlight): void {
    entry.learned?.();
    entry.learning = undefined;
    entry.learned = undefined;
  }
}
