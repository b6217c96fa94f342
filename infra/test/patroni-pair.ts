/**
 * Patroni clusters on loopback, configured by the platform's own patroniMemberConfig, with etcd as their DCS: a
 * two-member group of plain PostgreSQL 15, or a Citus formation of groups; a writer that follows the leader the way the internal load balancer
 * does (Patroni's REST /primary), and the two events a failover test needs: a crashed primary and a planned
 * switchover. Used by infra/test/patroni-failover.test.ts and `pnpm bench:failover`.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CITUS_OUTPUT_PLUGIN_LIBRARIES } from "@platform/config";
import pg from "pg";
import { POSTGRES_BIN, reserveMember, startEtcd, startPatroniMember, waitFor, type Etcd, type PatroniMember } from "@platform/testing";
import { renderPatroniConfig } from "../src/citus/patroni.js";

const SUPERUSER = { username: "postgres", password: "test-superuser" };
const REPLICATION = { username: "replicator", password: "test-replicator" };
const API = { username: "patroni", password: "test-api" };

export interface Pair {
  readonly etcd: Etcd;
  readonly members: PatroniMember[];
  /** The member whose /primary answers 200, waiting up to `timeoutMs`. */
  leader(timeoutMs?: number): Promise<PatroniMember>;
  /** Waits until `member` streams as the synchronous standby (or, asynchronous, as a replica). */
  replicaReady(member: PatroniMember, timeoutMs?: number): Promise<void>;
  /** A planned switchover to `candidate` through the REST API, as `patronictl switchover` asks it. */
  switchover(candidate: PatroniMember): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly synchronous: boolean;
  readonly timing?: { ttl: number; loopWait: number; retryTimeout: number };
  /** Citus mode: Patroni creates the database and the extension, and keeps pg_dist_node on each group's primary. */
  readonly citus?: { readonly database: string };
  /** Members per group; group 0 is the coordinator in Citus mode. @default [2] (one group of two) */
  readonly groups?: readonly number[];
}

/** A Patroni cluster in one scope: one group (a plain pair) or, in Citus mode, a coordinator group and worker groups. */
export interface Cluster {
  readonly etcd: Etcd;
  /** Each group's Pair view (index = Citus group id). */
  readonly groups: Pair[];
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const etcd = await startEtcd();
  const scope = `test-${process.pid}-${Date.now()}`;
  const all: PatroniMember[] = [];
  const groups: Pair[] = [];
  try {
    for (const [group, size] of (options.groups ?? [2]).entries()) {
      const members: PatroniMember[] = [];
      for (let n = 0; n < size; n++) {
        const ports = await reserveMember();
        const name = `g${group}-${String.fromCharCode(97 + n)}`;
        const config = renderPatroniConfig({
          scope,
          name,
          ...(options.citus ? { citus: { group, database: options.citus.database } } : {}),
          etcd: { hosts: [etcd.url.replace("http://", "")] },
          restApi: { listen: `127.0.0.1:${ports.restPort}`, connectAddress: `127.0.0.1:${ports.restPort}`, ...API },
          postgres: {
            listen: `127.0.0.1:${ports.pgPort}`,
            connectAddress: `127.0.0.1:${ports.pgPort}`,
            dataDir: `${ports.dir}/data`,
            binDir: POSTGRES_BIN,
            pgpass: `${ports.dir}/pgpass`,
            superuser: SUPERUSER,
            replication: REPLICATION,
            parameters: { unix_socket_directories: ports.dir, max_connections: 100, shared_buffers: "64MB" },
            // As the VMs' boot writes it (bootstrap/lib/patroni.sh): where Patroni does not drop what it does not know.
            ...(options.citus ? { customConf: citusCustomConf(ports.dir) } : {}),
            // Citus's connections between nodes on loopback trust the test's own hosts; production uses TLS and
            // passwords (the bootstrap's pg_hba and citus.node_conninfo).
            pgHba: options.citus
              ? ["local all all trust", "host replication replicator 127.0.0.1/32 scram-sha-256", "host all all 127.0.0.1/32 trust"]
              : ["local all all trust", "host replication replicator 127.0.0.1/32 scram-sha-256", "host all all 127.0.0.1/32 scram-sha-256"],
          },
          synchronous: options.synchronous,
          timing: options.timing,
        });
        const member = await startPatroniMember(name, ports, config, SUPERUSER);
        members.push(member);
        all.push(member);
        // The first member of a group bootstraps it; the next ones clone from it.
        if (members.length === 1) await waitLeader(members, 180_000);
      }
      groups.push(pairOf(etcd, members, options.synchronous));
    }
  } catch (error) {
    for (const m of all) await m.stop();
    await etcd.stop();
    throw error;
  }
  return {
    etcd,
    groups,
    async stop() {
      for (const m of all) await m.stop();
      await etcd.stop();
    },
  };
}

/** One group of two members of plain PostgreSQL. */
export async function startPair(options: { synchronous: boolean; timing?: { ttl: number; loopWait: number; retryTimeout: number } }): Promise<Pair> {
  const cluster = await startCluster({ ...options, groups: [2] });
  return { ...cluster.groups[0]!, stop: () => cluster.stop() };
}

