/**
 * Every online shard operation under live writes, on a real Citus cluster (CITUS_URL; CITUS_NEW_WORKER for
 * add-node): writers do what the tenant service does for POST /v1/items, as its role, while shardctl moves shards.
 * Each operation must end within MOVE_BOUND_MS with every acknowledged write present, and tenant isolation must
 * hold afterwards on every node. Skipped with a printed reason without a cluster; drops the platform schema there.
 *
 * On the schema before migration 0004 (row-level security FORCEd) these fail: the preflight refuses the move, and
 * the move itself never catches up (the last tests show both).
 */
import { EXPORTER_QUERIES } from "@platform/monitoring";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@platform/testing";
import { missingWrites, prepareCitusDatabase, runShardctl, startShardctl, startTenantWriters, type WriteLoadReport } from "../src/testing.js";

const CITUS_URL = process.env.CITUS_URL;
const NEW_WORKER = process.env.CITUS_NEW_WORKER;
if (!CITUS_URL) console.warn("skipping shard operations under live writes: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");
else if (!NEW_WORKER) console.warn("skipping add-node --rebalance under live writes: set CITUS_NEW_WORKER=host:port to a PostgreSQL with the citus extension, not yet a node");

/** How long one shard operation may take on a small test cluster with writers running. */
const MOVE_BOUND_MS = 240_000;

/** shardctl as an SRE runs it, killed at the bound. */
const shardctl = (...args: string[]) => runShardctl(CITUS_URL!, args, MOVE_BOUND_MS);

