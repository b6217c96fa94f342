/**
 * Moving an existing deployment onto Patroni (docs/runbooks/migrate-to-patroni.md), proven on the two steps that
 * touch data: a streaming pair of plain PostgreSQL 15 as the old bootstrap ran it (a primary with checksums, a standby
 * cloned by pg_basebackup through the replication slot `standby`) is taken over by Patroni, the primary first, then
 * the standby, with the platform's Patroni configuration (production's: synchronous), real Patroni 3.0 and etcd, while
 * a client writes. Every acknowledged write is on both members afterwards; the old standby streams from the new leader
 * as its synchronous standby without a new clone; the old slot no longer holds WAL back.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POSTGRES_BIN, patroniUnavailable, reserveMember, startEtcd, startPatroniMember, type Etcd, type MemberPorts, type PatroniMember } from "@platform/testing";
import { renderPatroniConfig } from "../src/citus/patroni.js";
import { missingOn, startWriter, type Pair } from "./patroni-pair.js";

const unavailable = patroniUnavailable() ?? (process.getuid?.() !== 0 ? "needs root: the clusters run as the postgres user, as on the VMs" : undefined);
if (unavailable) console.warn(`skipping the Patroni migration test: ${unavailable}`);

const SUPERUSER = { username: "postgres", password: "migrate-superuser" };
const REPLICATION = { username: "replicator", password: "migrate-replicator" };
const API = { username: "patroni", password: "migrate-api" };

const asPostgres = (cmd: string, args: string[]) => execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const pgCtl = (ports: MemberPorts, ...args: string[]) => asPostgres(join(POSTGRES_BIN, "pg_ctl"), ["-D", join(ports.dir, "data"), "-l", join(ports.dir, "server.log"), ...args]);
const url = (ports: MemberPorts) => `postgresql://${SUPERUSER.username}:${SUPERUSER.password}@127.0.0.1:${ports.pgPort}/postgres`;

async function query(ports: MemberPorts, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url(ports) });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe.skipIf(unavailable !== undefined)("taking over a running streaming pair with Patroni (real Patroni, etcd, PostgreSQL 15), under writes", () => {
  let etcd: Etcd;
  let old: { primary: MemberPorts; standby: MemberPorts };
  const members: PatroniMember[] = [];
  const scope = `migrate-${process.pid}`;

  /** The platform's configuration for a member on loopback, on the data directory the old bootstrap made. */
  const config = (name: string, ports: MemberPorts) =>
    renderPatroniConfig({
      scope,
      name,
      etcd: { hosts: [etcd.url.replace("http://", "")] },
      restApi: { listen: `127.0.0.1:${ports.restPort}`, connectAddress: `127.0.0.1:${ports.restPort}`, ...API },
      postgres: {
        listen: `127.0.0.1:${ports.pgPort}`,
        connectAddress: `127.0.0.1:${ports.pgPort}`,
        dataDir: join(ports.dir, "data"),
        binDir: POSTGRES_BIN,
        pgpass: join(ports.dir, "pgpass"),
        superuser: SUPERUSER,
        replication: REPLICATION,
        parameters: { unix_socket_directories: ports.dir, max_connections: 100, shared_buffers: "64MB" },
        pgHba: ["local all all trust", "host replication replicator 127.0.0.1/32 scram-sha-256", "host all all 127.0.0.1/32 scram-sha-256"],
      },
      synchronous: true,
    });

  beforeAll(async () => {
    etcd = await startEtcd();
    old = { primary: await reserveMember(), standby: await reserveMember() };
    execFileSync("chown", ["-R", "postgres:postgres", old.primary.dir, old.standby.dir]);
    // The old bootstrap's primary: data checksums (so pg_rewind works later), logical WAL, a slot for its standby.
    asPostgres(join(POSTGRES_BIN, "initdb"), ["-D", join(old.primary.dir, "data"), "--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256", "-U", "postgres"]);
    appendFileSync(
      join(old.primary.dir, "data", "postgresql.conf"),
      [`port = ${old.primary.pgPort}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${old.primary.dir}'`, "wal_level = logical", "max_wal_senders = 10", "max_replication_slots = 10", "hot_standby = on", "shared_buffers = 64MB", ""].join("\n"),
    );
    writeFileSync(join(old.primary.dir, "data", "pg_hba.conf"), "local all all peer\nhost replication replicator 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n");
    pgCtl(old.primary, "-w", "start");
    const psql = (sql: string) => asPostgres("psql", ["-X", "-At", "-h", old.primary.dir, "-p", String(old.primary.pgPort), "-d", "postgres", "-c", sql]);
    psql(`ALTER ROLE postgres PASSWORD '${SUPERUSER.password}'`);
    psql(`CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '${REPLICATION.password}'`);
    psql("SELECT pg_create_physical_replication_slot('standby')");
    psql("CREATE TABLE acked (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
    // Its standby, cloned as the old bootstrap cloned it.
    execFileSync("runuser", ["-u", "postgres", "--", join(POSTGRES_BIN, "pg_basebackup"), "-h", "127.0.0.1", "-p", String(old.primary.pgPort), "-U", "replicator", "-D", join(old.standby.dir, "data"), "-X", "stream", "-S", "standby", "-R", "--checkpoint=fast"], {
      env: { ...process.env, PGPASSWORD: REPLICATION.password },
      stdio: "pipe",
    });
    appendFileSync(join(old.standby.dir, "data", "postgresql.conf"), [`port = ${old.standby.pgPort}`, `unix_socket_directories = '${old.standby.dir}'`, ""].join("\n"));
    pgCtl(old.standby, "-w", "start");
  }, 180_000);

  afterAll(async () => {
    for (const m of members) await m.stop();
    for (const ports of Object.values(old ?? {})) {
      try {
        pgCtl(ports, "-m", "immediate", "stop");
      } catch {
        // stopped already, or Patroni's
      }
    }
    await etcd?.stop();
  });

  it("takes the primary over first, then the standby: no acknowledged write lost, the standby streams synchronously without a new clone", { timeout: 300_000 }, async () => {
    expect((await query(old.standby, "SELECT pg_is_in_recovery() AS r"))[0]!.r).toBe(true);
    const standbyIdentity = (await query(old.standby, "SELECT system_identifier::text AS id FROM pg_control_system()"))[0]!.id;
    // The client writes through one address, the primary's port, as clients do through the coordinator's name.
    const writer = startWriter({ leader: async () => ({ url: url(old.primary) }) } as unknown as Pair);
    await new Promise((resolve) => setTimeout(resolve, 2000));

    // Step 1: the primary. The bootstrap stops PostgreSQL (retire_debian_cluster) and starts Patroni on the same data.
    const stoppedAt = Date.now();
    pgCtl(old.primary, "-m", "fast", "-w", "stop");
    members.push(await startPatroniMember("member-a", old.primary, config("member-a", old.primary), SUPERUSER));
    for (let i = 0; (await members[0]!.status("/primary")) !== 200; i++) {
      if (i > 240) throw new Error(`Patroni did not take the old primary over:\n${members[0]!.log().slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    // Step 2: the standby, likewise. Patroni finds a standby of its leader's cluster and makes it follow the leader.
    pgCtl(old.standby, "-m", "fast", "-w", "stop");
    members.push(await startPatroniMember("member-b", old.standby, config("member-b", old.standby), SUPERUSER));
    for (let i = 0; (await members[1]!.status("/sync")) !== 200; i++) {
      if (i > 480) throw new Error(`the old standby never became the synchronous standby:\n${members[1]!.log().slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // The write outage of the whole move: the longest time between two acknowledged writes from the primary's stop on.
    const outage = writer.longestGapAfter(stoppedAt);
    const report = await writer.stop();
    console.log(`[migrate] both members taken over: writes paused at most ${outage} ms; ${report.acknowledged.length} acknowledged; errors ${JSON.stringify(report.errors)}`);

    expect(writer.firstAckAfter(stoppedAt + outage)).toBeDefined();
    expect(report.acknowledged.length).toBeGreaterThan(50);
    expect(await missingOn(members[0]!, report.acknowledged)).toEqual([]);
    expect(await missingOn(members[1]!, report.acknowledged)).toEqual([]);
    // The same cluster, not a clone: the old standby kept its data and its identity.
    expect((await query(old.standby, "SELECT system_identifier::text AS id FROM pg_control_system()"))[0]!.id).toBe(standbyIdentity);
    expect(members[1]!.log()).not.toMatch(/basebackup|bootstrap from leader/i);
    // Patroni replicates through its own slot; the old one, which nobody reads any more, holds no WAL back.
    const slots = (await query(old.primary, "SELECT slot_name, active FROM pg_replication_slots ORDER BY slot_name")).map((r) => `${String(r.slot_name)} ${String(r.active)}`);
    expect(slots).toEqual(["member_b true"]);
  });
});
