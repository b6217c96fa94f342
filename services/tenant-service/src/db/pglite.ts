import { PGlite } from "@electric-sql/pglite";
import { runMigrations } from "@platform/citus";
import type { ClientBase } from "pg";
import { contextStatements, isTenantRowStatement, type Database, type TenantContext, type Transaction } from "./database.js";

/**
 * An embedded PostgreSQL (PGlite, in memory or in a directory), migrated on start, so the service runs with no
 * database server at all. One process only: development and demos, never production.
 *
 * PGlite has a single superuser session, and superusers bypass row-level security, so every transaction switches
 * to the service's ordinary role first: isolation is enforced here exactly as on a real server.
 */
export async function createEmbeddedDatabase(dataDir?: string): Promise<Database> {
  const db = await PGlite.create(dataDir ? { dataDir } : undefined);
  await db.exec(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_app') THEN CREATE ROLE platform_app; END IF;
  END $$`);
  const adapter = {
    query: async (sql: string, params?: unknown[]) => {
      const result = await db.query(sql, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  };
  await runMigrations(adapter as unknown as ClientBase);

  return {
    kind: "pglite",
    async transaction<T>(context: TenantContext, work: (tx: Transaction) => Promise<T>): Promise<T> {
      const statements = contextStatements(context);
      return db.transaction(async (tx) => {
        await tx.query("SET LOCAL ROLE platform_app");
        let tenantRow: Promise<Record<string, unknown> | undefined> | undefined;
        for (const statement of statements) {
          const result = await tx.query<Record<string, unknown>>(statement);
          if (isTenantRowStatement(statement)) tenantRow = Promise.resolve(result.rows[0]);
        }
        return work({
          ...(tenantRow ? { tenantRow } : {}),
          query: async <R>(sql: string, params?: readonly unknown[]) => {
            const result = await tx.query<R>(sql, params as unknown[]);
            return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
          },
        });
      });
    },
    async ping() {
      await db.query("SELECT 1");
    },
    async close() {
      await db.close();
    },
  };
}
