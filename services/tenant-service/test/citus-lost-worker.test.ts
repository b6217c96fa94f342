/**
 * A Citus worker lost silently (its VM gone, its zone cut off) while the service sends a tenant's statement to it: the
 * request must fail within the statement timeout and give its pool connection back at once. The coordinator's backend
 * stays busy for up to tcp_user_timeout (60 s) after reporting the error, cancelling the statement on the lost worker
 * (infra/test/citus-dead-worker.test.ts measures it); had the service waited for its ROLLBACK, each such request would
 * hold a pool slot that long, and the pool would drain for every tenant, not only the lost worker's.
 *
 * Real Citus 13 on PostgreSQL 15 (built from its source; skipped with the reason where it is not installed, or not
 * root): the coordinator here, the worker on an isolated host in network namespaces of the test's own, the cut
 * silent at the router between them. The service's own database layer (createPostgresDatabase) with a pool of one,
 * so a slot still held is a second transaction that cannot start.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEAD_PEER_CONNINFO } from "@platform/config";
import { citusAcrossNetworkUnavailable, startCitusAcrossNetwork, type CitusAcrossNetwork } from "@platform/testing";
import { ROLLBACK_WAIT_MS, createPostgresDatabase } from "../src/db/postgres.js";

const unavailable = citusAcrossNetworkUnavailable();
if (unavailable) console.warn(`skipping the lost Citus worker test of the service's database layer: ${unavailable}`);

/** Shorter than the service's 10 s default, so the test is short; the behaviour does not depend on its length. */
const STATEMENT_TIMEOUT_MS = 3_000;

describe.skipIf(unavailable !== undefined)("the service's transactions when a Citus worker is lost (real Citus, real namespaces)", () => {
  let cluster: CitusAcrossNetwork;
  let db: ReturnType<typeof createPostgresDatabase>;

  beforeAll(async () => {
    // The coordinator's connections to its workers as the Citus VMs configure them, less TLS.
    cluster = await startCitusAcrossNetwork({ nodeConninfo: `sslmode=disable ${DEAD_PEER_CONNINFO}` });
    const { coordinator } = cluster;
    cluster.sql(coordinator, "CREATE TABLE items (tenant_id bigint, id bigint, title text, PRIMARY KEY (tenant_id, id))");
    cluster.sql(coordinator, "SELECT create_distributed_table('items', 'tenant_id', shard_count => 4)");
    cluster.sql(coordinator, "INSERT INTO items SELECT g % 100, g, 'item ' || g FROM generate_series(1, 10000) g");
    db = createPostgresDatabase({ url: cluster.socketUrl(coordinator), poolSize: 1, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
  }, 180_000);
  afterAll(async () => {
    await db?.close().catch(() => {});
    cluster?.stop();
  });

  it("a transaction on the lost worker fails within the statement timeout and its pool slot is free at once", async () => {
    const admin = { platformAdmin: true };
    // The pool's one connection, with the coordinator's connection to the worker open behind it.
    const before = await db.transaction(admin, (tx) => tx.query("SELECT count(*)::int AS n FROM items"));
    expect(before.rows[0]!.n).toBe(10_000);

    cluster.host.cut();
    const cutAt = Date.now();
    const failure = await db.transaction(admin, (tx) => tx.query("SELECT count(*) FROM items WHERE title LIKE 'item %'")).then(
      () => new Error("the statement answered across a cut network"),
      (error: Error) => error,
    );
    const failedAfter = Date.now() - cutAt;
    expect(failure.message).toMatch(/statement timeout/);

    const freeAt = Date.now();
    const local = await db.transaction(admin, (tx) => tx.query("SELECT 1 AS one"));
    const answeredAfter = Date.now() - freeAt;
    console.log(
      `lost worker: the transaction failed ${failedAfter} ms after the cut (${failure.message}); the pool's only slot then served a coordinator-only transaction in ${answeredAfter} ms; pool ${JSON.stringify(db.poolStats!())}`,
    );
    expect(local.rows[0]!.one).toBe(1);
    // The statement timeout, then at most ROLLBACK_WAIT_MS for the ROLLBACK the backend cannot answer yet.
    expect(failedAfter).toBeLessThanOrEqual(STATEMENT_TIMEOUT_MS + ROLLBACK_WAIT_MS + 1_500);
    // A new connection and one round of statements, not the 60 s the old connection's backend is still busy for.
    expect(answeredAfter).toBeLessThan(2_000);
  }, 120_000);
});
