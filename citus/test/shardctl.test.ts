import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bytesPerNode,
  nodeKey,
  parseNode,
  shardGroups,
  simulateAddWorkers,
  skew,
  skewLowerBound,
  summarizePlan,
  type NodeInfo,
  type PlanMove,
  type ShardPlacement,
} from "../src/shardctl/analysis.js";
import { wroteBetween } from "../src/shardctl/mutate.js";
import { prepareCitusDatabase, runShardctl } from "../src/testing.js";

// Real catalog output of a Citus 13.2.2 cluster, kept in the repository so that a clean clone tests the same (README.md there).
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "citus-13.2");
const fixture = <T>(name: string): T => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as T;

/** The fixture's citus_shards rows with their shard group, as shardctl's catalog query returns them. */
function fixtureShards(): ShardPlacement[] {
  const minValue = new Map(fixture<{ shardid: number; shardminvalue: string | null }[]>("pg_dist_shard").map((s) => [s.shardid, s.shardminvalue]));
  return fixture<Omit<ShardPlacement, "group">[]>("citus_shards").map((s) => ({ ...s, group: `${s.colocation_id}:${minValue.get(s.shardid) ?? "ref"}` }));
}

describe("shard analysis on a real Citus 13.2 catalog snapshot (4 nodes, a whale tenant)", () => {
  const nodes = fixture<NodeInfo[]>("pg_dist_node");
  const shards = fixtureShards();

  it("counts bytes per worker, leaving out the coordinator and reference tables", () => {
    const load = bytesPerNode(nodes, shards);
    expect([...load.keys()].sort()).toEqual(["127.0.0.1:9701", "127.0.0.1:9702", "127.0.0.1:9703"]);
    const distributed = shards.filter((s) => s.citus_table_type === "distributed").reduce((a, s) => a + s.shard_size, 0);
    expect([...load.values()].reduce((a, b) => a + b, 0)).toBe(distributed);
    expect(load.get("127.0.0.1:9703")).toBe(0); // just added, before any rebalance
  });

  it("groups colocated shards that move together", () => {
    const groups = shardGroups(shards);
    expect(groups.size).toBe(16); // accounts and orders, 16 shards each, colocated
    for (const g of groups.values()) expect(g.shardIds.length).toBe(2);
  });

  it("computes skew and its lower bound: the whale's shard group cannot be split by moves", () => {
    const load = bytesPerNode(nodes, shards);
    expect(skew(load)).toBeGreaterThan(1.4); // one of three workers is empty
    const bound = skewLowerBound(load, shardGroups(shards));
    expect(bound).toBeGreaterThan(1.5); // the fixture's README: after the rebalance one worker holds ~10.6 of ~12.9 MB
  });

  it("summarizes Citus's by_disk_size plan per shard group, with bytes, a duration estimate and the skew after", () => {
    const plan = fixture<PlanMove[]>("rebalance_plan_by_disk_size");
    const summary = summarizePlan(plan, shards, nodes, { bytesPerSecond: 1024 * 1024, secondsPerGroup: 10 });
    expect(summary.moves.length).toBe(5);
    expect(new Set(summary.moves.map((m) => m.target))).toEqual(new Set([nodeKey("127.0.0.1", 9703)]));
    expect(summary.moves.every((m) => m.shards === 2)).toBe(true);
    expect(summary.bytesToMove).toBeGreaterThan(0);
    expect(summary.estimatedSeconds).toBeCloseTo(summary.bytesToMove / (1024 * 1024) + 50, 5);
    // The plan moves the whale's group to the new worker, which then becomes the largest: shard moves alone cannot
    // balance a cluster with a whale (the fixture's own finding), and the summary must say so, not hide it.
    const largest = Math.max(...[...shardGroups(shards).values()].map((g) => g.bytes));
    expect(Math.max(...summary.moves.map((m) => m.bytes))).toBe(largest);
    expect(summary.skewAfter).toBeGreaterThanOrEqual(skewLowerBound(bytesPerNode(nodes, shards), shardGroups(shards)) - 1e-9);
  });

  it("simulates adding workers without going below the lower bound", () => {
    const load = bytesPerNode(nodes, shards);
    const result = simulateAddWorkers(load, shardGroups(shards), 2);
    expect(result.load.size).toBe(5);
    expect(result.skew).toBeGreaterThanOrEqual(result.lowerBound - 1e-9);
    expect([...result.load.values()].reduce((a, b) => a + b, 0)).toBe([...load.values()].reduce((a, b) => a + b, 0));
    expect(() => simulateAddWorkers(load, shardGroups(shards), -1)).toThrow(/whole number/);
  });

  it("takes only a shard's own counter growing for the application writing, not shards dropped or created meanwhile", () => {
    // Node id, then each shard's relation id and its insert + update + delete count.
    const counters = (...nodes: [number, Record<string, number>][]) => new Map(nodes);
    const before = counters([2, { "16400": 10, "16401": 5 }], [3, { "16500": 7 }]);
    // Citus dropped an old copy on node 3 and a copy appeared on node 2: their counters come and go, nothing wrote.
    expect(wroteBetween(before, counters([2, { "16400": 10, "16401": 5, "16402": 900 }], [3, {}]))).toBe(false);
    expect(wroteBetween(before, counters([2, { "16400": 10, "16401": 6 }], [3, { "16500": 7 }]))).toBe(true);
    expect(wroteBetween(before, counters([2, { "16400": 10 }], [3, { "16500": 8 }]))).toBe(true);
  });

  it("rejects a node that is not host:port", () => {
    expect(parseNode("worker-3.db.internal:5432")).toEqual({ host: "worker-3.db.internal", port: 5432 });
    for (const bad of ["worker-3", "worker:99999", "; DROP TABLE x:1"]) expect(() => parseNode(bad)).toThrow(/is not host:port/);
  });
});

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping shardctl cluster tests: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

