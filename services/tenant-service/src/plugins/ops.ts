/**
 * The unauthenticated operations endpoints: /health (the process answers), /ready (the database answers and the
 * second wall stands), /metrics and /openapi.json.
 */
import type { FastifyInstance } from "fastify";
import type { Database } from "../db/database.js";
import type { ServiceMetrics } from "../metrics.js";

/**
 * The service's own tables where row-level security does NOT apply to the role it connects as, by PostgreSQL's own
 * judgement (row_security_active): the role owns them, is a member of their owner, or has BYPASSRLS. The policies
 * are not forced (docs/ARCHITECTURE.md, "Tenant isolation"), so such a role would read every tenant's rows.
 */
export const ROW_SECURITY_BYPASSED = `SELECT c.oid::regclass::text AS name FROM pg_class c
   WHERE c.relnamespace = 'platform'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND NOT row_security_active(c.oid) ORDER BY 1`;

export async function opsRoutes(app: FastifyInstance, options: { db: Database; metrics: ServiceMetrics }): Promise<void> {
  const { db, metrics } = options;
  // Asked until it has once held: a role's ownership does not change under a running pod, and a replica that starts
  // with the wrong role is never ready, so it never gets traffic (and a rollout with it stops).
  let rowSecurityHolds = db.kind === "pglite";

  app.get("/health", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/ready", { schema: { hide: true } }, async (request, reply) => {
    try {
      await db.ping();
      if (!rowSecurityHolds) {
        const bypassed = await db.transaction({}, async (tx) => (await tx.query<{ name: string }>(ROW_SECURITY_BYPASSED)).rows.map((r) => r.name));
        if (bypassed.length > 0) {
          request.log.error(
            { tables: bypassed },
            "row-level security does not apply to this service's database role on these tables (it owns them, is a member of their owner, or has BYPASSRLS): refusing traffic. Connect as platform_app, and REVOKE the owner role from it.",
          );
          return reply.code(503).send({ error: { code: "row_security_bypassed", message: "the service's database role is not subject to row-level security" } });
        }
        rowSecurityHolds = true;
      }
      return { status: "ready", database: db.kind };
    } catch (error) {
      request.log.warn({ err: error }, "readiness check failed");
      return reply.code(503).send({ error: { code: "not_ready", message: "the database is not reachable" } });
    }
  });
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.header("content-type", metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}
