// The leased rate-limit store against a real redis-server: several stores sharing one Redis stand for replicas.
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { redisUnavailable, startRedis, type RedisServer } from "@platform/testing";
import { redisConnection } from "../src/connections.js";
import { leasedRedisStore } from "../src/rate-limit-store.js";

const unavailable = redisUnavailable();
if (unavailable) console.warn(`skipping rate-limit store tests: ${unavailable}`);

type Result = { current: number; ttl: number };
const WINDOW = 60_000;

describe.skipIf(unavailable !== undefined)("leased rate-limit store (real Redis)", () => {
  let server: RedisServer;
  let redis: Redis;
  const clients: Redis[] = [];

  async function replicaClient(): Promise<Redis> {
    const client = new Redis(server.url, redisConnection({}));
    await new Promise((resolve) => client.once("ready", resolve));
    clients.push(client);
    return client;
  }
  // A replica: its own client and store, as each pod has.
  async function replica(): Promise<FastifyRateLimitStore> {
    const Store: FastifyRateLimitStoreCtor = leasedRedisStore(await replicaClient(), "test:rate:");
    return new Store({});
  }
  const incr = (store: FastifyRateLimitStore, key: string, max: number, window = WINDOW) =>
    new Promise<Result>((resolve, reject) => store.incr(key, (error, result) => (error ? reject(error) : resolve(result!)), window, max));
  // Lease calls that reached Redis since the last reset (ioredis sends EVALSHA, and EVAL once per client).
  async function scriptCalls(): Promise<number> {
    const stats = await redis.info("commandstats");
    return [...stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  }, 30_000);
  afterAll(async () => {
    for (const c of [redis, ...clients]) c?.disconnect();
    await server?.stop();
  });
  beforeEach(async () => {
    await redis.flushall();
    await redis.config("RESETSTAT");
  });

  it("never admits more than max across replicas, and admits exactly max when every replica keeps asking", async () => {
    const replicas = await Promise.all([replica(), replica(), replica()]);
    const max = 137;
    // 500 concurrent requests, round-robin over three replicas: each replica alone asks for more than max, so any
    // lease it holds is used up and nothing is stranded.
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => incr(replicas[i % 3]!, "tenant:a", max)));
    const admitted = results.filter((r) => r.current <= max).length;
    expect(admitted).toBe(max);
    expect(Number(await redis.get("test:rate:tenant:a"))).toBe(max);
    for (const r of results) expect(r.ttl).toBeGreaterThan(0);
  });

  it("reserves a tenth of what is left per lease, so a busy key costs one Redis call per lease, not per request", async () => {
    const store = await replica();
    const first = await incr(store, "tenant:busy", 600);
    // The first lease is 60 of 600: this request is the first of them, and Redis holds the reservation.
    expect(first.current).toBe(1);
    expect(Number(await redis.get("test:rate:tenant:busy"))).toBe(60);
    for (let i = 0; i < 59; i++) await incr(store, "tenant:busy", 600);
    expect(await scriptCalls()).toBe(1);
    // A big limit: leases are capped at 100, so 1,000 requests take 10 calls.
    await redis.config("RESETSTAT");
    for (let i = 0; i < 1000; i++) await incr(store, "tenant:huge", 1_000_000);
    expect(await scriptCalls()).toBe(10);
    // Requests that find the lease empty together wait for one renewal rather than each sending their own.
    await redis.config("RESETSTAT");
    const burst = await Promise.all(Array.from({ length: 50 }, () => incr(store, "tenant:burst", 1_000_000)));
    expect(await scriptCalls()).toBe(1);
    expect(burst.map((r) => r.current).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it("gives a small budget one request per lease (under 20 left), and counts current as the window's reservations", async () => {
    const store = await replica();
    const currents: number[] = [];
    for (let i = 0; i < 12; i++) currents.push((await incr(store, "tenant:small", 10)).current);
    // max 10: every lease is 1 (10/10), so current is exact, 1..10, then past the limit.
    expect(currents).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11]);
  });

  it("refuses locally once the window is exhausted: a flooding tenant costs Redis nothing until the window ends", async () => {
    const results: string[] = [];
    const Store = leasedRedisStore(await replicaClient(), "test:rate:", { onRenewal: (r) => results.push(r) });
    const store = new Store({});
    for (let i = 0; i < 5; i++) expect((await incr(store, "tenant:flood", 5)).current).toBeLessThanOrEqual(5);
    expect((await incr(store, "tenant:flood", 5)).current).toBeGreaterThan(5);
    await redis.config("RESETSTAT");
    const refused = await Promise.all(Array.from({ length: 200 }, () => incr(store, "tenant:flood", 5)));
    expect(refused.every((r) => r.current > 5 && r.ttl > 0)).toBe(true);
    expect(await scriptCalls()).toBe(0);
    // What the metrics count: five leases of one, then the renewal that found the window used up, and no more.
    expect(results).toEqual(["granted", "granted", "granted", "granted", "granted", "exhausted"]);
  });

  it("starts a new window when the old one ends", async () => {
    const store = await replica();
    expect((await incr(store, "tenant:window", 1, 1000)).current).toBe(1);
    expect((await incr(store, "tenant:window", 1, 1000)).current).toBe(2);
    const ttl = await redis.pttl("test:rate:tenant:window");
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, ttl + 50));
    expect((await incr(store, "tenant:window", 1, 1000)).current).toBe(1);
  });

  it("forgets the leases of ended windows, so memory follows the tenants active now, not every tenant seen", async () => {
    const store = await replica();
    await Promise.all(Array.from({ length: 1500 }, (_, i) => incr(store, `tenant:old-${i}`, 10, 1000)));
    expect((store as unknown as { activeLeases: number }).activeLeases).toBe(1500);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // 1,500 renewals for new keys: enough to trigger a sweep, which drops every ended window.
    await Promise.all(Array.from({ length: 1500 }, (_, i) => incr(store, `tenant:new-${i}`, 10, 60_000)));
    expect((store as unknown as { activeLeases: number }).activeLeases).toBeLessThanOrEqual(1500);
    expect((store as unknown as { activeLeases: number }).activeLeases).toBeGreaterThan(0);
  });

  it("keeps keys apart: one tenant's exhaustion does not touch another's", async () => {
    const store = await replica();
    for (let i = 0; i < 3; i++) await incr(store, "tenant:x", 2);
    expect((await incr(store, "tenant:x", 2)).current).toBeGreaterThan(2);
    expect((await incr(store, "tenant:y", 2)).current).toBe(1);
  });

  it("reports a Redis failure to the plugin (which skips on error) instead of admitting or refusing on its own", async () => {
    const down = new Redis("redis://127.0.0.1:1", { ...redisConnection({}), lazyConnect: true, retryStrategy: () => null });
    const results: string[] = [];
    const Store = leasedRedisStore(down, "test:rate:", { onRenewal: (r) => results.push(r) });
    const store = new Store({});
    await expect(incr(store, "tenant:z", 10)).rejects.toThrow();
    expect(results).toEqual(["error"]);
    down.disconnect();
  });

  it("admits again at once when a tenant's limit is raised after its window was used up, and stops at a lowered one", async () => {
    const store = await replica();
    const admitted = async (n: number, max: number) => (await Promise.all(Array.from({ length: n }, () => incr(store, "tenant:plan", max)))).filter((r) => r.current <= max).length;
    expect(await admitted(5, 3)).toBe(3);
    // Used up under 3: the replica refuses locally, until the limit grows; then Redis counts against the new one.
    expect(await admitted(2, 3)).toBe(0);
    expect(await admitted(10, 8)).toBe(5);
    expect(Number(await redis.get("test:rate:tenant:plan"))).toBe(8);
    // Lowered below what the window already used: nothing more.
    expect(await admitted(3, 4)).toBe(0);
  });

});