const shardctl = (...args: string[]) => runShardctl(CITUS_URL!, args);

/**
 * Waits until the platform tables' write counters stand still on every node. PostgreSQL 15 publishes a backend's
 * counters when it goes idle, up to 10 s later (PGSTAT_IDLE_INTERVAL), and the previous test's writes went through
 * connections Citus keeps open: shardctl, sampling two seconds apart, would see them arrive and rightly verify as
 * under live writes. A test that means "nothing writes" waits for them first.
 */
async function writesSettled(admin: pg.Client): Promise<void> {
  const sql = "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::text FROM pg_stat_user_tables WHERE schemaname = 'platform'";
  const total = async () =>
    (await admin.query<{ result: string }>("SELECT result FROM run_command_on_all_nodes($1) WHERE success", [sql])).rows.reduce((sum, r) => sum + Number(r.result), 0);
  let last = await total();
  for (let i = 0; i < 15; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const now = await total();
    if (now === last) return;
    last = now;
  }
  throw new Error("the platform tables' write counters did not settle within 30 s: something is writing to the cluster");
}

describe.skipIf(!CITUS_URL)("shardctl on a real Citus cluster", () => {
  let admin: pg.Client;
  let release: (() => Promise<void>) | undefined;
  let drainTarget: { host: string; port: number };
  const placements = async () =>
    JSON.stringify((await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE citus_table_type = 'distributed' ORDER BY shardid, nodeport")).rows);
  const onNode = async (n: { host: string; port: number }) =>
    (await admin.query("SELECT count(*)::int AS n FROM citus_shards WHERE nodename = $1 AND nodeport = $2 AND citus_table_type = 'distributed'", [n.host, n.port])).rows[0].n as number;

  beforeAll(async () => {
    ({ release } = await prepareCitusDatabase(CITUS_URL!));
    admin = new pg.Client({ connectionString: CITUS_URL });
    await admin.connect();
    // Some tenants with rows on every worker.
    await admin.query("INSERT INTO platform.tenants (id, code, name) SELECT gen_random_uuid(), 'test-' || i, 'T' || i FROM generate_series(1, 40) i");
    await admin.query("INSERT INTO platform.users (tenant_id, email) SELECT id, 'u' || g || '@x.test' FROM platform.tenants, generate_series(1, 5) g");
    const workers = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport")).rows;
    drainTarget = { host: workers.at(-1).nodename, port: workers.at(-1).nodeport };
  }, 180_000);
  afterAll(async () => {
    // Leave the cluster as it was: the drained worker takes shards again.
    await admin?.query("SELECT citus_set_node_property($1, $2, 'shouldhaveshards', true)", [drainTarget.host, drainTarget.port]).catch(() => {});
    await admin?.end();
    await release?.();
  });

  it("status reports every node and the skew", async () => {
    const r = await shardctl("status", "--json");
    expect(r.code, r.out).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.nodes.filter((n: { role: string }) => n.role === "worker").length).toBeGreaterThanOrEqual(2);
    expect(report.skew).toBeGreaterThanOrEqual(1);
  });

  it("a dry run prints the SQL and changes nothing", async () => {
    const before = await placements();
    const r = await shardctl("drain", `${drainTarget.host}:${drainTarget.port}`, "--dry-run");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`SELECT citus_drain_node('${drainTarget.host}', ${drainTarget.port});`);
    expect(await placements()).toBe(before);
  });

  // Moving every placement of a dozen tables one by one takes minutes on a small test cluster.
  it("drains a node to zero shards with row counts unchanged, and records the operation", { timeout: 900_000 }, async () => {
    const r = await shardctl("drain", `${drainTarget.host}:${drainTarget.port}`, "--yes");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/verified: \d+ distributed table\(s\), row counts unchanged/);
    expect(await onNode(drainTarget)).toBe(0);
    const op = (await admin.query("SELECT command, status FROM platform_ops.operations ORDER BY id DESC LIMIT 1")).rows[0];
    expect(op).toEqual({ command: "drain", status: "succeeded" });
  });

  it("refuses to remove a node that holds shards, and a node twice added", async () => {
    const other = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND nodeport <> $1 LIMIT 1", [drainTarget.port])).rows[0];
    const remove = await shardctl("remove-node", `${other.nodename}:${other.nodeport}`, "--yes");
    expect(remove.code).toBe(3);
    expect(remove.out).toMatch(/still holds \d+ shard placements: drain it first/);
    const add = await shardctl("add-node", `${other.nodename}:${other.nodeport}`, "--yes");
    expect(add.code).toBe(3);
  });

  it("rebalances the drained node back in: preflight, plan, job to the end, row counts unchanged", { timeout: 900_000 }, async () => {
    await admin.query("SELECT citus_set_node_property($1, $2, 'shouldhaveshards', true)", [drainTarget.host, drainTarget.port]);
    const dry = await shardctl("rebalance", "--dry-run");
    expect(dry.code, dry.out).toBe(0);
    expect(dry.out).toMatch(/ok {3}wal_level = logical/);
    expect(dry.out).toContain("SELECT citus_rebalance_start(rebalance_strategy := 'by_disk_size');");
    expect(await onNode(drainTarget)).toBe(0);
    const r = await shardctl("rebalance", "--yes");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/rebalance job \d+: finished/);
    expect(r.out).toMatch(/row counts unchanged/);
    expect(await onNode(drainTarget)).toBeGreaterThan(0);
  });

  /**
   * A node that decodes only with pgoutput (PostgreSQL 15.19, 16.15 and 17.11 restrict output plugins) cannot split
   * the tenant's shard: shardctl refuses before anything starts and says what to change. Skipped on an older server.
   */
  async function refusesWithoutCitusDecoder(tenant: { id: string; code: string }) {
    const holder = (
      await admin.query("SELECT nodename, nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('platform.users', $1::uuid)", [tenant.id])
    ).rows[0] as { nodename: string; nodeport: number };
    const onHolder = async (command: string) =>
      (await admin.query("SELECT success, result FROM run_command_on_workers($1) WHERE nodename = $2 AND nodeport = $3", [command, holder.nodename, holder.nodeport]))
        .rows[0] as { success: boolean; result: string };
    const setting = await onHolder(
      "SELECT coalesce((SELECT setting || '|' || coalesce(sourcefile, '') FROM pg_settings WHERE name = 'output_plugin_libraries'), '')",
    );
    if (!setting.result) {
      console.warn(`skipping the output-plugin refusal: ${holder.nodename}:${holder.nodeport} predates output_plugin_libraries`);
      return;
    }
    const [value, sourcefile] = setting.result.split("|");
    expect((await onHolder("ALTER SYSTEM SET output_plugin_libraries = pgoutput")).success).toBe(true);
    try {
      await onHolder("SELECT pg_reload_conf()");
      const refused = await shardctl("isolate-tenant", tenant.code, "--yes");
      expect(refused.code, refused.out).toBe(3);
      expect(refused.out).toContain(`${holder.nodename}:${holder.nodeport}, which holds the tenant's shard, decodes only with the output plugins "pgoutput"`);
      expect(refused.out).toMatch(/output_plugin_libraries = 'pgoutput, citus'.*Nothing was changed/s);
      const isolated = await admin.query(
        "SELECT shardminvalue = shardmaxvalue AS isolated FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column('platform.users', $1::uuid)",
        [tenant.id],
      );
      expect(isolated.rows[0].isolated).toBe(false);
    } finally {
      // Back to where the value came from: postgresql.auto.conf (ALTER SYSTEM) or the server's own configuration.
      const restore = sourcefile?.endsWith("postgresql.auto.conf")
        ? `ALTER SYSTEM SET output_plugin_libraries = ${value!.split(",").map((name) => `'${name.trim()}'`).join(", ")}`
        : "ALTER SYSTEM RESET output_plugin_libraries";
      expect((await onHolder(restore)).success).toBe(true);
      await onHolder("SELECT pg_reload_conf()");
    }
  }

  it("isolates a whale tenant to its own shard group and places it where asked, rows intact", { timeout: 600_000 }, async () => {
    const tenant = (await admin.query("SELECT id::text AS id, code FROM platform.tenants ORDER BY code LIMIT 1")).rows[0] as { id: string; code: string };
    const other = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport LIMIT 1")).rows[0];
    const users = async () => (await admin.query("SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [tenant.id])).rows[0].n as number;
    const before = await users();
    await refusesWithoutCitusDecoder(tenant);
    const dry = await shardctl("isolate-tenant", tenant.code, "--dry-run");
    expect(dry.out).toContain(`SELECT isolate_tenant_to_new_shard('platform.users', '${tenant.id}'::uuid, 'CASCADE'`);
    const r = await shardctl("isolate-tenant", tenant.code, "--to", `${other.nodename}:${other.nodeport}`, "--yes");
    expect(r.code, r.out).toBe(0);
    const shard = (
      await admin.query(
        `SELECT s.shardminvalue = s.shardmaxvalue AS isolated, n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n ON n.groupid = p.groupid
          WHERE s.shardid = get_shard_id_for_distribution_column('platform.users', $1::uuid)`,
        [tenant.id],
      )
    ).rows[0];
    expect(shard).toEqual({ isolated: true, nodeport: other.nodeport });
    expect(await users()).toBe(before);
    // Again: already isolated, only placed.
    const again = await shardctl("isolate-tenant", tenant.id, "--to", `${other.nodename}:${other.nodeport}`, "--yes");
    expect(again.out).toMatch(/already has shard \d+ to itself/);
    const empty = await shardctl("isolate-tenant", "00000000-0000-4000-8000-000000000000", "--yes");
    expect(empty.code).toBe(2);
    expect(empty.out).toMatch(/has no rows in platform.users: nothing to isolate/);
  });

  it("says where a tenant lives: its shards, their node, alone or shared, its rows and bytes, its load", async () => {
    const [isolated, shared] = (await admin.query("SELECT id::text AS id, code FROM platform.tenants ORDER BY code LIMIT 2")).rows as { id: string; code: string }[];
    // The first was isolated by the test before; the second shares its shards with other tenants.
    await admin.query("SELECT count(*) FROM platform.users WHERE tenant_id = $1", [shared!.id]); // a query for its load
    const r = await shardctl("tenant", shared!.code, "--json");
    expect(r.code, r.out).toBe(0);
    const report = JSON.parse(r.out) as { tenant: string; code: string; placement: string; shards: { table: string; shardId: number; node: string; isolated: boolean; tenantRows: number; tenantBytes: number; shardBytes: number }[]; load: { tracked: boolean; queriesThisPeriod: number } };
    expect(report).toMatchObject({ tenant: shared!.id, code: shared!.code, placement: "home" });
    const users = report.shards.find((s) => s.table === "platform.users")!;
    const truth = (await admin.query(
      `SELECT s.shardid::int AS id, n.nodename || ':' || n.nodeport AS node FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n ON n.groupid = p.groupid
        WHERE s.shardid = get_shard_id_for_distribution_column('platform.users', $1::uuid)`, [shared!.id])).rows[0];
    expect(users).toMatchObject({ shardId: truth.id, node: truth.node, isolated: false, tenantRows: 5 });
    expect(users.tenantBytes).toBeGreaterThan(0);
    expect(users.shardBytes).toBeGreaterThan(users.tenantBytes);
    expect(new Set(report.shards.map((s) => s.node))).toEqual(new Set([truth.node])); // colocated: one worker
    expect(report.load.tracked).toBe(true);
    const alone = JSON.parse((await shardctl("tenant", isolated!.id, "--json")).out) as typeof report;
    expect(alone.shards.find((s) => s.table === "platform.users")).toMatchObject({ isolated: true, tenantRows: 5 });
    const text = await shardctl("tenant", shared!.code);
    expect(text.out).toContain(`tenant ${shared!.id} (${shared!.code}), placed in database "home"`);
    expect(text.out).toMatch(new RegExp(`platform\\.users\\s+${truth.id}\\s+${truth.node.replace(/\./g, "\\.")}\\s+no`));
    const unknown = await shardctl("tenant", "no-such-tenant");
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain('no tenant with id or code "no-such-tenant"');
  });

  it("moves one shard group between workers, and refuses a shard that is not where it is said to be", { timeout: 600_000 }, async () => {
    const workers = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport")).rows;
    const shard = (await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'platform.users'::regclass ORDER BY shardid LIMIT 1")).rows[0];
    const target = workers.find((w) => w.nodeport !== shard.nodeport)!;
    const from = `${shard.nodename}:${shard.nodeport}`;
    const to = `${target.nodename}:${target.nodeport}`;
    const wrong = await shardctl("move-shard", String(shard.shardid), to, from);
    expect(wrong.code).toBe(2);
    expect(wrong.out).toMatch(/has no placement on/);
    await writesSettled(admin);
    const r = await shardctl("move-shard", String(shard.shardid), from, to, "--yes");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/row counts unchanged/);
    const now = (await admin.query("SELECT nodeport FROM citus_shards WHERE shardid = $1", [shard.shardid])).rows[0];
    expect(now.nodeport).toBe(target.nodeport);
  });

  it("refuses a second concurrent run", async () => {
    const holder = new pg.Client({ connectionString: CITUS_URL, application_name: "other-shardctl" });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(7302615003)");
      const r = await shardctl("drain", `${drainTarget.host}:${drainTarget.port}`, "--yes");
      expect(r.code).toBe(3);
      expect(r.out).toMatch(/another shardctl is running \(coordinator session (\d+), postgres, other-shardctl; idle for \d+ s\): wait for it\..*pg_cancel_backend\(\1\)/);
    } finally {
      await holder.end();
    }
  });

  // A third worker is a PostgreSQL with the citus extension that is not yet in the cluster.
  const NEW_WORKER = process.env.CITUS_NEW_WORKER;
  if (CITUS_URL && !NEW_WORKER) console.warn("skipping the add-node test: set CITUS_NEW_WORKER=host:port to a PostgreSQL with the citus extension, not yet a node");
  it.skipIf(!NEW_WORKER)("adds a third worker and rebalances onto it with row counts unchanged, then drains and removes it", { timeout: 1_200_000 }, async () => {
    const added = parseNode(NEW_WORKER!);
    const dry = await shardctl("add-node", NEW_WORKER!, "--rebalance", "--dry-run");
    expect(dry.code, dry.out).toBe(0);
    expect(dry.out).toContain(`SELECT citus_add_node('${added.host}', ${added.port});`);
    expect(dry.out).toContain("SELECT citus_rebalance_start(rebalance_strategy := 'by_disk_size');");
    expect((await admin.query("SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [added.host, added.port])).rows).toEqual([]);
    const r = await shardctl("add-node", NEW_WORKER!, "--rebalance", "--yes");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/rebalance job \d+: finished/);
    expect(r.out).toMatch(/row counts unchanged/);
    expect(await onNode(added)).toBeGreaterThan(0);
    // Leave the cluster as it was.
    const drain = await shardctl("drain", NEW_WORKER!, "--yes");
    expect(drain.code, drain.out).toBe(0);
    const remove = await shardctl("remove-node", NEW_WORKER!, "--yes");
    expect(remove.code, remove.out).toBe(0);
    expect((await admin.query("SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [added.host, added.port])).rows).toEqual([]);
    // Nothing of the drained node left for Citus to clean: such a record would block later moves of its shards.
    expect((await admin.query("SELECT object_name FROM pg_dist_cleanup WHERE node_group_id NOT IN (SELECT groupid FROM pg_dist_node)")).rows).toEqual([]);
  });

  it.skipIf(!NEW_WORKER)("remove-node drops the drained node's old copies first, and refuses, removing nothing, while one cannot be dropped", { timeout: 600_000 }, async () => {
    const added = parseNode(NEW_WORKER!);
    const direct = new URL(CITUS_URL!);
    direct.hostname = added.host;
    direct.port = String(added.port);
    const holder = new pg.Client({ connectionString: direct.toString(), application_name: "test-holds-old-copy" });
    // Citus's own background drop of old copies paused, so that a copy is still there when remove-node runs.
    await admin.query("ALTER SYSTEM SET citus.defer_shard_delete_interval = -1");
    await admin.query("SELECT pg_reload_conf()");
    try {
      expect((await shardctl("add-node", NEW_WORKER!, "--yes")).code).toBe(0);
      const shard = (await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'platform.items'::regclass ORDER BY shardid LIMIT 1")).rows[0];
      const there = await shardctl("move-shard", String(shard.shardid), `${shard.nodename}:${shard.nodeport}`, NEW_WORKER!, "--yes");
      expect(there.code, there.out).toBe(0);
      const drained = await shardctl("drain", NEW_WORKER!, "--yes");
      expect(drained.code, drained.out).toBe(0);
      const group = (await admin.query("SELECT groupid FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [added.host, added.port])).rows[0].groupid;
      const copies = (await admin.query<{ object_name: string }>("SELECT object_name FROM pg_dist_cleanup WHERE node_group_id = $1 AND object_type = 1 ORDER BY 1", [group])).rows;
      expect(copies.length, "the drain left its old copies for later").toBeGreaterThan(0);
      // A query still reading one old copy: Citus's drop waits 1 s for its lock and gives up.
      await holder.connect();
      await holder.query("BEGIN");
      // (Citus refuses LOCK on a shard unless manual changes to shards are allowed.)
      await holder.query("SET LOCAL citus.enable_manual_changes_to_shards = on");
      await holder.query(`LOCK TABLE ${copies[0]!.object_name} IN ACCESS SHARE MODE`);
      const refused = await shardctl("remove-node", NEW_WORKER!, "--yes");
      expect(refused.code, refused.out).toBe(3);
      // The held copy stays, with whatever its drop depends on (a partition's parent, tables referencing it); the
      // refusal counts what is left.
      const left = (await admin.query<{ object_name: string }>("SELECT object_name FROM pg_dist_cleanup WHERE node_group_id = $1", [group])).rows.map((r) => r.object_name);
      expect(left).toContain(copies[0]!.object_name);
      expect(refused.out).toContain(`${NEW_WORKER} still has ${left.length} leftover${left.length === 1 ? "" : "s"} of earlier moves waiting to be dropped (pg_dist_cleanup: `);
      expect(refused.out).toContain("Nothing was removed");
      expect((await admin.query("SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [added.host, added.port])).rows).toHaveLength(1);
      await holder.query("ROLLBACK");
      const removed = await shardctl("remove-node", NEW_WORKER!, "--yes");
      expect(removed.code, removed.out).toBe(0);
      expect((await admin.query("SELECT object_name FROM pg_dist_cleanup WHERE node_group_id NOT IN (SELECT groupid FROM pg_dist_node)")).rows).toEqual([]);
      // The copies are gone from the machine too, not only from the records.
      const onMachine = await holder.query("SELECT count(*)::int AS n FROM pg_class WHERE oid::regclass::text = ANY($1)", [copies.map((c) => c.object_name)]);
      expect(onMachine.rows[0].n).toBe(0);
    } finally {
      await holder.end().catch(() => {});
      await admin.query("ALTER SYSTEM RESET citus.defer_shard_delete_interval");
      await admin.query("SELECT pg_reload_conf()");
      // Left as it was found, whatever failed above: the node out of the cluster for the tests after this one.
      if ((await admin.query("SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [added.host, added.port])).rows.length > 0) {
        await shardctl("drain", NEW_WORKER!, "--yes");
        await shardctl("remove-node", NEW_WORKER!, "--yes");
      }
    }
  });

  it("status names cleanup records left for a node no longer in the cluster, which block moves of their shards, and how to clear them", async () => {
    // What a node removed before its deferred drops ran leaves (as remove-node did before it waited for them).
    const gone = (await admin.query<{ g: number }>("SELECT max(groupid) + 100 AS g FROM pg_dist_node")).rows[0]!.g;
    const placed = (
      await admin.query<{ name: string; shardid: string; nodename: string; nodeport: number }>(
        "SELECT shard_name::text AS name, shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'platform.items'::regclass LIMIT 1",
      )
    ).rows[0]!;
    const shard = placed.name;
    const elsewhere = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND nodeport <> $1 LIMIT 1", [placed.nodeport])).rows[0];
    await admin.query("INSERT INTO pg_dist_cleanup (record_id, operation_id, object_type, object_name, node_group_id, policy_type) VALUES (nextval('pg_dist_cleanup_recordid_seq'), 0, 1, $1, $2, 2)", [shard, gone]);
    try {
      const r = await shardctl("status");
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`BLOCKED: 1 cleanup record (pg_dist_cleanup, e.g. ${shard}) names node group ${gone}, which is no longer in the cluster`);
      expect(r.out).toContain(`DELETE FROM pg_dist_cleanup WHERE node_group_id = ${gone}`);
      const json = JSON.parse((await shardctl("status", "--json")).out);
      expect(json.staleCleanup).toContainEqual({ group: gone, records: 1, example: shard });
      // What the line warns of, from Citus itself: the shard no longer moves.
      const move = await admin
        .query("SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode := 'block_writes')", [placed.shardid, placed.nodename, placed.nodeport, elsewhere.nodename, elsewhere.nodeport])
        .then(() => "moved", (e: Error) => e.message);
      expect(move).toBe(`shard move failed as the orphaned shard ${shard} leftover from the previous move could not be cleaned up`);
    } finally {
      await admin.query("DELETE FROM pg_dist_cleanup WHERE node_group_id = $1", [gone]);
    }
    expect((await shardctl("status")).out).not.toContain(`node group ${gone},`);
  });

  it("refuses to move shards while a node acknowledges commits before writing them (synchronous_commit = off)", async () => {
    const before = await placements();
    const worker = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeport LIMIT 1")).rows[0];
    // On every worker (run_command_on_workers cannot pick one); the refusal must name them.
    const onWorker = (sql: string) => admin.query("SELECT success, result FROM run_command_on_workers($1)", [sql]);
    await onWorker("ALTER SYSTEM SET synchronous_commit = off");
    await onWorker("SELECT pg_reload_conf()");
    try {
      const r = await shardctl("drain", `${drainTarget.host}:${drainTarget.port}`, "--yes");
      expect(r.code, r.out).toBe(3);
      expect(r.out).toMatch(new RegExp(`FAIL synchronous_commit not off: off \\(as the default or for a database or role\\) on .*${worker.nodename}:${worker.nodeport}`));
      expect(await placements()).toBe(before);
    } finally {
      await onWorker("ALTER SYSTEM RESET synchronous_commit");
      await onWorker("SELECT pg_reload_conf()");
    }
    // A role's own setting counts too: the service's sessions would commit that way.
    await admin.query("ALTER ROLE platform_app SET synchronous_commit = off");
    try {
      const r = await shardctl("drain", `${drainTarget.host}:${drainTarget.port}`, "--yes");
      expect(r.code, r.out).toBe(3);
      expect(r.out).toMatch(/FAIL synchronous_commit not off/);
    } finally {
      await admin.query("ALTER ROLE platform_app RESET synchronous_commit");
    }
  });

  it("asks before every change: without a terminal and without --yes it refuses and changes nothing", async () => {
    const before = await placements();
    const shard = (await admin.query("SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = 'platform.users'::regclass ORDER BY shardid LIMIT 1")).rows[0];
    const elsewhere = (await admin.query("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND nodeport <> $1 LIMIT 1", [shard.nodeport])).rows[0];
    const tenant = (await admin.query("SELECT code FROM platform.tenants ORDER BY code DESC LIMIT 1")).rows[0].code as string;
    for (const args of [
      ["drain", `${drainTarget.host}:${drainTarget.port}`],
      ["move-shard", String(shard.shardid), `${shard.nodename}:${shard.nodeport}`, `${elsewhere.nodename}:${elsewhere.nodeport}`],
      ["isolate-tenant", tenant],
    ]) {
      const r = await shardctl(...args);
      expect(r.code, `${args.join(" ")}: ${r.out}`).toBe(2);
      expect(r.out).toContain("confirmation needed: run in a terminal or pass --yes");
    }
    expect(await placements()).toBe(before);
  });

  it("says what is wrong with bad input and changes nothing", async () => {
    expect((await shardctl("drain", "not-a-node")).code).toBe(2);
    expect((await shardctl("drain", "10.255.255.1:5432")).out).toMatch(/is not a node of this cluster/);
    expect((await shardctl("plan", "--strategy", "by_magic")).out).toMatch(/--strategy must be one of by_disk_size, by_shard_count/);
  });
});
