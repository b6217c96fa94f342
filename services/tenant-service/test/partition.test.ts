/**
 * A queue worker cut off from its database by the network, mid-export: the case the dead-worker release
 * (worker/dead-workers.ts) must get right, where nothing tells either side that the other is gone. The worker runs on
 * a host in network namespaces of this test's own (@platform/testing's isolated host), PostgreSQL here, and the cut
 * drops packets at the router between them, both ways, silently.
 *
 * What must hold, in this order:
 * 1. the cut-off worker stops itself (its liveness ping unanswered), so nothing of it can run on;
 * 2. only then does the server let go of its sessions, its liveness lock with them: each within DEAD_PEER_DROP_SECONDS
 *    of the later of the cut and the first bytes the server sent it after the cut (config/src/dead-peers.ts, the
 *    settings each of the worker's sessions sends), not the hours Linux's keepalive defaults would take; until then a
 *    sweep finds the worker alive;
 * 3. then another worker's sweep releases its job, which runs to the end there, once.
 * With the settings left out of the worker's sessions, 2 never comes within the test's time: broken once, it failed.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEAD_PEER_DROP_SECONDS, DEAD_PEER_SETTINGS } from "@platform/config/dead-peers";
import { freePort, isolatedHostUnavailable, startIsolatedHost, startPostgres, waitFor, type IsolatedHost, type PostgresServer } from "@platform/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresConnection } from "../src/connections.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { localExportStore } from "../src/export-store.js";
import { WORKER_SESSIONS, releaseDeadWorkers } from "../src/worker/dead-workers.js";
import { exportJobKey } from "../src/worker/export.js";
import { installQueue } from "../src/worker/queue.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";
import { startScript, waitUntilServing, type RunningProcess } from "./processes.js";

const unavailableHere = unavailable ?? isolatedHostUnavailable();
if (unavailableHere) console.warn(`skipping the network-cut test: ${unavailableHere}`);

const RELEASE_AFTER_SECONDS = 2;
const ITEMS = 3000;

interface Session {
  readonly pid: number;
  readonly application_name: string;
  readonly state: string;
  readonly xact: boolean;
  readonly query: string;
  readonly state_change: Date;
}

describe.skipIf(unavailable !== undefined)("the dead-peer settings every session of the service and the worker carries", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(() => server?.stop());

  it("reach the server over TCP as the session's own settings, for the worker's connections and the service's pools alike", async () => {
    const worker = new pg.Client(postgresConnection({ DATABASE_URL: server.url }));
    await worker.connect();
    const service = createPostgresDatabase({ url: server.url, poolSize: 1 });
    try {
      // pg_settings gives each in the unit the constants use (s for the keepalives, ms for the rest).
      const settings = "SELECT setting FROM pg_settings WHERE name = $1";
      for (const [name, value] of Object.entries(DEAD_PEER_SETTINGS)) {
        expect((await worker.query(settings, [name])).rows[0].setting, name).toBe(String(value));
        expect((await service.pool.query(settings, [name])).rows[0].setting, name).toBe(String(value));
      }
    } finally {
      await worker.end();
      await service.close();
    }
  });
});

describe.skipIf(unavailableHere !== undefined)("a queue worker cut off from PostgreSQL by the network (real namespaces, a silent cut)", () => {
  let host: IsolatedHost;
  let stack: Stack;
  let exportDir: string;
  let x: TenantFixture;
  const running: RunningProcess[] = [];

  const workerEnv = (databaseUrl: string, healthPort: number) => ({
    DATABASE_URL: databaseUrl, HEALTH_PORT: String(healthPort), EXPORT_DIR: exportDir, EXPORT_FETCH_ROWS: "1", LOG_LEVEL: "info",
    WORKER_CONCURRENCY: "2", WEBHOOK_CONCURRENCY: "1", EXPORT_CONCURRENCY: "2", WORKER_DEAD_RELEASE_SECONDS: String(RELEASE_AFTER_SECONDS),
  });
  const status = async (id: string) => (await stack.admin.query("SELECT status FROM platform.exports WHERE id = $1", [id])).rows[0]?.status as string;
  const sessionsOfHost = async () =>
    (
      await stack.admin.query<Session>(
        "SELECT pid, application_name, state, backend_xid IS NOT NULL OR backend_xmin IS NOT NULL AS xact, left(query, 80) AS query, state_change FROM pg_stat_activity WHERE client_addr = $1::inet ORDER BY pid",
        [host.hostAddress],
      )
    ).rows;

  /** The server's TCP sockets to the cut-off host, by the backend's pid: bytes sent and not yet acknowledged. */
  const serverSockets = (): Map<number, number> => {
    const out = execFileSync("ss", ["-tnpiH", "dst", host.hostAddress], { encoding: "utf8" });
    const sockets = new Map<number, number>();
    // One socket per two lines: addresses and users:(("postgres",pid=N,...)), then its TCP info (unacked:N when any).
    for (const entry of out.split(/\n(?!\s)/)) {
      const pid = /pid=(\d+)/.exec(entry)?.[1];
      if (pid) sockets.set(Number(pid), Number(/\bunacked:(\d+)/.exec(entry)?.[1] ?? 0));
    }
    return sockets;
  };

  beforeAll(async () => {
    host = startIsolatedHost();
    exportDir = mkdtempSync(join(tmpdir(), "partition-test-"));
    stack = await startStack({
      env: { EXPORT_DIR: exportDir },
      // The isolated host reaches the server on the link's address, with a password like any other client.
      postgresSettings: { listen_addresses: `'127.0.0.1,${host.serverAddress}'` },
      postgresHbaRules: [`host all all ${host.hostAddress}/32 scram-sha-256`],
    });
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    x = await createTenant(stack, "xray", await token({ scope: "platform:admin" }));
    await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, ${ITEMS}) g`, [x.id, x.userId]);
  }, 120_000);
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await stack?.close();
    host?.remove();
    if (exportDir) rmSync(exportDir, { recursive: true, force: true });
  });

  it("the worker stops itself, then the server drops each session within a minute of the cut or of the bytes it sent it, then its job is released and runs once elsewhere", async () => {
    const overLink = stack.config.DATABASE_URL!.replace("@127.0.0.1:", `@${host.serverAddress}:`);
    const cutOffPort = await freePort();
    const cutOff = startScript("worker", workerEnv(overLink, cutOffPort), { prefix: host.prefix });
    running.push(cutOff);
    await waitUntilServing(cutOff, `http://${host.hostAddress}:${cutOffPort}/livez`);

    const res = await stack.request({ method: "POST", url: `/v1/tenants/${x.id}/exports`, token: x.admin });
    expect(res.statusCode, res.body).toBe(202);
    const exportId = res.json().id as string;
    await waitFor("the export to run on the worker across the link", async () => (await status(exportId)) === "running", { intervalMs: 10 });
    const lockedBy = (await stack.admin.query("SELECT locked_by FROM graphile_worker.jobs WHERE key = $1", [exportJobKey(x.id, exportId)])).rows[0]?.locked_by as string;
    expect(lockedBy).toMatch(/^worker-/);
    const before = await sessionsOfHost();
    expect(before.map((s) => s.application_name)).toContain("tenant-worker-liveness");

    // Every 250 ms from the cut: when the liveness session, then every session of the host, leaves the server.
    host.cut();
    const cutAt = Date.now();
    const atCut = await sessionsOfHost();
    let livenessGoneAt: number | undefined;
    let allGoneAt: number | undefined;
    const goneAt = new Map<number, number>();
    // When the server first had bytes to a session unacknowledged (the cut-off host can acknowledge nothing): from
    // then, tcp_user_timeout is what drops it, not the keepalives, which a socket with data in flight does not send.
    const firstUnackedAt = new Map<number, number>();
    const watch = setInterval(() => {
      for (const [pid, unacked] of serverSockets()) if (unacked > 0 && !firstUnackedAt.has(pid)) firstUnackedAt.set(pid, Date.now() - cutAt);
      void sessionsOfHost().then((now) => {
        if (livenessGoneAt === undefined && !now.some((s) => s.application_name === "tenant-worker-liveness")) livenessGoneAt = Date.now();
        if (allGoneAt === undefined && now.length === 0) allGoneAt = Date.now();
        for (const s of atCut) if (!goneAt.has(s.pid) && !now.some((n) => n.pid === s.pid)) goneAt.set(s.pid, Date.now() - cutAt);
      }, () => {});
    }, 250);
    // For whoever reads a failure: each session's fate since the cut, what is left, and what the server's kernel says
    // of those sockets (unacknowledged bytes, the retransmission or keepalive timer, when it last sent).
    const fates = async () => {
      const left = await sessionsOfHost();
      const sockets = execFileSync("ss", ["-tnoi", "dst", host.hostAddress], { encoding: "utf8" }).trim();
      return [
        `sessions at the cut: ${atCut.map((s) => `${s.pid} ${s.application_name} (${s.state}${s.xact ? ", in a transaction" : ""}): ${firstUnackedAt.has(s.pid) ? `bytes unacknowledged from ${firstUnackedAt.get(s.pid)} ms, ` : ""}${goneAt.has(s.pid) ? `gone at ${goneAt.get(s.pid)} ms` : "still there"}`).join("; ")}`,
        `left: ${left.map((s) => `${s.pid} ${s.application_name} ${s.state} since ${s.state_change.toISOString()} "${s.query}"`).join("; ") || "none"}`,
        `the server's sockets to the host:\n${sockets}`,
      ].join("\n");
    };
    try {
      // Another worker runs all along, on loopback, its sweep at start and every minute.
      const survivorPort = await freePort();
      const survivor = startScript("worker", workerEnv(stack.config.DATABASE_URL!, survivorPort));
      running.push(survivor);
      await waitUntilServing(survivor, `http://127.0.0.1:${survivorPort}/livez`);

      // 1. The cut-off worker stops itself.
      const code = await Promise.race([cutOff.exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 70_000))]);
      const exitedAt = Date.now();
      expect(code).toBe(1);
      expect(cutOff.stdout.join("\n")).toContain("liveness session did not answer");
      // 2a. Until the server drops its liveness session, a sweep finds it alive: nothing marked, nothing released.
      expect(livenessGoneAt, "the server let go of the liveness session before the worker had stopped").toBeUndefined();
      const early = await stack.admin.connect();
      try {
        await early.query("BEGIN");
        const swept = await releaseDeadWorkers(early, 0);
        expect(swept.workers).toEqual([]);
        const marked = await early.query(`SELECT count(*)::int AS n FROM ${WORKER_SESSIONS} WHERE gone_since IS NOT NULL AND worker_id = $1`, [lockedBy]);
        expect(marked.rows[0].n, "the cut-off worker's id was marked dead while the server still held its session").toBe(0);
      } finally {
        await early.query("ROLLBACK");
        early.release();
      }
      // 2b. Then the server lets go of every session of the host within the dead-peer bound of the last moment it
      // heard from it: the cut for a session it had nothing to send, or the first bytes it sent after the cut (a
      // NOTIFY to a LISTEN session, at the next minute's cron job), which a session still alive can be sent up to
      // DEAD_PEER_DROP_SECONDS after the cut. So every one is gone within twice that; the slack is the watcher's step.
      const slackMs = 5_000;
      await waitFor("the server to drop the cut-off host's sessions", async () => allGoneAt !== undefined, {
        timeoutMs: Math.max(0, cutAt + (2 * DEAD_PEER_DROP_SECONDS) * 1000 + 3 * slackMs - Date.now()),
        intervalMs: 250,
        detail: fates,
      });
      expect(livenessGoneAt! - cutAt).toBeLessThanOrEqual(DEAD_PEER_DROP_SECONDS * 1000 + slackMs);
      expect(livenessGoneAt!).toBeGreaterThan(exitedAt);
      const fate = await fates();
      for (const s of atCut) {
        const heardUntil = Math.max(0, firstUnackedAt.get(s.pid) ?? 0);
        expect(goneAt.get(s.pid)! - heardUntil, `${s.application_name} (pid ${s.pid}): ${fate}`).toBeLessThanOrEqual(DEAD_PEER_DROP_SECONDS * 1000 + slackMs);
      }

      // 3. The survivor's sweep releases the job, after all that, and runs the export to its end.
      const released = await waitFor(
        "the survivor's sweep to release the cut-off worker's job",
        async () => survivor.stdout.find((l) => l.includes("dead worker id(s)") || l.includes("released the jobs of dead workers")),
        { timeoutMs: 180_000, intervalMs: 250, detail: () => survivor.stdout.slice(-10).join("\n") },
      );
      const releasedAt = Date.now();
      expect(released).toMatch(/released 1 job\(s\)|"jobs":1/);
      await waitFor("the export to finish on the survivor", async () => !["queued", "running"].includes(await status(exportId)), { timeoutMs: 120_000, intervalMs: 250 });
      expect(await status(exportId)).toBe("done");
      const key = (await stack.admin.query("SELECT tables -> 'items' ->> 'key' AS key FROM platform.exports WHERE id = $1", [exportId])).rows[0].key as string;
      let text = "";
      for await (const chunk of (await localExportStore(exportDir).read(key))!) text += (chunk as Buffer).toString("utf8");
      const rows = (await stack.admin.query("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1", [x.id])).rows[0].n as number;
      expect(text.split("\n").filter(Boolean)).toHaveLength(rows);
      console.log(
        `network cut: worker exited ${exitedAt - cutAt} ms after the cut; the server dropped its liveness session at ${livenessGoneAt! - cutAt} ms ` +
          `and all ${atCut.length} of its sessions at ${allGoneAt! - cutAt} ms (${atCut.map((s) => `${s.application_name}: ${s.state}${s.xact ? ", in a transaction" : ""}`).join("; ")}); ` +
          `its job released at ${releasedAt - cutAt} ms`,
      );
      console.log(await fates());
      await survivor.stop();
    } finally {
      clearInterval(watch);
    }
  }, 420_000);
});
