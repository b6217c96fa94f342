/**
 * webhook.deliver: sends one delivery (an event to one webhook) once, signed, and decides what comes next.
 *
 * - **One job per attempt.** A failed attempt records itself and queues the next attempt with run_at (backoff by
 *   rescheduling): no job sleeps in a worker slot, and a slot is held at most WEBHOOK_TIMEOUT_MS (connect to last
 *   byte read). The job itself only fails, and is retried by graphile-worker, when the database does.
 * - **One in flight per webhook.** Each webhook's jobs share a graphile-worker queue (queue_name webhook:<id>), which
 *   runs one job at a time: a webhook with a thousand events queued for a dead receiver holds one slot, not a
 *   thousand.
 * - **A circuit per webhook.** A failure pauses the webhook (base delay doubling with each failure in a row, at most an
 *   hour); a job of a paused webhook moves to the pause's end without trying. A dead receiver so costs one attempt
 *   per pause, whatever its backlog.
 * - **Slots of their own.** These jobs run in a runner of their own in the worker process (WEBHOOK_CONCURRENCY slots,
 *   worker.ts), so deliveries never take the slots of erasures, exports or the rollup, nor they those of deliveries.
 * - **Only public addresses.** The connection goes to the address checkedLookup resolved and judged (webhook-targets.ts):
 *   no second resolution, no redirect followed, a bounded response read.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { JobHelpers, Task, TaskList } from "graphile-worker";
import { Counter, type Registry } from "prom-client";
import { Agent, request } from "undici";
import type { Database, Queryable } from "../db/database.js";
import { WebhookRepository, type PendingDelivery, type QueuedDelivery } from "../repositories/webhooks.js";
import { injectTraceContext } from "../tracing.js";
import { checkedLookup, checkLiteralTarget, parseAllowedRanges, TargetRefused, type AllowedRanges, type Resolver } from "../webhook-targets.js";
import { TRACE_CONTEXT_KEY, queueInstalled } from "./queue.js";

export const DELIVER_TASK = "webhook.deliver";

/** The headers a receiver reads (README, "Webhooks"). */
export const WEBHOOK_HEADERS = {
  /** The delivery's id: the same on every attempt of it, so a receiver can drop a repeat. */
  id: "webhook-id",
  /** The event: item.created, user.deleted, ... */
  event: "webhook-event",
  /** Unix seconds when this attempt was signed. */
  timestamp: "webhook-timestamp",
  /** v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the webhook's secret>. */
  signature: "webhook-signature",
} as const;

