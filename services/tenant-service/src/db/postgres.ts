import pg from "pg";
import { contextStatements, type Database, type Queryable, type TenantContext } from "./database.js";

export interface PostgresOptions {
  readonly url: string;
  readonly password?: string;
  readonly ssl?: pg.PoolConfig["ssl"];
  readonly poolSize: number;
  readonly statementTimeoutMs?: number;
}

/** PostgreSQL or a Citus coordinator, through a pg pool. */
export function createPostgresDatabase(options: PostgresOptions): Database & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.url,
    password: options.password,
    ssl: options.ssl,
    max: options.poolSize,
    application_name: "tenant-service",
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    statement_timeout: options.statementTimeoutMs ?? 10_000,
  });
  // An idle client's connection dropping (failover, restart) must not crash the process; the pool replaces it.
  pool.on("error", () => {});

  return {
    kind: "postgres",
    pool,
    async transaction<T>(context: TenantContext, work: (tx: Queryable) => Promise<T>): Promise<T> {
      const statements = contextStatements(context);
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        for (const statement of statements) await client.query(statement);
        const result = await work(client as unknown as Queryable);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        try {
          await client.query("ROLLBACK");
        } catch (rollbackError) {
          // The connection is unusable: destroy it rather than hand it, mid-transaction, to the next request.
          broken = rollbackError as Error;
        }
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: options.poolSize }),
    async close() {
      await pool.end();
    },
  };
}
