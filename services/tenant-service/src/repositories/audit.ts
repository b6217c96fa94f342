import type { Queryable } from "../db/database.js";
import { cursorColumn, toPage, type After, type Page } from "./page.js";

export interface AuditEntry {
  readonly actor: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId?: string;
  readonly requestId?: string;
  readonly details?: Record<string, unknown>;
}

export interface AuditEvent {
  readonly id: string;
  readonly occurredAt: Date;
  readonly actor: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId: string | null;
  readonly requestId: string | null;
  readonly details: Record<string, unknown>;
}

/** One tenant's platform.audit_log: append-only for the service, read by its administrators. */
export class AuditLogRepository {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  /** Written in the same transaction as the change it records: both commit or neither does. */
  async record(entry: AuditEntry): Promise<void> {
    await this.db.query(
      "INSERT INTO platform.audit_log (tenant_id, actor, action, entity_type, entity_id, request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
      [this.tenantId, entry.actor, entry.action, entry.entityType, entry.entityId ?? null, entry.requestId ?? null, JSON.stringify(entry.details ?? {})],
    );
  }

  async list(options: { limit: number; after?: After; entityId?: string }): Promise<Page<AuditEvent>> {
    const params: unknown[] = [this.tenantId, options.limit + 1];
    const where = ["tenant_id = $1"];
    if (options.entityId) {
      params.push(options.entityId.toLowerCase());
      where.push(`entity_id = $${params.length}`);
    }
    if (options.after) {
      params.push(options.after.createdAt, options.after.id);
      where.push(`(occurred_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    const { rows } = await this.db.query(
      `SELECT id, occurred_at, actor, action, entity_type, entity_id, request_id, details, ${cursorColumn("occurred_at")} FROM platform.audit_log
        WHERE ${where.join(" AND ")} ORDER BY occurred_at DESC, id DESC LIMIT $2`,
      params,
    );
    return toPage(rows, options.limit, (e) => ({
      id: e.id as string,
      occurredAt: e.occurred_at as Date,
      actor: e.actor as string,
      action: e.action as string,
      entityType: e.entity_type as string,
      entityId: e.entity_id as string | null,
      requestId: e.request_id as string | null,
      details: e.details as Record<string, unknown>,
    }));
  }
}
