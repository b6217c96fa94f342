import { randomBytes, randomUUID } from "node:crypto";
import type { Queryable } from "../db/database.js";
import { cursorColumn, toPage, type After, type Page } from "./page.js";

export const WEBHOOK_EVENTS = ["item.created", "item.updated", "item.deleted", "user.created", "user.updated", "user.deleted"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface Webhook {
  readonly id: string;
  readonly url: string;
  readonly events: WebhookEvent[];
  readonly description: string;
  readonly createdAt: Date;
  /** Failed attempts in a row; 0 once one succeeds. */
  readonly consecutiveFailures: number;
  /** While set and ahead, deliveries wait for it instead of trying (the webhook's circuit). */
  readonly pausedUntil: Date | null;
}

export interface DeliveryAttempt {
  readonly at: string;
  readonly durationMs: number;
  readonly responseStatus: number | null;
  readonly error: string | null;
}

export interface Delivery {
  readonly id: string;
  readonly webhookId: string;
  readonly eventId: string;
  readonly eventType: WebhookEvent;
  readonly status: "pending" | "delivered" | "failed";
  readonly attempts: number;
  readonly nextAttemptAt: Date | null;
  readonly lastAttemptAt: Date | null;
  readonly responseStatus: number | null;
  readonly lastError: string | null;
  readonly attemptLog: DeliveryAttempt[];
  readonly createdAt: Date;
  readonly deliveredAt: Date | null;
}

/** A delivery as the worker needs it: what to send, where, with which secret. */
export interface PendingDelivery {
  readonly id: string;
  readonly webhookId: string;
  readonly eventId: string;
  readonly eventType: WebhookEvent;
  readonly body: string;
  readonly status: Delivery["status"];
  readonly attempts: number;
  readonly url: string;
  readonly secret: string;
  readonly pausedUntil: Date | null;
  /** The webhook's failures in a row before this attempt. */
  readonly consecutiveFailures: number;
  readonly createdAt: Date;
}

/** A delivery written by an event, for the job that sends it. */
export interface QueuedDelivery {
  readonly id: string;
  readonly webhookId: string;
}

const WEBHOOK_COLUMNS = "id, url, events, description, created_at, consecutive_failures, paused_until";
const DELIVERY_COLUMNS = "id, webhook_id, event_id, event_type, status, attempts, next_attempt_at, last_attempt_at, response_status, last_error, attempt_log, created_at, delivered_at";

const toWebhook = (r: Record<string, unknown>): Webhook => ({
  id: r.id as string,
  url: r.url as string,
  events: r.events as WebhookEvent[],
  description: r.description as string,
  createdAt: r.created_at as Date,
  consecutiveFailures: r.consecutive_failures as number,
  pausedUntil: (r.paused_until as Date | null) ?? null,
});

const toDelivery = (r: Record<string, unknown>): Delivery => ({
  id: r.id as string,
  webhookId: r.webhook_id as string,
  eventId: r.event_id as string,
  eventType: r.event_type as WebhookEvent,
  status: r.status as Delivery["status"],
  attempts: r.attempts as number,
  nextAttemptAt: (r.next_attempt_at as Date | null) ?? null,
  lastAttemptAt: (r.last_attempt_at as Date | null) ?? null,
  responseStatus: (r.response_status as number | null) ?? null,
  lastError: (r.last_error as string | null) ?? null,
  attemptLog: r.attempt_log as DeliveryAttempt[],
  createdAt: r.created_at as Date,
  deliveredAt: (r.delivered_at as Date | null) ?? null,
});

/** A signing secret: 32 random bytes, prefixed so that one found in a log or a repository is recognised as such. */
export const newSigningSecret = (): string => `whsec_${randomBytes(32).toString("base64url")}`;

/** One tenant's platform.webhooks and platform.webhook_deliveries; every statement names the tenant (Citus routing). */
export class WebhookRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  /** Serialises this tenant's subscriptions (the count against the cap) on the tenant's row. */
  async lockTenant(): Promise<void> {
    await this.db.query("SELECT 1 FROM platform.tenants WHERE id = $1 FOR UPDATE", [this.tenantId]);
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM platform.webhooks WHERE tenant_id = $1", [this.tenantId]);
    return rows[0]?.n ?? 0;
  }

  async create(w: { url: string; events: WebhookEvent[]; description: string; secret: string; createdBy: string }): Promise<Webhook> {
    const { rows } = await this.db.query(
      `INSERT INTO platform.webhooks (tenant_id, url, events, description, secret, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${WEBHOOK_COLUMNS}`,
      [this.tenantId, w.url, w.events, w.description, w.secret, w.createdBy],
    );
    return toWebhook(rows[0]!);
  }

  async list(options: { limit: number; after?: After }): Promise<Page<Webhook>> {
    const params: unknown[] = [this.tenantId, options.limit + 1];
    let where = "tenant_id = $1";
    if (options.after) {
      params.push(options.after.createdAt, options.after.id);
      where += " AND (created_at, id) < ($3::timestamptz, $4::uuid)";
    }
    const { rows } = await this.db.query(`SELECT ${WEBHOOK_COLUMNS}, ${cursorColumn("created_at")} FROM platform.webhooks WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $2`, params);
    return toPage(rows, options.limit, toWebhook);
  }

  async find(id: string): Promise<Webhook | undefined> {
    const { rows } = await this.db.query(`SELECT ${WEBHOOK_COLUMNS} FROM platform.webhooks WHERE tenant_id = $1 AND id = $2`, [this.tenantId, id]);
    return rows[0] ? toWebhook(rows[0]) : undefined;
  }

  /** True when there was such a webhook; its delivery log goes with it (ON DELETE CASCADE). */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query("DELETE FROM platform.webhooks WHERE tenant_id = $1 AND id = $2", [this.tenantId, id]);
    return rowCount > 0;
  }

  async deliveries(webhookId: string, options: { limit: number; after?: After }): Promise<Page<Delivery>> {
    const params: unknown[] = [this.tenantId, webhookId, options.limit + 1];
    let where = "tenant_id = $1 AND webhook_id = $2";
    if (options.after) {
      params.push(options.after.createdAt, options.after.id);
      where += " AND (created_at, id) < ($4::timestamptz, $5::uuid)";
    }
    const { rows } = await this.db.query(
      `SELECT ${DELIVERY_COLUMNS}, ${cursorColumn("created_at")} FROM platform.webhook_deliveries WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $3`,
      params,
    );
    return toPage(rows, options.limit, toDelivery);
  }

  /**
   * The outbox: one delivery per webhook of this tenant subscribed to `type`, in the caller's transaction. First a
   * look for such a webhook, which for the many tenants with none is one probe of the webhooks primary key that
   * finds nothing, sent pipelined with the change's other statements (routes/webhooks.ts recordEvent); only when
   * there is one, the event's body is made and the deliveries written. Measured against writing them in one
   * INSERT ... SELECT every time, the look costs a third as much per write (README, Webhooks). The body is the event
   * as receivers get it, fixed now: a retry sends the same bytes.
   */
  async recordEvent(type: WebhookEvent, data: object): Promise<QueuedDelivery[]> {
    const subscribed = await this.db.query("SELECT 1 FROM platform.webhooks WHERE tenant_id = $1 AND $2 = ANY (events) LIMIT 1", [this.tenantId, type]);
    if (subscribed.rows.length === 0) return [];
    const eventId = randomUUID();
    const body = JSON.stringify({ id: eventId, type, tenantId: this.tenantId, occurredAt: new Date().toISOString(), data });
    const { rows } = await this.db.query<{ id: string; webhook_id: string }>(
      `INSERT INTO platform.webhook_deliveries (tenant_id, webhook_id, event_id, event_type, body)
       SELECT w.tenant_id, w.id, $2, $3, $4 FROM platform.webhooks w WHERE w.tenant_id = $1 AND $3 = ANY (w.events)
       RETURNING id, webhook_id`,
      [this.tenantId, eventId, type, body],
    );
    return rows.map((r) => ({ id: r.id, webhookId: r.webhook_id }));
  }

  /** The delivery with its webhook's URL, secret and circuit (the worker's read); undefined if either is gone. */
  async pending(deliveryId: string): Promise<PendingDelivery | undefined> {
    const { rows } = await this.db.query(
      `SELECT d.id, d.webhook_id, d.event_id, d.event_type, d.body, d.status, d.attempts, d.created_at, w.url, w.secret, w.paused_until, w.consecutive_failures
         FROM platform.webhook_deliveries d JOIN platform.webhooks w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id
        WHERE d.tenant_id = $1 AND d.id = $2`,
      [this.tenantId, deliveryId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: r.id as string,
      webhookId: r.webhook_id as string,
      eventId: r.event_id as string,
      eventType: r.event_type as WebhookEvent,
      body: r.body as string,
      status: r.status as Delivery["status"],
      attempts: r.attempts as number,
      url: r.url as string,
      secret: r.secret as string,
      pausedUntil: (r.paused_until as Date | null) ?? null,
      consecutiveFailures: r.consecutive_failures as number,
      createdAt: r.created_at as Date,
    };
  }

  /** Gives a delivery up without an attempt (it waited behind a paused webhook longer than its retries would take). */
  async expire(deliveryId: string, reason: string): Promise<void> {
    await this.db.query("UPDATE platform.webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'", [this.tenantId, deliveryId, reason]);
  }

  /** Notes when a deferred delivery will be tried, for its log. */
  async deferTo(deliveryId: string, at: Date): Promise<void> {
    await this.db.query("UPDATE platform.webhook_deliveries SET next_attempt_at = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'", [this.tenantId, deliveryId, at]);
  }

  /**
   * One attempt's outcome, on the delivery (its log, its status, its next attempt) and on the webhook's circuit: a
   * success closes it, a failure pauses the webhook (longer with each failure in a row). The log grows by one entry
   * an attempt, so it holds at most WEBHOOK_MAX_ATTEMPTS.
   */
  async recordAttempt(a: {
    deliveryId: string;
    webhookId: string;
    attempt: DeliveryAttempt;
    status: Delivery["status"];
    nextAttemptAt: Date | null;
    /** Until when a failure pauses the webhook (worker/webhooks.ts: longer with each failure in a row). */
    pausedUntil: Date | null;
  }): Promise<void> {
    const delivered = a.status === "delivered";
    await this.db.query(
      `UPDATE platform.webhook_deliveries
          SET attempts = attempts + 1, status = $3, next_attempt_at = $4, last_attempt_at = $5::timestamptz, response_status = $6,
              last_error = $7, delivered_at = $9,
              attempt_log = attempt_log || jsonb_build_array($8::jsonb)
        WHERE tenant_id = $1 AND id = $2`,
      // delivered_at from here, not CASE ... now(): Citus refuses a non-immutable function inside CASE.
      [this.tenantId, a.deliveryId, a.status, a.nextAttemptAt, a.attempt.at, a.attempt.responseStatus, a.attempt.error?.slice(0, 500) ?? null, JSON.stringify(a.attempt), delivered ? new Date() : null],
    );
    await this.db.query(
      delivered
        ? "UPDATE platform.webhooks SET consecutive_failures = 0, paused_until = NULL WHERE tenant_id = $1 AND id = $2 AND (consecutive_failures <> 0 OR paused_until IS NOT NULL)"
        : "UPDATE platform.webhooks SET consecutive_failures = consecutive_failures + 1, paused_until = $3 WHERE tenant_id = $1 AND id = $2",
      // The pause is computed by the caller, not from now() and the column here: Citus refuses a STABLE function
      // (now(), timestamptz + interval) called with a column in an UPDATE.
      delivered ? [this.tenantId, a.webhookId] : [this.tenantId, a.webhookId, a.pausedUntil],
    );
  }
}
