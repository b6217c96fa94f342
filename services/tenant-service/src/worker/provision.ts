/**
 * `tenant.provision`: what follows a tenant's creation (POST /v1/tenants queues it in the tenant's own transaction).
 *
 *   1. its placement: platform.tenant_placements says the home database (migration 0015, place_new_tenant);
 *   2. in the tenant's context: its first administrator (the body's adminEmail, if given) and today's metrics row;
 *   3. its OAuth2 client in Hydra (hydra.ts), client_id derived from the tenant id (deleted again if the tenant was
 *      erased meanwhile);
 *   4. the `tenant.provisioned` audit entry, once, naming what was done.
 *
 * Every step finds what an earlier attempt did before doing it, so a job retried after a crash at any point (or run
 * twice) ends in the same state: one placement row, one administrator, one client, one audit entry. A failure (Hydra
 * unreachable) fails the job and graphile-worker retries it with backoff; the steps already done are found again.
 */
import type { Task } from "graphile-worker";
import type { Database } from "../db/database.js";
import type { HydraAdmin } from "../hydra.js";
import { AuditLogRepository } from "../repositories/audit.js";
import { UserRepository } from "../repositories/users.js";

export const PROVISION_TASK = "tenant.provision";

export interface ProvisionPayload {
  readonly tenantId: string;
  /** The first administrator's email (POST /v1/tenants adminEmail); absent: no user is created. */
  readonly adminEmail?: string;
}

export interface ProvisionOptions {
  readonly db: Database;
  /** Hydra's admin API; unset (development, HYDRA_ADMIN_URL): no OAuth2 client, said in the job's log. */
  readonly hydra?: HydraAdmin;
  readonly now: () => Date;
  /** Called between the steps, for tests that crash the job there. */
  readonly afterStep?: (step: ProvisionStep, tenantId: string) => void | Promise<void>;
}

export type ProvisionStep = "placement" | "tenant" | "oauth2-client" | "audit";

const dayOf = (d: Date): string => d.toISOString().slice(0, 10);

export function provisionTask(options: ProvisionOptions): Task {
  const { db, hydra, now } = options;
  const after = async (step: ProvisionStep, tenantId: string) => options.afterStep?.(step, tenantId);

  return async (payload, helpers) => {
    const { tenantId, adminEmail } = payload as ProvisionPayload;

    // 1. The registry is in the home database: a transaction that enters no tenant runs there (db/placed.ts).
    const placed = await db.transaction({}, async (tx) =>
      (await tx.query<{ placed: string | null }>("SELECT platform.place_new_tenant($1::uuid) AS placed", [tenantId])).rows[0]!.placed,
    );
    if (placed === null) {
      helpers.logger.warn(`tenant ${tenantId} no longer exists; nothing to provision`);
      return;
    }
    await after("placement", tenantId);

    // 2. In the tenant's context (row-level security), in the database that holds its rows.
    const tenant = await db.transaction({ tenantId }, async (tx) => {
      const { rows } = await tx.query<{ status: string }>("SELECT status FROM platform.tenants WHERE id = $1", [tenantId]);
      if (!rows[0] || rows[0].status === "deleting") return { status: rows[0]?.status ?? "gone" };
      await tx.query(
        `INSERT INTO platform.tenant_metrics (tenant_id, day, users, items, storage_bytes, writes) VALUES ($1, $2, 0, 0, 0, 0)
         ON CONFLICT (tenant_id, day) DO NOTHING`,
        [tenantId, dayOf(now())],
      );
      if (!adminEmail) return { status: rows[0].status };
      const { user, created } = await new UserRepository(tx, tenantId).ensure({ email: adminEmail, displayName: "", role: "admin" });
      if (created) {
        await new AuditLogRepository(tx, tenantId).record({
          actor: "worker", action: "user.create", entityType: "user", entityId: user.id, requestId: helpers.job.id, details: { email: adminEmail, role: "admin", provisioning: true },
        });
      }
      return { status: rows[0].status, adminId: user.id };
    });
    if (tenant.status === "gone" || tenant.status === "deleting") {
      // Its erasure removes what exists; creating a client now would only leave one behind.
      helpers.logger.warn(`tenant ${tenantId} is ${tenant.status === "gone" ? "gone" : "being erased"}; not provisioning it further`);
      return;
    }
    await after("tenant", tenantId);

    // 3. Outside any transaction: Hydra is another system, and the lookup by client_id is what makes this step idempotent.
    let clientId: string | undefined;
    if (hydra) {
      const { client, created } = await hydra.ensure(tenantId);
      clientId = client.clientId;
      helpers.logger.info(`tenant ${tenantId}: OAuth2 client ${client.clientId} ${created ? "created" : "found, created by an earlier attempt"}`);
      // The tenant's erasure deletes its client after its rows; one that finished between step 2 and this create
      // found none to delete. The tenant gone now: delete it here, so no credential outlives its tenant. (Still
      // being erased: the erasure's own deletion comes after this.)
      const still = await db.transaction({ tenantId }, async (tx) => (await tx.query("SELECT 1 FROM platform.tenants WHERE id = $1", [tenantId])).rows.length > 0);
      if (!still) {
        await hydra.remove(tenantId);
        helpers.logger.warn(`tenant ${tenantId} was erased while it was being provisioned; its OAuth2 client deleted again`);
        return;
      }
    } else {
      helpers.logger.warn(`tenant ${tenantId}: HYDRA_ADMIN_URL is unset, so no OAuth2 client was created`);
    }
    await after("oauth2-client", tenantId);

    // 4. Once: the entry says what the tenant was given.
    await db.transaction({ tenantId }, async (tx) => {
      const done = await tx.query("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'tenant.provisioned' LIMIT 1", [tenantId]);
      if (done.rows.length > 0) return;
      await new AuditLogRepository(tx, tenantId).record({
        actor: "worker", action: "tenant.provisioned", entityType: "tenant", entityId: tenantId, requestId: helpers.job.id,
        details: { placement: placed, ...(tenant.adminId ? { adminUserId: tenant.adminId } : {}), ...(clientId ? { oauth2ClientId: clientId } : {}) },
      });
    });
    await after("audit", tenantId);
  };
}