function pairOf(etcd: Etcd, members: PatroniMember[], synchronous: boolean): Pair {
  return {
    etcd,
    members,
    leader: (timeoutMs = 60_000) => waitLeader(members, timeoutMs),
    async replicaReady(member, timeoutMs = 120_000) {
      const endpoint = synchronous ? "/sync" : "/replica";
      await waitFor(`${member.name} to become ${synchronous ? "the synchronous standby" : "a replica"}`, async () => (await member.status(endpoint)) === 200, {
        timeoutMs,
        intervalMs: 250,
        detail: () => `\n${member.log().slice(-3000)}`,
      });
    },
    async switchover(candidate) {
      const current = await waitLeader(members, 10_000);
      const response = await fetch(`${current.restUrl}/switchover`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from(`${API.username}:${API.password}`).toString("base64")}`, "content-type": "application/json" },
        body: JSON.stringify({ leader: current.name, candidate: candidate.name }),
      });
      if (response.status !== 200) throw new Error(`switchover to ${candidate.name} refused: ${response.status} ${await response.text()}`);
    },
    async stop() {
      for (const m of members) await m.stop();
    },
  };
}

async function waitLeader(members: PatroniMember[], timeoutMs: number): Promise<PatroniMember> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const m of members) if ((await m.status("/primary")) === 200) return m;
    if (Date.now() > deadline) throw new Error(`no Patroni leader within ${timeoutMs} ms:\n${members.map((m) => `--- ${m.name}\n${m.log().slice(-2000)}`).join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export interface WriteReport {
  readonly acknowledged: number[];
  /** Failed attempts by kind: the SQLSTATE, or the driver's error code (ECONNREFUSED, ...). */
  readonly errors: Record<string, number>;
}

/**
 * One client writing numbered rows to whichever member answers /primary, as a client behind the load balancer would:
 * on an error it asks again which member leads, and carries on. `firstAckAfter(t, member)` later tells when the first
 * write after `t` was acknowledged, by that member if named. Bounded by `maxMs`.
 */
export function startWriter(pair: Pair, options: { pauseMs?: number; maxMs?: number } = {}) {
  const acknowledged: number[] = [];
  const ackTimes: number[] = [];
  /** The member that acknowledged each write: a write in flight when the primary is killed may still be its own. */
  const ackBy: (string | undefined)[] = [];
  const errors: Record<string, number> = {};
  const deadline = Date.now() + (options.maxMs ?? 180_000);
  let stopped = false;
  // Ids unique across writers of one table: each writer starts from its own clock reading.
  let next = Date.now() * 1000;
  const loop = (async () => {
    let client: pg.Client | undefined;
    let member: string | undefined;
    while (!stopped && Date.now() < deadline) {
      try {
        if (!client) {
          const leader = await pair.leader(5_000);
          member = leader.name;
          client = new pg.Client({ connectionString: leader.url, connectionTimeoutMillis: 2000, query_timeout: 5000 });
          client.on("error", () => {});
          await client.connect();
        }
        const id = next++;
        await client.query("INSERT INTO acked (id) VALUES ($1)", [id]);
        acknowledged.push(id);
        ackTimes.push(Date.now());
        ackBy.push(member);
      } catch (error) {
        const kind = (error as { code?: string }).code ?? ((error as Error).message.includes("timeout") ? "timeout" : (error as Error).message.slice(0, 60));
        errors[kind] = (errors[kind] ?? 0) + 1;
        await client?.end().catch(() => {});
        client = undefined;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 10));
    }
    await client?.end().catch(() => {});
  })();
  return {
    /** The first acknowledgement at or after `t` (by `member` if named), or undefined. */
    firstAckAfter: (t: number, member?: string) => ackTimes.find((at, i) => at >= t && (member === undefined || ackBy[i] === member)),
    /** The longest gap between two acknowledgements from `from` on: how long writes failed or waited. */
    longestGapAfter(from: number): number {
      let longest = 0;
      for (let i = 1; i < ackTimes.length; i++) if (ackTimes[i]! >= from) longest = Math.max(longest, ackTimes[i]! - ackTimes[i - 1]!);
      return longest;
    },
    acknowledgedSoFar: () => acknowledged.length,
    async stop(): Promise<WriteReport> {
      stopped = true;
      await loop;
      return { acknowledged, errors };
    },
  };
}

/** The acknowledged ids missing from `member`'s table. */
export async function missingOn(member: PatroniMember, acknowledged: readonly number[]): Promise<number[]> {
  const client = new pg.Client({ connectionString: member.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>("SELECT id FROM acked WHERE id = ANY($1::bigint[])", [acknowledged]);
    const present = new Set(rows.map((r) => Number(r.id)));
    return acknowledged.filter((id) => !present.has(id));
  } finally {
    await client.end();
  }
}

export async function createTable(pair: Pair): Promise<void> {
  const client = new pg.Client({ connectionString: (await pair.leader()).url });
  await client.connect();
  try {
    await client.query("CREATE TABLE acked (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
  } finally {
    await client.end();
  }
}

/**
 * The file a Citus member includes before Patroni's settings, as the VMs' boot writes it: output_plugin_libraries with
 * Citus's plugin where this server has the setting (tenant isolation splits shards with it), nothing where it does not.
 */
function citusCustomConf(dir: string): string {
  const path = join(dir, "platform.conf");
  writeFileSync(path, postgresKnows("output_plugin_libraries") ? `output_plugin_libraries = '${CITUS_OUTPUT_PLUGIN_LIBRARIES}'\n` : "");
  return path;
}

/** Whether the installed server has a setting (postgres --describe-config), as the Citus boot asks it. */
function postgresKnows(setting: string): boolean {
  const described = execFileSync(join(POSTGRES_BIN, "postgres"), ["--describe-config"], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  return described.split("\n").some((line) => line.split("\t")[0] === setting);
}