/** The signature of one attempt: HMAC-SHA256 over the timestamp, a dot, and the body's exact bytes (README: how to verify). */
export function sign(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** Kept from a response for the log, at most; what is beyond is not read (undici's maxResponseSize cuts it). */
const RESPONSE_READ_BYTES = 64 * 1024;
/** A job fails (and graphile-worker retries it) only when the database does; a receiver's failure is not one. */
const JOB_MAX_ATTEMPTS = 5;
const MAX_DELAY_MS = 6 * 3_600_000;
const MAX_PAUSE_MS = 3_600_000;

const jobKey = (deliveryId: string) => `${DELIVER_TASK}:${deliveryId}`;
const queueName = (webhookId: string) => `webhook:${webhookId}`;

/**
 * Queues the job of each delivery an event wrote, in the same transaction (routes/context.ts recordEvent): the change,
 * its deliveries and their jobs commit together or not at all. Nothing is sent for a tenant without webhooks. Without
 * the queue (the embedded development database) deliveries are recorded and stay pending.
 */
export async function enqueueDeliveries(tx: Queryable, tenantId: string, deliveries: readonly QueuedDelivery[]): Promise<void> {
  if (deliveries.length === 0 || !(await queueInstalled(tx))) return;
  const traceContext = injectTraceContext();
  const jobs = deliveries.map((d) => ({
    payload: { tenantId, deliveryId: d.id, ...(traceContext ? { [TRACE_CONTEXT_KEY]: traceContext } : {}) },
    queue: queueName(d.webhookId),
    key: jobKey(d.id),
  }));
  await tx.query(
    `SELECT graphile_worker.add_job($1, j.payload, queue_name := j.queue, job_key := j.key, max_attempts := $3)
       FROM json_to_recordset($2::json) AS j(payload json, queue text, key text)`,
    [DELIVER_TASK, JSON.stringify(jobs), JOB_MAX_ATTEMPTS],
  );
}

export interface WebhookDeliveryOptions {
  readonly db: Database;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  /** WEBHOOK_ALLOWED_PRIVATE_CIDRS. */
  readonly allowedPrivateCidrs: string;
  /** WEBHOOK_CA_FILE: trusted besides the public roots. */
  readonly caFile?: string;
  /** The worker's registry: webhook_deliveries_total is registered on it. */
  readonly registry?: Registry;
  /** Name resolution (tests point a name at an address); default the system's. */
  readonly resolve?: Resolver;
  readonly now?: () => Date;
}

/** The delay before attempt n + 1, after n failed ones: base, doubling, at most 6 hours, plus up to a quarter more. */
export function retryDelayMs(failedAttempts: number, baseMs: number, random = Math.random): number {
  return Math.round(Math.min(baseMs * 2 ** Math.min(failedAttempts - 1, 30), MAX_DELAY_MS) * (1 + random() / 4));
}

type Outcome = "delivered" | "retry" | "failed" | "refused" | "deferred" | "expired";

interface AttemptResult {
  readonly responseStatus: number | null;
  readonly error: string | null;
  readonly refused: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What went wrong, for the log, from undici's error or its cause (the lookup's refusal arrives as one). */
function describe(error: unknown, timeoutMs: number): { message: string; refused: boolean } {
  for (let e = error as (Error & { code?: string; cause?: unknown }) | undefined; e; e = e.cause as typeof e) {
    if (e instanceof TargetRefused || e.code === "EWEBHOOKTARGET") return { message: e.message, refused: true };
    if (e.name === "TimeoutError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT" || e.code === "UND_ERR_CONNECT_TIMEOUT") {
      return { message: `no answer within ${timeoutMs} ms`, refused: false };
    }
    if (!e.cause) return { message: e.code ? `${e.code}: ${e.message}` : e.message, refused: false };
  }
  return { message: String(error), refused: false };
}

export function webhookTaskList(options: WebhookDeliveryOptions): TaskList {
  const { db, timeoutMs, maxAttempts, retryBaseMs } = options;
  const now = options.now ?? (() => new Date());
  const allowed: AllowedRanges = parseAllowedRanges(options.allowedPrivateCidrs);
  const deliveries = new Counter({
    name: "webhook_deliveries_total",
    help: "Webhook delivery attempts and decisions by outcome (delivered, retry, failed: gave up, refused: a non-public address, deferred: the webhook is paused, expired)",
    labelNames: ["outcome"],
    registers: options.registry ? [options.registry] : [],
  });
  const agent = new Agent({
    connect: {
      lookup: checkedLookup(allowed, options.resolve),
      timeout: timeoutMs,
      ...(options.caFile ? { ca: [...rootCertificates, readFileSync(options.caFile, "utf8")] } : {}),
    },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    maxResponseSize: RESPONSE_READ_BYTES,
    // No cap per origin: tenants sharing a receiver's host (a chat service, say) must not queue behind one another's
    // slow requests. What bounds connections is WEBHOOK_CONCURRENCY, and one in flight per webhook.
    keepAliveTimeout: 10_000,
  });
  // Every delivery the worker could give up on waiting: the whole retry schedule, past which a delivery stuck behind
  // a paused webhook is failed rather than kept forever.
  const lifetimeMs = Array.from({ length: maxAttempts - 1 }, (_, i) => Math.min(retryBaseMs * 2 ** i, MAX_DELAY_MS) * 1.25).reduce((a, b) => a + b, retryBaseMs);

  async function attempt(d: PendingDelivery): Promise<AttemptResult> {
    const timestamp = Math.floor(now().getTime() / 1000);
    try {
      const url = new URL(d.url);
      checkLiteralTarget(url, allowed);
      const response = await request(url, {
        method: "POST",
        dispatcher: agent,
        maxRedirections: 0,
        signal: AbortSignal.timeout(timeoutMs),
        headers: {
          "content-type": "application/json",
          "user-agent": "platform-webhooks/1",
          [WEBHOOK_HEADERS.id]: d.id,
          [WEBHOOK_HEADERS.event]: d.eventType,
          [WEBHOOK_HEADERS.timestamp]: String(timestamp),
          [WEBHOOK_HEADERS.signature]: sign(d.secret, timestamp, d.body),
        },
        body: d.body,
      });
      // The answer's body is not needed: read what undici lets through (maxResponseSize) so the connection is reused.
      await response.body.dump({ limit: RESPONSE_READ_BYTES }).catch(() => {});
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { responseStatus: status, error: null, refused: false };
      const error = status >= 300 && status < 400 ? `answered ${status} (redirects are not followed: subscribe the final URL)` : `answered ${status}`;
      return { responseStatus: status, error, refused: false };
    } catch (error) {
      const { message, refused } = describe(error, timeoutMs);
      return { responseStatus: null, error: message, refused };
    }
  }

  const deliver: Task = async (payload, helpers: JobHelpers) => {
    const { tenantId, deliveryId } = (payload ?? {}) as { tenantId?: string; deliveryId?: string };
    if (typeof tenantId !== "string" || !UUID.test(tenantId) || typeof deliveryId !== "string" || !UUID.test(deliveryId)) {
      throw new Error(`${DELIVER_TASK} needs a tenantId and a deliveryId (lowercase uuids), got ${JSON.stringify(payload)}`);
    }
    const inTenant = <T>(work: (repo: WebhookRepository) => Promise<T>) => db.transaction({ tenantId }, (tx) => work(new WebhookRepository(tx, tenantId)));
    const reschedule = (runAt: Date, webhookId: string) =>
      helpers.addJob(DELIVER_TASK, { tenantId, deliveryId }, { runAt, queueName: queueName(webhookId), jobKey: jobKey(deliveryId), maxAttempts: JOB_MAX_ATTEMPTS });

    const d = await inTenant((repo) => repo.pending(deliveryId));
    // Deleted with its webhook, or its tenant erased; or already settled by an earlier run of this job.
    if (!d || d.status !== "pending") return;

    const started = now();
    if (d.pausedUntil && d.pausedUntil > started) {
      if (started.getTime() - d.createdAt.getTime() > lifetimeMs) {
        await inTenant((repo) => repo.expire(d.id, `gave up after ${Math.round(lifetimeMs / 60_000)} min: the receiver kept failing`));
        deliveries.inc({ outcome: "expired" satisfies Outcome });
        return;
      }
      // Queued first, recorded second: a crash between the two leaves a job that finds the delivery still pending.
      await reschedule(d.pausedUntil, d.webhookId);
      await inTenant((repo) => repo.deferTo(d.id, d.pausedUntil!));
      deliveries.inc({ outcome: "deferred" satisfies Outcome });
      return;
    }

    const result = await attempt(d);
    const durationMs = now().getTime() - started.getTime();
    const delivered = result.error === null;
    const attempts = d.attempts + 1;
    const gaveUp = !delivered && attempts >= maxAttempts;
    const nextAttemptAt = delivered || gaveUp ? null : new Date(now().getTime() + retryDelayMs(attempts, retryBaseMs));
    if (nextAttemptAt) await reschedule(nextAttemptAt, d.webhookId);
    await inTenant(async (repo) => {
      await repo.recordAttempt({
        deliveryId: d.id,
        webhookId: d.webhookId,
        attempt: { at: started.toISOString(), durationMs, responseStatus: result.responseStatus, error: result.error },
        status: delivered ? "delivered" : gaveUp ? "failed" : "pending",
        nextAttemptAt,
        // One webhook's attempts never overlap (its queue), so the count read with the delivery is still current.
        pausedUntil: delivered ? null : new Date(now().getTime() + Math.min(retryBaseMs * 2 ** Math.min(d.consecutiveFailures, 30), MAX_PAUSE_MS)),
      });
    });
    const outcome: Outcome = delivered ? "delivered" : gaveUp ? "failed" : result.refused ? "refused" : "retry";
    deliveries.inc({ outcome });
    if (!delivered) helpers.logger.info(`webhook delivery ${d.id} attempt ${attempts}/${maxAttempts}: ${result.error}${nextAttemptAt ? `; next at ${nextAttemptAt.toISOString()}` : "; given up"}`);
  };

  return { [DELIVER_TASK]: deliver };
}
