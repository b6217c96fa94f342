/**
 * The node bulkhead's own rules (src/db/node-bulkhead.ts), with a shard map given by the test and a clock it moves.
 * What it does for the service on a real Citus cluster with a lost worker is test/citus-lost-worker.test.ts.
 */
import { randomUUID } from "node:crypto";
import { uuidHash, type ShardMap } from "@platform/citus";
import { describe, expect, it } from "vitest";
import { NodeBulkhead, NodeBusy } from "../src/db/node-bulkhead.js";

// Two groups: negative hashes on group 1, the rest on group 2.
const MAP: ShardMap = [
  { min: -2147483648, max: -1, group: 1 },
  { min: 0, max: 2147483647, group: 2 },
];
const tenantOn = (group: number): string => {
  for (;;) {
    const id = randomUUID();
    if ((uuidHash(id) < 0 ? 1 : 2) === group) return id;
  }
};

function bulkhead(options: { cap?: number; waitMs?: number; readMap?: () => Promise<ShardMap>; now?: () => number } = {}) {
  return new NodeBulkhead({ cap: options.cap ?? 2, waitMs: options.waitMs ?? 200, quarantineMs: 15_000, refreshMs: 30_000, readMap: options.readMap ?? (async () => MAP), now: options.now });
}

describe("NodeBulkhead", () => {
  it("lets a node's tenants hold `cap` places, makes the next wait for one, and leaves the other node alone", async () => {
    const nodes = bulkhead();
    await nodes.ready();
    const a = tenantOn(1);
    const held = [await nodes.enter(a), await nodes.enter(tenantOn(1))];
    expect(held.map((p) => p.group)).toEqual([1, 1]);
    let third = false;
    const waiting = nodes.enter(a).then((pass) => ((third = true), pass));
    // The other node's tenants go straight in.
    const other = await nodes.enter(tenantOn(2));
    expect(other.group).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(third).toBe(false);
    held[0]!.release();
    held[0]!.release(); // idempotent: one place freed, not two
    const pass = await waiting;
    expect(third).toBe(true);
    // Two in flight again on node 1: a fourth waits.
    await expect(nodes.enter(a)).rejects.toBeInstanceOf(NodeBusy);
    pass.release();
    held[1]!.release();
    other.release();
  });

  it("refuses after `waitMs` with a NodeBusy that names the node, and serves waiting transactions first come first served", async () => {
    const nodes = bulkhead({ cap: 1, waitMs: 100 });
    await nodes.ready();
    const t = tenantOn(2);
    const first = await nodes.enter(t);
    const started = Date.now();
    const refused = await nodes.enter(t).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(NodeBusy);
    expect((refused as NodeBusy).code).toBe("NODE_BUSY");
    expect((refused as Error).message).toMatch(/group 2\) has 1 transactions of this replica in flight/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    const order: number[] = [];
    const second = nodes.enter(t).then((p) => (order.push(2), p));
    const third = nodes.enter(t).then((p) => (order.push(3), p));
    first.release();
    (await second).release();
    (await third).release();
    expect(order).toEqual([2, 3]);
  });

  it("holds a troubled node at one place until quarantineMs after its last sign, then gives it `cap` again", async () => {
    let now = 1_000_000;
    const nodes = bulkhead({ cap: 3, waitMs: 50, now: () => now });
    await nodes.ready();
    const t = tenantOn(1);
    const pass = await nodes.enter(t);
    pass.troubled();
    expect(nodes.quarantined()).toBe(1);
    await expect(nodes.enter(t)).rejects.toBeInstanceOf(NodeBusy);
    // The other node keeps its full share.
    const others = [await nodes.enter(tenantOn(2)), await nodes.enter(tenantOn(2)), await nodes.enter(tenantOn(2))];
    now += 14_999;
    await expect(nodes.enter(t)).rejects.toBeInstanceOf(NodeBusy);
    now += 1;
    expect(nodes.quarantined()).toBe(0);
    const more = [await nodes.enter(t), await nodes.enter(t)];
    for (const p of [pass, ...others, ...more]) p.release();
  });

  it("refuses a change that writes every node at once while a node is quarantined, naming it, and lets it through otherwise", async () => {
    let now = 1_000_000;
    const nodes = bulkhead({ cap: 3, now: () => now });
    await nodes.ready();
    // Busy nodes are no reason: it takes no place.
    const busy = [await nodes.enter(tenantOn(1)), await nodes.enter(tenantOn(1)), await nodes.enter(tenantOn(1))];
    expect(() => nodes.enterEveryNode()).not.toThrow();
    busy[0]!.troubled();
    const refused = (() => {
      try {
        nodes.enterEveryNode();
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(NodeBusy);
    expect((refused as Error).message).toMatch(/writes every database node \(a reference table\), and node group 1 left a ROLLBACK unanswered within the last 15000 ms/);
    now += 15_000;
    expect(() => nodes.enterEveryNode()).not.toThrow();
    for (const p of busy) p.release();
  });

  it("bounds nothing while every shard is on one node: there is no other node's tenants to keep connections for", async () => {
    const nodes = bulkhead({ cap: 1, readMap: async () => [{ min: -2147483648, max: 2147483647, group: 1 }] });
    await nodes.ready();
    const t = tenantOn(1);
    const passes = [await nodes.enter(t), await nodes.enter(t), await nodes.enter(t)];
    expect(passes.map((p) => p.group)).toEqual([undefined, undefined, undefined]);
  });

  it("bounds nothing before the map is read or where it covers no hash, and reads a failed map again", async () => {
    let reads = 0;
    let fail = true;
    let now = 0;
    const nodes = bulkhead({
      cap: 1,
      now: () => now,
      readMap: async () => {
        reads += 1;
        if (fail) throw new Error("coordinator away");
        // Group 1's hashes (negative) are in no interval; two groups, so the rest is bounded.
        return [
          { min: -2147483648, max: -1000000000, group: 3 },
          { min: 0, max: 2147483647, group: 2 },
        ];
      },
    });
    // A tenant whose hash (negative, above -1e9) is covered by no interval of the map below.
    let t = tenantOn(1);
    while (uuidHash(t) <= -1000000000) t = tenantOn(1);
    await nodes.ready();
    const unbounded = [await nodes.enter(t), await nodes.enter(t)];
    expect(unbounded.map((p) => p.group)).toEqual([undefined, undefined]);
    // Asked again after a pause, not on every transaction.
    await nodes.ready();
    expect(reads).toBe(1);
    fail = false;
    now += 1_000;
    await nodes.ready();
    expect(reads).toBe(2);
    // Group 1's hashes are in no interval of this map: still unbounded; group 2's are.
    expect((await nodes.enter(t)).group).toBeUndefined();
    const bounded = await nodes.enter(tenantOn(2));
    expect(bounded.group).toBe(2);
    await expect(nodes.enter(tenantOn(2))).rejects.toBeInstanceOf(NodeBusy);
    bounded.release();
  });
});
