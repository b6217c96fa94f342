/**
 * The client-side node map (src/shard-map.ts) against the engines it copies: the hash against PostgreSQL's own
 * uuid_hash, and the whole lookup against Citus's get_shard_id_for_distribution_column on a real cluster (CITUS_URL).
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresUnavailable, startPostgres, type PostgresServer } from "@platform/testing";
import { groupOfTenant, readShardMap, uuidHash, type ShardMap } from "../src/shard-map.js";
import { prepareCitusDatabase } from "../src/testing.js";

const uuids = (n: number) => [
  // The edges of the byte range, then random ones.
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "80000000-0000-0000-0000-000000000001",
  ...Array.from({ length: n }, () => randomUUID()),
];

describe("groupOfTenant, without a server", () => {
  const map: ShardMap = [
    { min: -2147483648, max: -1, group: 1 },
    { min: 0, max: 99, group: 2 },
    { min: 100, max: 2147483647, group: 3 },
  ];
  it("finds the interval holding the hash, ends included", () => {
    for (const id of uuids(200)) {
      const hash = uuidHash(id);
      expect(groupOfTenant(map, id)).toBe(hash < 0 ? 1 : hash <= 99 ? 2 : 3);
    }
  });
  it("names no group where no interval covers the hash, and refuses what is not a uuid", () => {
    expect(groupOfTenant([], randomUUID())).toBeUndefined();
    expect(() => uuidHash("tenant-7")).toThrow(/not a uuid/);
  });
});

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the uuid hash check against PostgreSQL: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("uuidHash against PostgreSQL 15's uuid_hash", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(() => server?.stop());

  it("gives the server's value for 2,000 uuids", async () => {
    const ids = uuids(2_000);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ hash: number }>("SELECT uuid_hash(id) AS hash FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n) ORDER BY n", [ids]);
      expect(ids.map(uuidHash)).toEqual(rows.map((r) => r.hash));
    } finally {
      await client.end();
    }
  });
});

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping the node map check on Citus: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

describe.skipIf(!CITUS_URL)("the node map against Citus's own routing (real cluster)", () => {
  let release: (() => Promise<void>) | undefined;
  let client: pg.Client;
  beforeAll(async () => {
    ({ release } = await prepareCitusDatabase(CITUS_URL!));
    client = new pg.Client({ connectionString: CITUS_URL });
    await client.connect();
  }, 300_000);
  afterAll(async () => {
    await client?.end();
    await release?.();
  });

  it("names, for 2,000 tenants, the group of the shard Citus routes each to", async () => {
    const map = await readShardMap(client);
    expect(new Set(map.map((s) => s.group)).size).toBeGreaterThanOrEqual(2);
    const ids = uuids(2_000);
    const { rows } = await client.query<{ group: number }>(
      `SELECT p.groupid::int AS "group"
         FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
         JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('platform.users', u.id)
        ORDER BY u.n`,
      [ids],
    );
    expect(ids.map((id) => groupOfTenant(map, id))).toEqual(rows.map((r) => r.group));
  });
});