describe.skipIf(!CITUS_URL)("shard operations while the service writes (real Citus)", () => {
  let admin: pg.Client;
  let appUrl: string;
  let release: (() => Promise<void>) | undefined;
  let tenants: { id: string; ownerId: string }[] = [];
  const timings: string[] = [];

  /** Runs one shardctl operation with writers on, and checks what they were told was written is all there. */
  async function underWrites(label: string, ...args: string[]): Promise<{ out: string; report: WriteLoadReport }> {
    const writers = startTenantWriters(appUrl, tenants, { clients: 6, ratePerClient: 25 });
    // Writes flowing before the operation starts, so it sees the application as live.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const r = await shardctl(...args, "--yes");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const report = await writers.stop();
    timings.push(`${label}: ${(r.ms / 1000).toFixed(1)} s, ${report.acknowledged.length} writes acknowledged, longest stall ${report.longestStallMs} ms, errors ${JSON.stringify(report.errors)}`);
    console.log(`[shard-moves] ${timings.at(-1)}`);
    expect(r.code, `${label} did not end within ${MOVE_BOUND_MS / 1000} s or failed:\n${r.out}`).toBe(0);
    expect(report.acknowledged.length).toBeGreaterThan(100);
    const missing = await missingWrites(admin, report.acknowledged);
    for (const id of missing) {
      // What a lost write looks like, to tell a lost transaction from half of one: its tenant, when it was
      // acknowledged, and whether the audit row written in the same transaction survived.
      const write = report.acknowledged.find((w) => w.id === id)!;
      const audit = (await admin.query("SELECT count(*)::int AS n FROM platform.audit_log WHERE tenant_id = $1 AND entity_id = $2", [write.tenantId, id])).rows[0].n;
      console.log(`[shard-moves] ${label}: item ${id} of tenant ${write.tenantId} acknowledged at ${new Date(write.at).toISOString()} is missing; its audit row: ${audit}`);
    }
    expect(missing).toEqual([]);
    expect(report.errors).toEqual({});
    return { out: r.out, report };
  }

  const workers = async () => (await admin.query<{ nodename: string; nodeport: number }>("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND isactive ORDER BY nodeport")).rows;
  const spec = (n: { nodename: string; nodeport: number }) => `${n.nodename}:${n.nodeport}`;

  beforeAll(async () => {
    ({ appUrl, release } = await prepareCitusDatabase(CITUS_URL!));
    admin = new pg.Client({ connectionString: CITUS_URL });
    await admin.connect();
    await admin.query("INSERT INTO platform.tenants (id, code, name) SELECT gen_random_uuid(), 'test-' || i, 'T' || i FROM generate_series(1, 40) i");
    await admin.query("INSERT INTO platform.users (tenant_id, email) SELECT id, 'owner@' || code || '.test' FROM platform.tenants");
    await admin.query("INSERT INTO platform.items (tenant_id, owner_id, title) SELECT u.tenant_id, u.id, 'seed ' || g FROM platform.users u, generate_series(1, 200) g");
    tenants = (await admin.query<{ id: string; ownerId: string }>('SELECT tenant_id::text AS id, id::text AS "ownerId" FROM platform.users ORDER BY 1')).rows;
  }, 300_000);

  afterAll(async () => {
    console.log(`[shard-moves] bound per operation ${MOVE_BOUND_MS / 1000} s\n  ${timings.join("\n  ")}`);
    if (admin) {
      // A move the test gave up on keeps running in the coordinator's backend: stop it, and the background job.
      await admin.query("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ~ 'citus_(move_shard_placement|drain_node)|isolate_tenant_to_new_shard'").catch(() => {});
      await admin.query("SELECT citus_rebalance_stop()").catch(() => {});
      await admin.query("UPDATE pg_dist_node SET shouldhaveshards = true WHERE groupid > 0").catch(() => {});
      await admin.end();
    }
    await release?.();
  });

  it("move-shard completes under writes, every acknowledged write present", { timeout: MOVE_BOUND_MS + 60_000 }, async () => {
    const shard = (await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'platform.items'::regclass ORDER BY shard_size DESC LIMIT 1")).rows[0];
    const target = (await workers()).find((w) => w.nodeport !== shard.nodeport)!;
    const { out } = await underWrites("move-shard", "move-shard", String(shard.shardid), spec(shard), spec(target));
    expect(out).toMatch(/ok {3}row-level security not forced/);
    expect(out).toMatch(/verified under live writes: every shard has one active placement/);
    expect((await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0].nodeport).toBe(target.nodeport);
  });

  /**
   * A move held in flight on purpose: a transaction that has written to the shard and stays open. Citus blocks writes
   * to the shard group before it switches, and waits for that transaction (on this cluster a move of one of these
   * shards takes about 2.5 s alone and waits as long as the transaction stays open), so the move is surely still
   * running when the test interrupts shardctl.
   */
  async function heldMove(): Promise<{
    shard: { shardid: string; nodename: string; nodeport: number };
    target: { nodename: string; nodeport: number };
    /** The holding session's global pid, as Citus names it on the workers. */
    gpid: string;
    release(): Promise<void>;
  }> {
    const tenant = tenants[1]!;
    const shard = (
      await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('platform.items', $1::uuid)", [tenant.id])
    ).rows[0];
    const target = (await workers()).find((w) => w.nodeport !== shard.nodeport)!;
    const holder = new pg.Client({ connectionString: CITUS_URL, application_name: "test-move-holder" });
    await holder.connect();
    const gpid = String((await holder.query("SELECT citus_backend_gpid() AS g")).rows[0].g);
    await holder.query("BEGIN");
    await holder.query("UPDATE platform.items SET title = title WHERE tenant_id = $1", [tenant.id]);
    return {
      shard,
      target,
      gpid,
      async release() {
        await holder.query("ROLLBACK").catch(() => {});
        await holder.end();
      },
    };
  }

  /** shardctl's session on the coordinator while it runs Citus's move. */
  const moveSession = async () =>
    (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'shardctl' AND state = 'active' AND query ~ 'citus_move_shard_placement'")).rows[0];

  /** What a move leaves on the nodes until it ends or Citus cleans up after it. */
  async function moveLeftovers(): Promise<string[]> {
    await admin.query("CALL citus_cleanup_orphaned_resources()");
    const { rows } = await admin.query<{ nodeport: number; result: string }>(
      `SELECT nodeport, result FROM run_command_on_all_nodes($$SELECT concat_ws(',', (SELECT string_agg(subname, ',') FROM pg_subscription), (SELECT string_agg(slot_name, ',') FROM pg_replication_slots WHERE slot_name LIKE 'citus%')) $$) JOIN pg_dist_node USING (nodeid)`,
    );
    return rows.filter((r) => r.result !== "").map((r) => `${r.nodeport}: ${r.result}`);
  }

  it("Ctrl-C during a move under writes cancels it: the shard stays, nothing is left behind, no acknowledged write lost, the operation recorded; the same command then completes", { timeout: MOVE_BOUND_MS + 120_000 }, async () => {
    const writers = startTenantWriters(appUrl, tenants, { clients: 6, ratePerClient: 25 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const held = await heldMove();
    const { shard, target } = held;
    const args = ["move-shard", String(shard.shardid), spec(shard), spec(target)];
    const run = startShardctl(CITUS_URL!, [...args, "--yes"]);
    let early: Awaited<typeof run.done> | undefined;
    try {
      await waitFor("shardctl's move in flight", moveSession, { timeoutMs: 60_000, intervalMs: 200, detail: () => run.output() });
      run.kill("SIGINT");
      // It must end while the move is still held: a cancel that did not reach the session would let the move
      // finish once released (exit 0), not hang the test.
      early = await Promise.race([run.done, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20_000))]);
    } finally {
      await held.release();
    }
    const result = early ?? (await run.done);
    const report = await writers.stop();
    expect(early, `shardctl had not ended 20 s after Ctrl-C:\n${result.out}`).toBeDefined();
    console.log(`[shard-moves] Ctrl-C during move-shard: exit ${result.code}; ${report.acknowledged.length} writes acknowledged, longest stall ${report.longestStallMs} ms\n${result.out}`);
    expect(result.code, result.out).toBe(4);
    expect(result.out).toMatch(/SIGINT: cancelling the move in flight \(coordinator session \d+\)/);
    expect(result.out).toMatch(/interrupted \(SIGINT\): the move-shard in flight was cancelled, and Citus rolled the unfinished move back/);
    expect((await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0].nodeport).toBe(shard.nodeport);
    expect(await moveSession()).toBeUndefined();
    expect(await moveLeftovers()).toEqual([]);
    expect(await missingWrites(admin, report.acknowledged)).toEqual([]);
    expect(report.errors).toEqual({});
    const op = (await admin.query("SELECT status, details FROM platform_ops.operations WHERE command = 'move-shard' ORDER BY id DESC LIMIT 1")).rows[0];
    expect(op).toMatchObject({ status: "failed", details: { interrupted: "SIGINT" } });
    // The same command again, under writes, completes the move.
    await underWrites("move-shard after Ctrl-C", ...args);
    expect((await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0].nodeport).toBe(target.nodeport);
  });

  it("a shardctl killed during a move: its session finishes the move unseen, another shardctl is refused naming it meanwhile, then status lists the abandoned operation and the next shardctl closes it", { timeout: MOVE_BOUND_MS + 180_000 }, async () => {
    const writers = startTenantWriters(appUrl, tenants, { clients: 6, ratePerClient: 25 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const held = await heldMove();
    const { shard, target } = held;
    const run = startShardctl(CITUS_URL!, ["move-shard", String(shard.shardid), spec(shard), spec(target), "--yes"]);
    let session: { pid: number };
    let refused: Awaited<ReturnType<typeof shardctl>>;
    try {
      session = await waitFor("shardctl's move in flight", moveSession, { timeoutMs: 60_000, intervalMs: 200, detail: () => run.output() });
      run.kill("SIGKILL");
      expect((await run.done).signal).toBe("SIGKILL");
      // What holds the move, as status says it: the slot on the source waits for the open transaction.
      const waiting = await waitFor(
        "status to show the move's slot waiting",
        async () => {
          const r = await shardctl("status");
          return /waiting: the move's replication slot/.test(r.out) ? r.out : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(waiting).toMatch(
        new RegExp(
          `waiting: the move's replication slot citus_shard_move_slot_\\S+ on ${shard.nodename}:${shard.nodeport} has waited \\d+ s for older transactions there to end ` +
            `\\(pid \\d+, a distributed transaction of global pid ${held.gpid}, idle in transaction with a transaction open \\d+ s\\)`,
        ),
      );
      // The process is gone; its session is not, and holds shardctl's lock.
      refused = await shardctl("move-shard", String(shard.shardid), spec(shard), spec(target), "--yes");
    } finally {
      await held.release();
    }
    expect(refused.code, refused.out).toBe(3);
    expect(refused.out).toMatch(
      new RegExp(`another shardctl is running \\(coordinator session ${session.pid}, postgres, shardctl; running for \\d+ s: SELECT citus_move_shard_placement\\(${shard.shardid},.*pg_cancel_backend\\(${session.pid}\\)`),
    );
    // Released, the session completes the move it was given, with no one to tell.
    // (Its session then sees no client to answer, and ends: idle for a moment first.)
    await waitFor("the killed shardctl's session to end", async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [session.pid])).rows.length === 0, {
      timeoutMs: MOVE_BOUND_MS,
    });
    expect((await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0].nodeport).toBe(target.nodeport);
    // A tenantctl run in progress, as tenantctl records one (no session: its pooled connections may close while it
    // runs): it must not be taken for abandoned.
    const tenantctlRun = (await admin.query<{ id: string }>("INSERT INTO platform_ops.operations (command, arguments, os_user) VALUES ('tenantctl move', '{}', 'test') RETURNING id")).rows[0]!.id;
    const abandoned = (await admin.query<{ id: string }>("SELECT id FROM platform_ops.operations WHERE command = 'move-shard' AND status = 'running'")).rows;
    expect(abandoned).toHaveLength(1);
    const status = await shardctl("status");
    expect(status.out).toMatch(new RegExp(`ABANDONED: operation ${abandoned[0]!.id} \\(move-shard \\{.*"shard":${shard.shardid}\\}, started .* by \\S+\\) was left running by a process that ended before it finished`));
    expect(JSON.parse((await shardctl("status", "--json")).out).abandonedOperations).toEqual([expect.objectContaining({ id: Number(abandoned[0]!.id), command: "move-shard" })]);
    // The next mutating shardctl closes it, and says so; here it moves the shard back.
    const back = await shardctl("move-shard", String(shard.shardid), spec(target), spec(shard), "--yes");
    expect(back.code, back.out).toBe(0);
    expect(back.out).toMatch(new RegExp(`closed: operation ${abandoned[0]!.id} \\(move-shard .*recorded as failed`));
    expect((await admin.query("SELECT status, details->>'error' AS error FROM platform_ops.operations WHERE id = $1", [abandoned[0]!.id])).rows[0]).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/^abandoned: the process that ran it ended without recording an end/),
    });
    expect((await shardctl("status")).out).not.toMatch(/ABANDONED/);
    expect(back.out).not.toContain(`operation ${tenantctlRun} `);
    expect((await admin.query("SELECT status FROM platform_ops.operations WHERE id = $1", [tenantctlRun])).rows[0].status).toBe("running");
    await admin.query("DELETE FROM platform_ops.operations WHERE id = $1", [tenantctlRun]);
    const report = await writers.stop();
    console.log(`[shard-moves] shardctl SIGKILLed during move-shard: ${report.acknowledged.length} writes acknowledged, longest stall ${report.longestStallMs} ms`);
    expect(await moveLeftovers()).toEqual([]);
    expect(await missingWrites(admin, report.acknowledged)).toEqual([]);
    expect(report.errors).toEqual({});
  });

  it("isolate-tenant completes under writes to that tenant", { timeout: MOVE_BOUND_MS + 60_000 }, async () => {
    const tenant = tenants[0]!;
    const holder = (await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('platform.items', $1::uuid)", [tenant.id])).rows[0];
    const target = (await workers()).find((w) => w.nodeport !== holder.nodeport)!;
    await underWrites("isolate-tenant", "isolate-tenant", tenant.id, "--to", spec(target));
    const shard = (
      await admin.query(
        "SELECT s.shardminvalue = s.shardmaxvalue AS isolated, c.nodeport FROM pg_dist_shard s JOIN citus_shards c USING (shardid) WHERE s.shardid = get_shard_id_for_distribution_column('platform.items', $1::uuid)",
        [tenant.id],
      )
    ).rows[0];
    expect(shard).toEqual({ isolated: true, nodeport: target.nodeport });
  });

  it("drain completes under writes and leaves the worker empty", { timeout: MOVE_BOUND_MS + 60_000 }, async () => {
    const last = (await workers()).at(-1)!;
    const { out } = await underWrites("drain", "drain", spec(last));
    // The watch beside Citus's synchronous drain said what was moving while it waited.
    expect(out).toMatch(new RegExp(`moving shard \\d+ \\(platform\\.\\w+ and colocated\\) ${last.nodename}:${last.nodeport} -> `));
    expect((await admin.query("SELECT count(*)::int AS n FROM citus_shards WHERE nodeport = $1 AND citus_table_type = 'distributed'", [last.nodeport])).rows[0].n).toBe(0);
  });

  it("rebalance under writes: shardctl stopped by SIGTERM detaches, recorded, the job goes on, and --attach follows it to the end, filling the drained worker again", { timeout: MOVE_BOUND_MS + 60_000 }, async () => {
    const last = (await workers()).at(-1)!;
    await admin.query("SELECT citus_set_node_property($1, $2, 'shouldhaveshards', true)", [last.nodename, last.nodeport]);
    const writers = startTenantWriters(appUrl, tenants, { clients: 6, ratePerClient: 25 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const run = startShardctl(CITUS_URL!, ["rebalance", "--yes"]);
    // A rolling update, a closed terminal: SIGTERM once the job moves its first shard group.
    const jobId = await waitFor("the rebalance job's first move", () => /rebalance job (\d+): \d+\/\d+ tasks; moving/.exec(run.output())?.[1], {
      timeoutMs: 120_000,
      intervalMs: 200,
      detail: () => run.output(),
    });
    run.kill("SIGTERM");
    const stopped = await run.done;
    expect(stopped.code, stopped.out).toBe(0);
    expect(stopped.out).toContain(`SIGTERM: detached: job ${jobId} keeps running`);
    expect(stopped.out).toContain("not verified: the job is still running");
    expect((await admin.query("SELECT status FROM platform_ops.operations WHERE command = 'rebalance' ORDER BY id DESC LIMIT 1")).rows[0].status).toBe("detached");
    expect((await admin.query("SELECT state::text FROM citus_rebalance_status() WHERE job_id = $1", [jobId])).rows[0].state).toBe("running");
    const attached = await shardctl("rebalance", "--attach");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const report = await writers.stop();
    timings.push(`rebalance (SIGTERM, then --attach): ${(attached.ms / 1000).toFixed(1)} s attached, ${report.acknowledged.length} writes acknowledged, longest stall ${report.longestStallMs} ms, errors ${JSON.stringify(report.errors)}`);
    console.log(`[shard-moves] ${timings.at(-1)}`);
    expect(attached.code, attached.out).toBe(0);
    expect(attached.out).toMatch(new RegExp(`rebalance job ${jobId}: finished`));
    expect(await missingWrites(admin, report.acknowledged)).toEqual([]);
    expect(report.errors).toEqual({});
    expect((await admin.query("SELECT count(*)::int AS n FROM citus_shards WHERE nodeport = $1 AND citus_table_type = 'distributed'", [last.nodeport])).rows[0].n).toBeGreaterThan(0);
  });

  it.skipIf(!NEW_WORKER)("add-node --rebalance completes under writes; the node is then drained and removed, also under writes", { timeout: 3 * MOVE_BOUND_MS }, async () => {
    const { out } = await underWrites("add-node --rebalance", "add-node", NEW_WORKER!, "--rebalance");
    expect(out).toMatch(/rebalance job \d+: finished/);
    const [host, port] = NEW_WORKER!.split(":");
    expect((await admin.query("SELECT count(*)::int AS n FROM citus_shards WHERE nodename = $1 AND nodeport = $2", [host, Number(port)])).rows[0].n).toBeGreaterThan(0);
    await underWrites("drain (new worker)", "drain", NEW_WORKER!);
    const removed = await shardctl("remove-node", NEW_WORKER!, "--yes");
    expect(removed.code, removed.out).toBe(0);
    // The drain's old copies were dropped before the node left: a cleanup record naming a group no longer in the
    // cluster is never cleaned, and Citus then refuses every later move of those shards (the stuck-move test below
    // failed so, "orphaned shard ... could not be cleaned up", when remove-node did not wait for them).
    expect((await admin.query("SELECT object_name FROM pg_dist_cleanup WHERE node_group_id NOT IN (SELECT groupid FROM pg_dist_node)")).rows).toEqual([]);
  });

  it("keeps tenants apart afterwards, on every node: the service role is still subject to row-level security", async () => {
    const [a, b] = [tenants[0]!, tenants[1]!];
    const app = new pg.Client({ connectionString: appUrl });
    await app.connect();
    try {
      // No context: nothing, on router and multi-shard queries alike.
      expect((await app.query("SELECT count(*)::int AS n FROM platform.items")).rows[0].n).toBe(0);
      await app.query("BEGIN");
      await app.query(`SET LOCAL app.tenant_id = '${a.id}'`);
      // RLS applies to the service's role (it is not the owner, nor a member of it, nor BYPASSRLS).
      const active = await app.query("SELECT bool_and(row_security_active(c.oid)) AS on FROM pg_class c WHERE c.relnamespace = 'platform'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition");
      expect(active.rows[0].on).toBe(true);
      expect((await app.query("SELECT DISTINCT tenant_id::text AS t FROM platform.items")).rows).toEqual([{ t: a.id }]);
      expect((await app.query("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1", [b.id])).rows[0].n).toBe(0);
      expect((await app.query("SELECT count(*)::int AS n FROM platform.audit_log WHERE tenant_id = $1", [b.id])).rows[0].n).toBe(0);
      await expect(app.query("INSERT INTO platform.items (tenant_id, owner_id, title) VALUES ($1, $2, 'x')", [b.id, b.ownerId])).rejects.toThrow(/row-level security/);
      await app.query("ROLLBACK");
    } finally {
      await app.end();
    }
    // Every shard, wherever the moves put it, has row-level security on (and not forced).
    for (const table of ["platform.items", "platform.users", "platform.tenant_metrics"]) {
      const shards = await admin.query<{ result: string }>("SELECT result FROM run_command_on_shards($1, $$SELECT relrowsecurity || '/' || relforcerowsecurity FROM pg_class WHERE oid = '%s'::regclass$$)", [table]);
      expect(shards.rows.length).toBeGreaterThan(0);
      expect(new Set(shards.rows.map((r) => r.result)), table).toEqual(new Set(["true/false"]));
    }
  });

  it("refuses, before anything moves, a move that FORCEd row-level security would hang, naming the table and the setting", async () => {
    const shard = (await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'platform.items'::regclass ORDER BY shardid LIMIT 1")).rows[0];
    const target = (await workers()).find((w) => w.nodeport !== shard.nodeport)!;
    await admin.query("ALTER TABLE platform.items FORCE ROW LEVEL SECURITY");
    try {
      const r = await shardctl("move-shard", String(shard.shardid), spec(shard), spec(target), "--yes");
      expect(r.code, r.out).toBe(3);
      expect(r.out).toMatch(/FAIL row-level security not forced: platform\.items: FORCE ROW LEVEL SECURITY stops the subscription/);
      expect(r.out).toContain("preflight failed: nothing was changed");
      expect((await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0].nodeport).toBe(shard.nodeport);
    } finally {
      await admin.query("ALTER TABLE platform.items NO FORCE ROW LEVEL SECURITY");
    }
  });

  it("reports a move that cannot catch up in status, with the subscription's errors and the cause", { timeout: 180_000 }, async () => {
    // The hang itself, made on purpose: FORCE on, a move started behind shardctl's back, writers running. The shard is
    // the one holding the writers' first tenant: a shard no writer touches has nothing to replicate during its move,
    // and finishes (the tenants' ids are random, so "the first shard" held none of them in about one run in four).
    const shard = (
      await admin.query(
        "SELECT shardid, nodename, nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('platform.items', $1::uuid)",
        [tenants[0]!.id],
      )
    ).rows[0];
    const target = (await workers()).find((w) => w.nodeport !== shard.nodeport)!;
    await admin.query("ALTER TABLE platform.items FORCE ROW LEVEL SECURITY");
    const mover = new pg.Client({ connectionString: CITUS_URL, application_name: "test-stuck-move" });
    await mover.connect();
    const writers = startTenantWriters(appUrl, tenants, { clients: 4, ratePerClient: 25 });
    const move = mover
      .query("SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode := 'force_logical')", [shard.shardid, shard.nodename, shard.nodeport, target.nodename, target.nodeport])
      .then(() => "finished", (e: Error) => e.message);
    try {
      let report = "";
      for (let i = 0; i < 30 && !/STALLED/.test(report); i++) {
        await new Promise((resolve) => setTimeout(resolve, 3000));
        report = (await shardctl("status")).out;
      }
      console.log(`[shard-moves] status during a stuck move:\n${report}`);
      expect(report).toMatch(new RegExp(`moving shard \\d+ \\(platform\\.\\w+ and colocated\\) ${shard.nodename}:${shard.nodeport} -> ${target.nodename}:${target.nodeport}`));
      expect(report).toMatch(/STALLED: subscription citus_shard_move_subscription_\S+ on \S+ is not applying the writes made during the move \(\d+ apply error/);
      expect(report).toMatch(/platform\.items has FORCE ROW LEVEL SECURITY, which stops a move's subscription/);
      expect(report).toMatch(/slot citus_shard_move_slot_\S+ on \S+: keeps/);
      const json = JSON.parse((await shardctl("status", "--json")).out);
      expect(json.moves.problems.length).toBeGreaterThan(0);
      // What the alerts read: postgres_exporter's queries on the target (the subscription) and the source (its slot).
      const exported = async (port: number, query: string) => {
        const node = new pg.Client({ connectionString: CITUS_URL!.replace(/:\d+\//, `:${port}/`) });
        await node.connect();
        try {
          return (await node.query(query)).rows;
        } finally {
          await node.end();
        }
      };
      const subscriptions = await exported(target.nodeport, EXPORTER_QUERIES.citus_move_subscription!.query);
      expect(subscriptions).toHaveLength(1);
      expect(subscriptions[0]).toMatchObject({ enabled: 1 });
      expect(subscriptions[0].apply_errors).toBeGreaterThan(0);
      const slots = await exported(shard.nodeport, EXPORTER_QUERIES.replication_slot!.query);
      expect(slots.map((r) => r.slot)).toEqual([expect.stringMatching(/^citus_shard_move_slot_/)]);
      expect(slots[0].retained_bytes).toBeGreaterThan(0);
    } finally {
      await writers.stop();
      await admin.query("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'test-stuck-move'");
      expect(await move).toMatch(/cancel/);
      await mover.end();
      await admin.query("ALTER TABLE platform.items NO FORCE ROW LEVEL SECURITY");
      // What the cancelled move left (subscription, slot, the target's copy) is Citus's to clean up.
      await admin.query("CALL citus_cleanup_orphaned_resources()").catch(() => {});
    }
    expect((await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0].nodeport).toBe(shard.nodeport);
  });
});
