/**
 * `shardctl status` shows each Citus group's primary and the streaming replicas behind it, on a real Citus cluster
 * (CITUS_URL): the test makes a real streaming replica of one worker (pg_basebackup -R, started on a free port with an
 * application_name of its own), checks status lists it under that worker's group only, and removes it afterwards.
 * The cluster's own nodes are never stopped or reconfigured. Skipped with the reason without CITUS_URL.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POSTGRES_BIN, freePort } from "@platform/testing";
import { runShardctl } from "../src/testing.js";
import type { GroupReplication } from "../src/shardctl/replication.js";

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping shardctl status with a streaming replica: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

/** initdb-made clusters refuse to run as root: every server command runs as the postgres OS user. */
const asPostgres = (command: string, args: string[]) =>
  process.getuid?.() === 0
    ? execFileSync("runuser", ["-u", "postgres", "--", join(POSTGRES_BIN, command), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
    : execFileSync(join(POSTGRES_BIN, command), args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe.skipIf(!CITUS_URL)("shardctl status: each group's primary and its streaming replicas (real Citus)", () => {
  const applicationName = `shardctl-test-replica-${process.pid}`;
  let dir: string;
  let dataDir: string;
  let worker: { groupid: number; nodename: string; nodeport: number };
  let started = false;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: CITUS_URL });
    await admin.connect();
    try {
      worker = (await admin.query("SELECT groupid, nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND noderole = 'primary' ORDER BY groupid LIMIT 1")).rows[0];
    } finally {
      await admin.end();
    }
    dir = mkdtempSync(join(tmpdir(), "shardctl-replica-"));
    chmodSync(dir, 0o777);
    dataDir = join(dir, "data");
    const port = await freePort();
    asPostgres("pg_basebackup", ["-h", worker.nodename, "-p", String(worker.nodeport), "-U", "postgres", "-D", dataDir, "-R", "-X", "stream", "-c", "fast"]);
    // cluster_name is the walreceiver's application_name when primary_conninfo names none (pg_basebackup -R's does not).
    asPostgres("pg_ctl", ["-D", dataDir, "-l", join(dir, "replica.log"), "-w", "-t", "120", "start", "-o",
      `-p ${port} -c cluster_name=${applicationName} -c unix_socket_directories=${dir} -c logging_collector=off`]);
    started = true;
    // Wait until the worker sees it streaming.
    const worker1 = new pg.Client({ host: worker.nodename, port: worker.nodeport, user: "postgres", database: "postgres" });
    await worker1.connect();
    try {
      for (let i = 0; i < 240; i++) {
        const { rows } = await worker1.query("SELECT state FROM pg_stat_replication WHERE application_name = $1", [applicationName]);
        if (rows[0]?.state === "streaming") break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } finally {
      await worker1.end();
    }
  }, 300_000);

  afterAll(() => {
    if (started) asPostgres("pg_ctl", ["-D", dataDir, "-w", "-m", "fast", "stop"]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("--json: the replica under its worker's group, streaming and nearly caught up; no replica anywhere else", async () => {
    const r = await runShardctl(CITUS_URL!, ["status", "--json"], 120_000);
    expect(r.code, r.out).toBe(0);
    const groups = (JSON.parse(r.out) as { groups: GroupReplication[] }).groups;
    const mine = groups.find((g) => g.groupId === worker.groupid)!;
    expect(mine.primary).toBe(`${worker.nodename}:${worker.nodeport}`);
    expect(mine.error).toBeNull();
    const replica = mine.replicas.find((x) => x.name === applicationName);
    expect(replica, JSON.stringify(mine)).toMatchObject({ name: applicationName, client: "127.0.0.1", state: "streaming", syncState: "async" });
    expect(replica!.replayLagBytes).toBeGreaterThanOrEqual(0);
    expect(replica!.replayLagBytes).toBeLessThan(64 * 1024 * 1024);
    // Every group is listed, the coordinator's (0) included, and the others have no replica of ours.
    expect(groups.map((g) => g.groupId)).toContain(0);
    for (const g of groups.filter((x) => x.groupId !== worker.groupid)) expect(g.replicas.map((x) => x.name), `group ${g.groupId}`).not.toContain(applicationName);
  });

  it("text: the replica line sits under its group's line, and the other groups say no replica", async () => {
    const r = await runShardctl(CITUS_URL!, ["status"], 120_000);
    expect(r.code, r.out).toBe(0);
    console.log(`[shardctl status with a replica of ${worker.nodename}:${worker.nodeport}]\n${r.out.split("\n").filter((l) => /^(group | {4}replica )/.test(l)).join("\n")}`);
    const lines = r.out.split("\n");
    const head = lines.findIndex((l) => l.startsWith(`group ${String(worker.groupid).padEnd(4)} worker`));
    expect(lines[head], r.out).toContain(`primary ${worker.nodename}:${worker.nodeport}`);
    expect(lines[head]).not.toContain("no replica");
    expect(lines.slice(head + 1).find((l) => l.includes(applicationName)), r.out).toMatch(new RegExp(`^ {4}replica ${applicationName} \\(127\\.0\\.0\\.1\\): streaming, async, .* behind`));
    const others = lines.filter((l) => /^group \d+ /.test(l) && !l.startsWith(`group ${String(worker.groupid).padEnd(4)}`));
    expect(others.length).toBeGreaterThanOrEqual(2);
    for (const l of others) expect(l, r.out).toMatch(/ no replica$/);
  });
});
