/**
 * A dead worker's jobs back in the queue within minutes (worker/dead-workers.ts), with real worker processes
 * (`pnpm worker`'s command line) on a real PostgreSQL 15: one SIGKILLed mid-export, another finishing the export after
 * its own sweep released the job, and one whose liveness session is cut stopping itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "@platform/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localExportStore } from "../src/export-store.js";
import { WORKER_SESSIONS, holdLivenessSession } from "../src/worker/dead-workers.js";
import { exportJobKey } from "../src/worker/export.js";
import { installQueue } from "../src/worker/queue.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";
import { startScript, waitUntilServing, type RunningProcess } from "./processes.js";

if (unavailable) console.warn(`skipping dead-worker tests: ${unavailable}`);

const RELEASE_AFTER_SECONDS = 2;

describe("the liveness session's timing", () => {
  it("is refused when a cut-off worker could outlive the server's hold on its silent session (test/partition.test.ts runs the cut)", async () => {
    const options = { onLost: () => {}, warn: () => {} };
    await expect(holdLivenessSession({}, { ...options, pingMs: 30_000, pingTimeoutMs: 30_000 })).rejects.toThrow(/must end a cut-off worker before the server drops its session \(60 s\)/);
  });
});
const ITEMS = 3000;

describe.skipIf(unavailable !== undefined)("a dead worker's jobs released, on PostgreSQL 15 with real worker processes", () => {
  let stack: Stack;
  let exportDir: string;
  let platform: string;
  let x: TenantFixture;
  let y: TenantFixture;
  const running: RunningProcess[] = [];

  /** A worker process with few slots (5 worker ids) that reads one row per export chunk, so an export runs for seconds. */
  const startWorker = async () => {
    const healthPort = await freePort();
    const started = startScript("worker", {
      DATABASE_URL: stack.config.DATABASE_URL!, HEALTH_PORT: String(healthPort), EXPORT_DIR: exportDir, EXPORT_FETCH_ROWS: "1", LOG_LEVEL: "info",
      WORKER_CONCURRENCY: "2", WEBHOOK_CONCURRENCY: "1", EXPORT_CONCURRENCY: "2", WORKER_DEAD_RELEASE_SECONDS: String(RELEASE_AFTER_SECONDS),
    });
    running.push(started);
    await waitUntilServing(started, `http://127.0.0.1:${healthPort}/livez`);
    return Object.assign(started, { healthPort });
  };
  const exportOf = async (t: TenantFixture) => {
    const res = await stack.request({ method: "POST", url: `/v1/tenants/${t.id}/exports`, token: t.admin });
    expect(res.statusCode, res.body).toBe(202);
    return res.json().id as string;
  };
  const status = async (id: string) => (await stack.admin.query("SELECT status FROM platform.exports WHERE id = $1", [id])).rows[0]?.status as string;
  const lockedBy = async (t: TenantFixture, id: string) =>
    (await stack.admin.query("SELECT locked_by FROM graphile_worker.jobs WHERE key = $1", [exportJobKey(t.id, id)])).rows[0]?.locked_by as string | null | undefined;
  const sessions = async () =>
    (await stack.admin.query<{ worker_id: string; gone: boolean }>(`SELECT worker_id, gone_since IS NOT NULL AS gone FROM ${WORKER_SESSIONS} ORDER BY worker_id`)).rows;

  beforeAll(async () => {
    exportDir = mkdtempSync(join(tmpdir(), "dead-workers-test-"));
    stack = await startStack({ env: { EXPORT_DIR: exportDir, TENANT_ERASURE_GRACE_SECONDS: "0" } });
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    platform = await token({ scope: "platform:admin" });
    x = await createTenant(stack, "xray", platform);
    y = await createTenant(stack, "yankee", platform);
    for (const t of [x, y]) {
      await stack.admin.query(`INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, ${ITEMS}) g`, [t.id, t.userId]);
    }
  }, 120_000);
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await stack?.close();
    if (exportDir) rmSync(exportDir, { recursive: true, force: true });
  });

  it("a worker SIGKILLed mid-export: the next worker's sweep releases its job within a minute or two, not 4 hours, and finishes the export; a live worker's ids are never marked", async () => {
    const victim = await startWorker();
    const stuck = await exportOf(x);
    await waitFor("the export to run on the victim", async () => (await status(stuck)) === "running", { intervalMs: 10 });
    const victimId = await lockedBy(x, stuck);
    expect(victimId).toMatch(/^worker-/);
    // Every id of the victim's three runners is recorded as its own, none yet found dead.
    const recorded = await sessions();
    expect(recorded).toHaveLength(5);
    expect(recorded.map((s) => s.worker_id)).toContain(victimId);
    expect(recorded.every((s) => !s.gone)).toBe(true);

    victim.child.kill("SIGKILL");
    await victim.exited;
    const killedAt = Date.now();
    expect(await status(stuck), "the export ended before its worker was killed: slow it further").toBe("running");

    const survivor = await startWorker();
    const other = await exportOf(y);
    const released = await waitFor(
      "the survivor's sweep to release the dead worker's job",
      async () => survivor.stdout.find((l) => l.includes("dead worker id(s)") || l.includes("released the jobs of dead workers")),
      { timeoutMs: 150_000, intervalMs: 250, detail: () => survivor.stdout.slice(-10).join("\n") },
    );
    const releasedAfter = Date.now() - killedAt;
    console.log(`dead worker: its job released ${releasedAfter} ms after the kill (release after ${RELEASE_AFTER_SECONDS} s, sweep every minute): ${released}`);
    expect(releasedAfter).toBeGreaterThanOrEqual(RELEASE_AFTER_SECONDS * 1000);
    expect(released).toMatch(/released 1 job\(s\) of 5 dead worker id\(s\)|"jobs":1/);
    // Counted for the WorkersDying alert: one process, one job.
    const exposition = await (await fetch(`http://127.0.0.1:${survivor.healthPort}/metrics`)).text();
    expect(exposition).toMatch(/^worker_processes_found_dead_total 1$/m);
    expect(exposition).toMatch(/^worker_dead_jobs_released_total 1$/m);
    // The survivor's own ids stay recorded and unmarked: only the dead process's were released (and removed).
    const after = await sessions();
    expect(after).toHaveLength(5);
    expect(after.map((s) => s.worker_id)).not.toContain(victimId);
    expect(after.every((s) => !s.gone)).toBe(true);

    // The released export runs again, on the survivor, to its end; so does the survivor's own.
    for (const [t, id] of [[x, stuck], [y, other]] as const) {
      await waitFor(`export ${id} to finish`, async () => !["queued", "running"].includes(await status(id)), { timeoutMs: 120_000, intervalMs: 250 });
      expect(await status(id)).toBe("done");
      const key = (await stack.admin.query("SELECT tables -> 'items' ->> 'key' AS key FROM platform.exports WHERE id = $1", [id])).rows[0].key as string;
      let text = "";
      for await (const chunk of (await localExportStore(exportDir).read(key))!) text += (chunk as Buffer).toString("utf8");
      const rows = (await stack.admin.query("SELECT count(*)::int AS n FROM platform.items WHERE tenant_id = $1", [t.id])).rows[0].n as number;
      expect(rows).toBeGreaterThanOrEqual(ITEMS);
      expect(text.split("\n").filter(Boolean)).toHaveLength(rows);
    }
    await survivor.stop();
    // Stopped gracefully, it removes its own ids.
    expect(await sessions()).toEqual([]);
  }, 300_000);

  it("a worker whose liveness session is cut (terminated, as a failover or a network cut would) exits by itself, so its jobs can be released", async () => {
    // Alone, so that the one liveness session is its own.
    for (const p of running) await p.stop();
    const worker = await startWorker();
    const { rows } = await stack.admin.query("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'tenant-worker-liveness'");
    expect(rows).toEqual([{ ok: true }]);
    const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 20_000))]);
    expect(code).toBe(1);
    expect(worker.stdout.join("\n")).toContain("liveness session");
  }, 60_000);
});
