export interface QueryResult<T> {
  readonly rows: T[];
  readonly rowCount: number;
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
}

/**
 * Transaction-scoped settings row-level security reads. Only these names exist, and their values are validated
 * before they reach SQL: SET LOCAL cannot take a bind parameter.
 */
export interface TenantContext {
  readonly tenantId?: string;
  readonly platformAdmin?: boolean;
  readonly tenantLookup?: boolean;
  /**
   * The erasure job's transaction (worker/erasure.ts): with tenantId, it may delete that tenant's audit log, metrics
   * and (once `deleting`) its row, and update its erasure record (migration 0010's policies). Nothing else sets it.
   */
  readonly tenantErasure?: boolean;
  /**
   * lock_timeout for the transaction, in milliseconds: a statement that waits longer for a lock fails (55P03)
   * instead of queueing every later writer of that table behind its own request (DDL on a live table).
   */
  readonly lockTimeoutMs?: number;
  /**
   * A platform administrator's change to the tenant's registry row in the home database (create, PATCH, erasure
   * request and cancel): the tenant's rows are not touched, so it is not entered (platform.enter_tenant), and it
   * runs in the home database wherever the tenant's rows live (db/placed.ts).
   */
  readonly registry?: boolean;
  /**
   * Enter the tenant and read its row in the same statement (platform.enter_tenant_row, migration 0017): the row is
   * then the transaction's `tenantRow`. For a request whose tenant this process has not cached: at a million tenants
   * that is nearly every request, and a statement of its own for the row was the cost that grew with the tenant count.
   */
  readonly readTenant?: boolean;
}

/** What `work` is given: the transaction, and with `readTenant` the row its entering read. */
export interface Transaction extends Queryable {
  /** With `readTenant`: the tenant's row (undefined where this database has no such tenant). Settled before any answer of `query`. */
  readonly tenantRow?: Promise<Record<string, unknown> | undefined>;
}

/** The statement that enters the tenant and reads its row; `isTenantRowStatement` finds it among contextStatements'. */
const TENANT_ROW_STATEMENT = "SELECT * FROM platform.enter_tenant_row(";
export const isTenantRowStatement = (statement: string): boolean => statement.startsWith(TENANT_ROW_STATEMENT);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The statements that open a transaction in a context, each to be sent as its own statement: with
 * citus.propagate_set_commands = 'local' Citus forwards a lone SET LOCAL to every worker the transaction touches,
 * whereas set_config() is not forwarded and a multi-statement string fails on the workers.
 */
export function contextStatements(context: TenantContext, options: { citus: boolean } = { citus: false }): string[] {
  const statements: string[] = [];
  if (context.tenantId !== undefined) {
    if (!UUID.test(context.tenantId)) throw new Error(`refusing tenant context "${context.tenantId}": not a lowercase uuid`);
    // enter_tenant sets app.tenant_id itself, which is enough on one PostgreSQL; on Citus only SET LOCAL reaches the
    // workers, so it goes first there.
    if (options.citus || context.registry) statements.push(`SET LOCAL app.tenant_id = '${context.tenantId}'`);
    // Entering the tenant (migration 0012): refused with PT001 where the tenant is fenced, because its rows are
    // moving or have moved to another database; and, until the transaction ends, it holds the tenant's cutover lock
    // shared, so a cutover waits for this transaction before its final catch-up.
    if (!context.registry) statements.push(context.readTenant ? `${TENANT_ROW_STATEMENT}'${context.tenantId}')` : `SELECT platform.enter_tenant('${context.tenantId}')`);
  }
  if (context.platformAdmin) statements.push("SET LOCAL app.platform_admin = 'on'");
  if (context.tenantLookup) statements.push("SET LOCAL app.tenant_lookup = 'on'");
  if (context.tenantErasure) {
    if (context.tenantId === undefined) throw new Error("refusing an erasure context without a tenant: it erases one tenant at a time");
    statements.push("SET LOCAL app.tenant_erasure = 'on'");
  }
  if (context.lockTimeoutMs !== undefined) {
    if (!Number.isInteger(context.lockTimeoutMs) || context.lockTimeoutMs < 1) throw new Error(`refusing lock_timeout "${context.lockTimeoutMs}": not a positive whole number of milliseconds`);
    statements.push(`SET LOCAL lock_timeout = ${context.lockTimeoutMs}`);
  }
  return statements;
}

/** A pool's occupancy, for the saturation metrics (src/metrics.ts). */
export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
  /** Closed after a failed transaction's ROLLBACK went unanswered; their server sessions may still be busy. */
  readonly retired?: number;
  /** Out of the pool after such a ROLLBACK, over the budget of closed ones, until the server answers it. */
  readonly heldBusy?: number;
  /** Citus node groups whose tenants get one connection, after a ROLLBACK there went unanswered (db/node-bulkhead.ts). */
  readonly nodesQuarantined?: number;
}

export interface Database {
  readonly kind: "postgres" | "pglite";
  /** Runs `work` in one transaction with the given context; commits, or rolls back on any error. */
  transaction<T>(context: TenantContext, work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Checks the database answers (readiness). */
  ping(): Promise<void>;
  /** Connection pool occupancy, for the saturation metrics; absent for the embedded database. */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}
