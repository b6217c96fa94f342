/**
 * `pnpm --filter tenant-service bench:webhooks`: what recording webhook events costs an item write (issue 24), with
 * BENCH_TENANTS tenants of which BENCH_WEBHOOK_TENANTS have a webhook on item.created.
 *
 * The item route's transaction (the item, its audit entry) run one at a time on a real PostgreSQL 15, three ways, in
 * alternating rounds so that the machine's drift falls on each alike:
 *   none      the write and the audit entry only (no webhooks at all)
 *   without   with recordEvent, for a tenant that has no webhook (what most tenants pay)
 *   with      with recordEvent, for a tenant with one: the delivery written and its job queued
 *
 *   BENCH_TENANTS=1000000 pnpm --filter tenant-service bench:webhooks
 */
import { AuditLogRepository } from "../src/repositories/audit.js";
import { ItemRepository } from "../src/repositories/items.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { recordEvent } from "../src/routes/webhooks.js";
import { positiveInteger } from "./env.js";
import { quantile, seedTenants, startBenchDatabase, targets } from "./fixture.js";

const TENANTS = positiveInteger("BENCH_TENANTS", 100_000);
const WEBHOOK_TENANTS = positiveInteger("BENCH_WEBHOOK_TENANTS", 1_000);
const ROUNDS = positiveInteger("BENCH_ROUNDS", 8);
const WRITES = positiveInteger("BENCH_WRITES", 250);
if (WEBHOOK_TENANTS >= TENANTS) {
  console.error("BENCH_WEBHOOK_TENANTS must be fewer than BENCH_TENANTS");
  process.exit(2);
}

const { server, admin, close } = await startBenchDatabase({ queue: true });
const db = createPostgresDatabase({ url: server.urlFor("platform_app", "app"), poolSize: 2 });
try {
  await seedTenants(admin, TENANTS);
  // The last BENCH_WEBHOOK_TENANTS tenants subscribe (a public address: nothing is sent, no worker runs).
  await admin.query(
    `INSERT INTO platform.webhooks (tenant_id, url, events, secret, created_by)
     SELECT id, 'https://93.184.215.14/hook', '{item.created}', repeat('s', 32), 'bench' FROM platform.tenants
      WHERE code = ANY (SELECT 'scale-' || i FROM generate_series($1::int, $2::int) i)`,
    [TENANTS - WEBHOOK_TENANTS + 1, TENANTS],
  );
  await admin.query("VACUUM ANALYZE platform.webhooks");
  const pick = (lo: number, hi: number) => Array.from({ length: WRITES }, () => lo + Math.floor(Math.random() * (hi - lo + 1)));

  const write = async (tenant: string, owner: string, withEvent: boolean) => {
    const started = process.hrtime.bigint();
    await db.transaction({ tenantId: tenant }, async (tx) => {
      const item = await new ItemRepository(tx, tenant).create({ ownerId: owner, title: "bench item", body: "a small item body", tags: [] });
      const entry = new AuditLogRepository(tx, tenant).record({ actor: "bench", action: "item.create", entityType: "item", entityId: item.id });
      await Promise.all([entry, withEvent ? recordEvent(tx, tenant, "item.created", item) : undefined]);
    });
    return Number(process.hrtime.bigint() - started) / 1e6;
  };

  const modes = {
    none: { tenants: () => pick(1, TENANTS - WEBHOOK_TENANTS), event: false },
    without: { tenants: () => pick(1, TENANTS - WEBHOOK_TENANTS), event: true },
    with: { tenants: () => pick(TENANTS - WEBHOOK_TENANTS + 1, TENANTS), event: true },
  } as const;
  const times: Record<keyof typeof modes, number[]> = { none: [], without: [], with: [] };
  // Warm up the pool, the plans and the caches.
  for (const t of await targets(admin, pick(1, TENANTS))) await write(t.tenant, t.owner, true);
  for (let round = 0; round < ROUNDS; round++) {
    const order = (round % 2 === 0 ? ["none", "without", "with"] : ["with", "without", "none"]) as (keyof typeof modes)[];
    for (const mode of order) {
      for (const t of await targets(admin, modes[mode].tenants())) times[mode].push(await write(t.tenant, t.owner, modes[mode].event));
    }
  }
  const queued = (await admin.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")).rows[0].n as number;
  console.log(`${TENANTS.toLocaleString("en")} tenants, ${WEBHOOK_TENANTS.toLocaleString("en")} with a webhook; ${ROUNDS} rounds of ${WRITES} writes per way, one at a time`);
  const base = quantile(times.none, 0.5);
  for (const [mode, xs] of Object.entries(times)) {
    const line = [0.5, 0.9, 0.99].map((q) => `p${q * 100} ${quantile(xs, q).toFixed(3)} ms`).join("  ");
    console.log(`${mode.padEnd(8)} n=${xs.length}  ${line}  (p50 ${(quantile(xs, 0.5) / base).toFixed(2)}x none)`);
  }
  // Every write of a tenant with a webhook queued its delivery's job (and some of the warm-up's did).
  console.log(`delivery jobs queued: ${queued}, of which ${ROUNDS * WRITES} by the 'with' writes`);
  if (queued < ROUNDS * WRITES) throw new Error("a write of a tenant with a webhook queued no job");
} finally {
  await db.close();
  await close();
}
