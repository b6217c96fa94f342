/**
 * tenantctl (issue 25) against real databases: a PostgreSQL 15 home and a second PostgreSQL 15 standing in for the
 * target (everything but distribution), or, with CITUS_URL, the Citus cluster there as the target (its platform
 * schema is reset). Writers route each tenant's transactions as the service does throughout; tenantctl runs in its
 * own process as an SRE runs it, and is SIGKILLed at each phase of a move, and stopped with Ctrl-C.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresUnavailable, scratchDirs } from "@platform/testing";
import { type Pair, type SeededTenant, TARGET, type WriteModel, lostWrites, newWriteModel, seedTenants, startPair, startRouterWriters, tenantctl } from "./tenantctl-harness.js";

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping tenantctl tests: ${unavailable}`);
if (!process.env.CITUS_URL) console.warn("skipping tenantctl into Citus: set CITUS_URL to a Citus 13 coordinator (superuser, two or more workers); the second PostgreSQL target runs anyway");

const WAVE = Number(process.env.TENANTCTL_TEST_WAVE ?? 100);
const targets = [undefined, ...(process.env.CITUS_URL ? [process.env.CITUS_URL] : [])];

// Throwaway directories (the wave's batch file), removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

for (const CITUS_URL of targets) describe.skipIf(unavailable)(`tenantctl, home PostgreSQL -> ${CITUS_URL ? "Citus" : "a second PostgreSQL"}`, () => {
  let pair: Pair;
  let tenants: SeededTenant[];
  /** Every acknowledged write of the whole suite. */
  let model: WriteModel;
  const batchFile = join(scratch.make("tenantctl-wave-"), "wave.txt");

  beforeAll(async () => {
    pair = await startPair(CITUS_URL ? { citusUrl: CITUS_URL } : {});
    tenants = await seedTenants(pair.home, WAVE + 12, 30);
    model = newWriteModel(tenants);
  }, 300_000);

  afterAll(async () => {
    await pair?.stop();
  });

  const placement = async (tenantId: string) =>
    (await pair.home.admin.query<{ database: string }>("SELECT database FROM platform.tenant_placements WHERE tenant_id = $1", [tenantId])).rows[0]?.database ?? "home";
  const fenced = async (side: Pair["home"], tenantId: string) => (await side.admin.query("SELECT 1 FROM platform.tenant_fences WHERE tenant_id = $1", [tenantId])).rows.length > 0;
  const slots = async (side: Pair["home"]) => (await side.admin.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots ORDER BY 1")).rows.map((r) => r.slot_name);
  const itemCount = async (side: Pair["home"], tenantId: string) => Number((await side.admin.query<{ n: string }>("SELECT count(*) AS n FROM platform.items WHERE tenant_id = $1", [tenantId])).rows[0]!.n);

  it("refuses bad input with exit 2 and changes nothing on a dry run", async () => {
    const t = tenants[0]!;
    const none = await tenantctl(pair.env, ["move", t.code]).done;
    expect(none.code).toBe(2);
    const unknown = await tenantctl(pair.env, ["move", "test-nobody", "--to", TARGET]).done;
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain('no tenant "test-nobody"');
    const noDb = await tenantctl(pair.env, ["move", t.code, "--to", "elsewhere"]).done;
    expect(noDb.code).toBe(2);
    expect(noDb.out).toContain("DATABASE_URL_ELSEWHERE");
    const dry = await tenantctl(pair.env, ["move", t.code, "--to", TARGET, "--dry-run"]).done;
    expect(dry.code, dry.out).toBe(0);
    expect(dry.out).toContain("CREATE PUBLICATION");
    expect(dry.out).not.toContain("migrator@");
    expect(dry.out).not.toMatch(/:migrator@|password/i);
    expect(await fenced(pair.target, t.id)).toBe(false);
    expect(await slots(pair.home)).toEqual([]);
    expect((await pair.home.admin.query("SELECT 1 FROM platform.tenant_moves")).rows).toEqual([]);
    const logged = await pair.home.admin.query<{ status: string }>("SELECT status FROM platform_ops.operations WHERE command = 'tenantctl move' ORDER BY id");
    // The unknown tenant was refused and logged as failed; the dry run as a dry run.
    expect(logged.rows.map((r) => r.status)).toEqual(["failed", "dry-run"]);
  }, 120_000);

  it(`moves ${WAVE} tenants in waves while writers write to all of them: nothing acknowledged lost, verify clean, each window printed`, async () => {
    const wave = tenants.slice(0, WAVE);
    writeFileSync(batchFile, `# the wave\n${wave.map((t) => t.code).join("\n")}\n`);
    const writers = startRouterWriters(pair, tenants, { loops: 8, pauseMs: 5, model });
    const run = await tenantctl(pair.env, ["move", "--batch", batchFile, "--to", TARGET, "--concurrency", "12"], { timeoutMs: 900_000 }).done;
    // Writes keep landing in the target after the cutover, on the tenants' new home.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await writers.stop();
    expect(run.code, run.out).toBe(0);
    const windows = [...run.out.matchAll(/cutover window (\d+) ms/g)].map((m) => Number(m[1]));
    expect(windows).toHaveLength(WAVE);
    console.log(`${WAVE} tenants moved; ${model.acknowledged} writes acknowledged (${model.fencedRetries} retried after PT001, longest fenced wait ${model.longestFencedWaitMs} ms); ` +
      `cutover windows ms: ${run.out.match(/cutover windows: .*/)?.[0]}; failures ${JSON.stringify(model.failed)}`);
    expect(model.acknowledged).toBeGreaterThan(WAVE);
    // Every write did what it meant to (an update or delete that found no row would be a write lost before it began).
    expect(model.failed).toEqual({});
    expect(await lostWrites(pair, model)).toEqual([]);
    for (const t of wave) expect(await placement(t.id)).toBe(TARGET);
    for (const t of wave.slice(0, 5)) {
      expect(await fenced(pair.home, t.id)).toBe(true);
      expect(await fenced(pair.target, t.id)).toBe(false);
    }
    // The forward slots are gone; a reverse slot per tenant holds the way back (none when the target is Citus).
    expect((await slots(pair.home)).filter((s) => s.endsWith("_f"))).toEqual([]);
    if (!CITUS_URL) expect((await slots(pair.target)).filter((s) => s.endsWith("_r"))).toHaveLength(WAVE);
    // Status lists them in their rollback window.
    const status = await tenantctl(pair.env, ["status", "--json"]).done;
    expect(status.code).toBe(0);
    const rows = JSON.parse(status.out) as { phase: string }[];
    expect(rows.filter((r) => r.phase === "rollback_window")).toHaveLength(WAVE);
    // The side they left is brought current by the reverse stream; then the VDiff finds nothing.
    if (!CITUS_URL) expect((await tenantctl(pair.env, ["sync", "--batch", batchFile, "--concurrency", "8"]).done).code).toBe(0);
    const verify = await tenantctl(pair.env, ["verify", "--batch", batchFile, "--concurrency", "8"]).done;
    if (!CITUS_URL) expect(verify.code, verify.out).toBe(0);
    if (!CITUS_URL) expect(verify.out).toContain(`${WAVE} verified without difference`);
  }, 1_200_000);

  it("verify prints the rows that differ and exits 5", async () => {
    const t = tenants[1]!;
    const { id: victim, title } = (await pair.target.admin.query<{ id: string; title: string }>("SELECT id::text, title FROM platform.items WHERE tenant_id = $1 LIMIT 1", [t.id])).rows[0]!;
    await pair.target.admin.query("UPDATE platform.items SET title = 'tampered' WHERE tenant_id = $1 AND id = $2", [t.id, victim]);
    try {
      const run = await tenantctl(pair.env, ["verify", t.code]).done;
      expect(run.code, run.out).toBe(5);
      expect(run.out).toMatch(/DIFF platform\.items/);
      // On Citus the side it left trails it (no reverse stream to sync), so the list holds more than this row.
      if (!CITUS_URL) expect(run.out).toContain(`${victim}) differs`);
    } finally {
      await pair.target.admin.query("UPDATE platform.items SET title = $3 WHERE tenant_id = $1 AND id = $2", [t.id, victim, title]);
    }
    if (!CITUS_URL) expect((await tenantctl(pair.env, ["verify", t.code]).done).code).toBe(0);
  }, 120_000);

  it("reverses a tenant with everything written while it was on the target", async () => {
    const t = tenants[2]!;
    const before = model.acknowledged;
    const writers = startRouterWriters(pair, [t], { loops: 1, pauseMs: 5, model });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const onTarget = model.acknowledged - before;
    const run = await tenantctl(pair.env, ["reverse", t.code]).done;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await writers.stop();
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/cutover window \d+ ms \(back in home\)/);
    expect(onTarget).toBeGreaterThan(10);
    expect(await placement(t.id)).toBe("home");
    expect(await lostWrites(pair, model)).toEqual([]);
    expect(await fenced(pair.home, t.id)).toBe(false);
    expect(await fenced(pair.target, t.id)).toBe(true);
    // complete removes what the target still holds, and keeps it fenced there.
    const complete = await tenantctl(pair.env, ["complete", t.code]).done;
    expect(complete.code, complete.out).toBe(0);
    expect(await itemCount(pair.target, t.id)).toBe(0);
    expect(await fenced(pair.target, t.id)).toBe(true);
    expect(await itemCount(pair.home, t.id)).toBeGreaterThan(0);
  }, 300_000);

  it("complete ends a rollback window: rows deleted at home, fence kept, streams dropped", async () => {
    const t = tenants[3]!;
    const run = await tenantctl(pair.env, ["complete", t.code]).done;
    expect(run.code, run.out).toBe(0);
    expect(await itemCount(pair.home, t.id)).toBe(0);
    expect(await fenced(pair.home, t.id)).toBe(true);
    expect((await pair.home.admin.query("SELECT 1 FROM platform.tenants WHERE id = $1", [t.id])).rows).toHaveLength(1);
    expect((await slots(pair.target)).filter((s) => s.includes(t.id.replace(/-/g, "")))).toEqual([]);
    expect((await tenantctl(pair.env, ["reverse", t.code]).done).code).toBe(3);
  }, 120_000);

  it("waits at the cutover for a transaction that entered the tenant before the fence, and carries its write", async () => {
    const t = tenants[WAVE + 5]!;
    const before = model.acknowledged;
    // Each transaction holds its tenant for 700 ms before COMMIT: one is always in flight when the fence goes in.
    const writers = startRouterWriters(pair, [t], { loops: 1, holdMs: 700, model });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const run = await tenantctl(pair.env, ["move", t.code, "--to", TARGET]).done;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await writers.stop();
    expect(run.code, run.out).toBe(0);
    const window = Number(run.out.match(/cutover window (\d+) ms/)?.[1]);
    console.log(`cutover with a 700 ms transaction in flight: window ${window} ms; ${model.acknowledged - before} writes acknowledged`);
    expect(model.acknowledged - before).toBeGreaterThan(2);
    expect(await lostWrites(pair, model)).toEqual([]);
  }, 300_000);

  it("rolls a cutover back when the tenant's transactions outlast --quiet-timeout, and the move resumes later", async () => {
    const t = tenants[WAVE + 6]!;
    // Each transaction holds the tenant 1.5 s: longer than the 300 ms the cutover may wait.
    const writers = startRouterWriters(pair, [t], { loops: 1, holdMs: 1500, model });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const refused = await tenantctl(pair.env, ["move", t.code, "--to", TARGET, "--quiet-timeout", "300", "--cutover-attempts", "2"]).done;
    expect(refused.code, refused.out).toBe(4);
    expect(refused.out).toContain("cutover attempt 1 rolled back");
    expect(refused.out).toContain("did not end within 300 ms");
    // Rolled back: still home, not fenced there, resumable from streaming; the writers kept writing.
    expect(await placement(t.id)).toBe("home");
    expect(await fenced(pair.home, t.id)).toBe(false);
    expect((await pair.home.admin.query<{ phase: string }>("SELECT phase FROM platform.tenant_moves WHERE tenant_id = $1", [t.id])).rows[0]?.phase).toBe("streaming");
    const resumed = await tenantctl(pair.env, ["move", t.code, "--to", TARGET, "--quiet-timeout", "5000"]).done;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await writers.stop();
    expect(resumed.code, resumed.out).toBe(0);
    expect(await placement(t.id)).toBe(TARGET);
    expect(await lostWrites(pair, model)).toEqual([]);
  }, 300_000);

  const phases = ["fencing", "copying", "streaming", "cutover", "switched"] as const;
  for (const [n, phase] of phases.entries()) {
    it(`a move SIGKILLed at ${phase} resumes to the same end state`, async () => {
      const t = tenants[WAVE + n]!;
      const before = model.acknowledged;
      const writers = startRouterWriters(pair, [t], { loops: 1, pauseMs: 5, model });
      const first = tenantctl(pair.env, ["move", t.code, "--to", TARGET], { pauseAt: phase });
      try {
        await first.waitFor(`paused at ${phase}`, 120_000);
        // Alive (paused), its run is not taken for abandoned, by status nor by the runs started meanwhile.
        expect((await tenantctl(pair.env, ["status"]).done).out).not.toMatch(/ABANDONED/);
        if (phase === "fencing") {
          const second = await tenantctl(pair.env, ["move", t.code, "--to", TARGET]).done;
          expect(second.code, second.out).toBe(3);
          expect(second.out).toContain("another tenantctl is working on tenant");
        }
      } finally {
        first.child.kill("SIGKILL");
      }
      await first.done;
      // Killed, its run stays recorded as running: status names it, and the next run closes it as failed.
      const left = (await pair.home.admin.query<{ id: string }>("SELECT id FROM platform_ops.operations WHERE command = 'tenantctl move' AND status = 'running'")).rows;
      expect(left).toHaveLength(1);
      const status = await tenantctl(pair.env, ["status"]).done;
      expect(status.out).toContain(phase === "switched" ? "switched" : phase);
      expect(status.out).toMatch(new RegExp(`ABANDONED: operation ${left[0]!.id} \\(tenantctl move \\{.*"${t.code}".*\\}, started .*\\) was left running by a process that ended before it finished`));
      const resumed = await tenantctl(pair.env, ["move", t.code, "--to", TARGET]).done;
      expect(resumed.out).toContain(`closed: operation ${left[0]!.id} (tenantctl move`);
      expect((await pair.home.admin.query("SELECT status, details->>'error' AS error FROM platform_ops.operations WHERE id = $1", [left[0]!.id])).rows[0]).toMatchObject({
        status: "failed",
        error: expect.stringMatching(/^abandoned: /),
      });
      expect((await tenantctl(pair.env, ["status"]).done).out).not.toMatch(/ABANDONED/);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writers.stop();
      expect(resumed.code, resumed.out).toBe(0);
      expect(resumed.out).toContain(`resuming its move home -> ${TARGET} from ${phase}`);
      expect(await placement(t.id)).toBe(TARGET);
      expect(await fenced(pair.home, t.id)).toBe(true);
      expect(await fenced(pair.target, t.id)).toBe(false);
      expect((await slots(pair.home)).filter((s) => s.includes(t.id.replace(/-/g, "")))).toEqual([]);
      expect(await lostWrites(pair, model)).toEqual([]);
      expect(model.acknowledged - before).toBeGreaterThan(0);
      const sync = CITUS_URL ? { code: 0 } : await tenantctl(pair.env, ["sync", t.code]).done;
      expect(sync.code).toBe(0);
      if (!CITUS_URL) {
        const verify = await tenantctl(pair.env, ["verify", t.code]).done;
        expect(verify.code, verify.out).toBe(0);
      }
      const moves = await pair.home.admin.query<{ phase: string }>("SELECT phase FROM platform.tenant_moves WHERE tenant_id = $1", [t.id]);
      expect(moves.rows[0]?.phase).toBe("rollback_window");
    }, 300_000);
  }

  it("Ctrl-C in a wave: the cutover under way goes to its end, no tenant starts after it, and the same command resumes the rest", async () => {
    const [a, b] = [tenants[WAVE + 8]!, tenants[WAVE + 9]!];
    const before = model.acknowledged;
    const writers = startRouterWriters(pair, [a, b], { loops: 1, pauseMs: 5, model });
    const file = join(scratch.make("tenantctl-ctrl-c-"), "pair.txt");
    writeFileSync(file, `${a.code}\n${b.code}\n`);
    const run = tenantctl(pair.env, ["move", "--batch", file, "--to", TARGET, "--concurrency", "1"], { pauseAt: "cutover" });
    try {
      await run.waitFor(`tenant ${a.code}: paused at cutover`, 120_000);
      // Inside its window: refused at home, not yet served by the target. Node's default would end the run here.
      expect(await fenced(pair.home, a.id)).toBe(true);
      expect(await placement(a.id)).toBe("home");
      run.child.kill("SIGINT");
      const result = await run.done;
      expect(result.code, result.out).toBe(4);
      expect(result.out).toContain("SIGINT: stopping.");
      expect(result.out).toContain(`tenant ${a.code}: cutover window`);
      expect(result.out).toContain("interrupted (SIGINT): 1 of 2 tenants done, 0 stopped or failed (above), 1 not started");
      // a is served by the target; b was never started.
      expect(await placement(a.id)).toBe(TARGET);
      expect(await fenced(pair.target, a.id)).toBe(false);
      expect(await placement(b.id)).toBe("home");
      expect(await fenced(pair.home, b.id)).toBe(false);
      expect((await pair.home.admin.query("SELECT 1 FROM platform.tenant_moves WHERE tenant_id = $1", [b.id])).rows).toEqual([]);
      const op = (await pair.home.admin.query("SELECT status, details->>'interrupted' AS interrupted, details->>'notStarted' AS not_started FROM platform_ops.operations WHERE command = 'tenantctl move' ORDER BY id DESC LIMIT 1")).rows[0];
      expect(op).toEqual({ status: "failed", interrupted: "SIGINT", not_started: "1" });
      const again = await tenantctl(pair.env, ["move", "--batch", file, "--to", TARGET, "--concurrency", "1"]).done;
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writers.stop();
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain("1 moved, 1 already there");
      expect(await placement(b.id)).toBe(TARGET);
      expect(await lostWrites(pair, model)).toEqual([]);
      expect(model.acknowledged - before).toBeGreaterThan(0);
    } finally {
      run.child.kill("SIGKILL");
      await writers.stop();
    }
  }, 300_000);

  /** `body` runs while tenant t's move, under a writer, is paused at `phase`; then the run is killed and the writer stopped. */
  const withPausedMove = async (t: SeededTenant, phase: string, body: (run: ReturnType<typeof tenantctl>, writers: ReturnType<typeof startRouterWriters>) => Promise<void>) => {
    const writers = startRouterWriters(pair, [t], { loops: 1, pauseMs: 5, model });
    const run = tenantctl(pair.env, ["move", t.code, "--to", TARGET], { pauseAt: phase });
    try {
      await run.waitFor(`tenant ${t.code}: paused at ${phase}`, 120_000);
      await body(run, writers);
    } finally {
      run.child.kill("SIGKILL");
      await writers.stop();
    }
  };

  it("Ctrl-C while a move streams: it stops before its cutover, served at home and unfenced there, and resumes from streaming", async () => {
    const t = tenants[WAVE + 10]!;
    await withPausedMove(t, "streaming", async (run, writers) => {
      run.child.kill("SIGTERM");
      const result = await run.done;
      expect(result.code, result.out).toBe(4);
      expect(result.out).toContain(`tenant ${t.code}: stopped before its cutover (SIGTERM)`);
      expect(await placement(t.id)).toBe("home");
      expect(await fenced(pair.home, t.id)).toBe(false);
      expect((await pair.home.admin.query<{ phase: string }>("SELECT phase FROM platform.tenant_moves WHERE tenant_id = $1", [t.id])).rows[0]?.phase).toBe("streaming");
      const resumed = await tenantctl(pair.env, ["move", t.code, "--to", TARGET]).done;
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writers.stop();
      expect(resumed.code, resumed.out).toBe(0);
      expect(resumed.out).toContain(`resuming its move home -> ${TARGET} from streaming`);
      expect(await placement(t.id)).toBe(TARGET);
      expect(await lostWrites(pair, model)).toEqual([]);
    });
  }, 300_000);

  it("a run resuming a cutover that a killed run left, asked to stop before it gets there, still finishes it: the tenant is not left fenced", async () => {
    const t = tenants[WAVE + 11]!;
    const writers = startRouterWriters(pair, [t], { loops: 1, pauseMs: 5, model });
    try {
      const first = tenantctl(pair.env, ["move", t.code, "--to", TARGET], { pauseAt: "cutover" });
      await first.waitFor(`tenant ${t.code}: paused at cutover`, 120_000);
      first.child.kill("SIGKILL");
      await first.done;
      expect(await fenced(pair.home, t.id)).toBe(true);
      // The resumed run is stopped after it took the tenant up and before its cutover: where a run that may stop would.
      const resumed = tenantctl(pair.env, ["move", t.code, "--to", TARGET], { pauseAt: "resuming" });
      await resumed.waitFor(`tenant ${t.code}: paused at resuming`, 120_000);
      resumed.child.kill("SIGTERM");
      const result = await resumed.done;
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writers.stop();
      expect(result.out).toContain(`resuming its move home -> ${TARGET} from cutover`);
      expect(result.out).toContain(`tenant ${t.code}: cutover window`);
      expect(result.out).not.toContain("stopped before its cutover");
      expect(result.code, result.out).toBe(4);
      expect(result.out).toContain("interrupted (SIGTERM): 1 of 1 tenants done");
      expect(await placement(t.id)).toBe(TARGET);
      expect(await fenced(pair.target, t.id)).toBe(false);
      expect(await lostWrites(pair, model)).toEqual([]);
    } finally {
      await writers.stop();
    }
  }, 300_000);

  it("a live operation of another role (a superuser's shardctl) is not taken for abandoned by tenantctl, which cannot see that session's start", async () => {
    // The log exists once tenantctl has run; a superuser session held throughout, recorded as a shardctl's would be.
    expect((await tenantctl(pair.env, ["move", tenants[0]!.code, "--to", TARGET, "--dry-run"]).done).code).toBe(0);
    const su = await pair.home.admin.connect();
    const { rows } = await su.query<{ id: string }>(
      `INSERT INTO platform_ops.operations (command, arguments, os_user, details)
       SELECT 'move-shard', '{}'::jsonb, 'sre', jsonb_build_object('session', jsonb_build_object('pid', pid, 'backend_start', backend_start))
         FROM pg_stat_activity WHERE pid = pg_backend_pid() RETURNING id`,
    );
    const id = rows[0]!.id;
    try {
      expect((await tenantctl(pair.env, ["status"]).done).out).not.toContain(`ABANDONED: operation ${id} `);
      const run = await tenantctl(pair.env, ["move", tenants[0]!.code, "--to", TARGET, "--dry-run"]).done;
      expect(run.code, run.out).toBe(0);
      expect(run.out).not.toContain(`closed: operation ${id} `);
      expect((await pair.home.admin.query("SELECT status FROM platform_ops.operations WHERE id = $1", [id])).rows[0]).toEqual({ status: "running" });
    } finally {
      await su.query("DELETE FROM platform_ops.operations WHERE id = $1", [id]);
      su.release();
    }
  });

  it("a run whose own session on home is cut (a network cut, a restart) goes on, and records how it really ended", async () => {
    const t = tenants[WAVE + 7]!;
    await withPausedMove(t, "streaming", async (run, writers) => {
      const op = (await pair.home.admin.query<{ id: string; pid: number }>(
        "SELECT id, (details #>> '{session,pid}')::int AS pid FROM platform_ops.operations WHERE command = 'tenantctl move' AND status = 'running'",
      )).rows;
      expect(op).toHaveLength(1);
      expect((await pair.home.admin.query("SELECT pg_terminate_backend($1::int) AS ok", [op[0]!.pid])).rows[0]).toEqual({ ok: true });
      // Its recorded session gone, the run looks abandoned, and another run closes it as such...
      expect((await tenantctl(pair.env, ["status"]).done).out).toContain(`ABANDONED: operation ${op[0]!.id} (tenantctl move`);
      expect((await tenantctl(pair.env, ["status", "--json"]).done).out).toContain(`ABANDONED: operation ${op[0]!.id} (tenantctl move`);
      run.child.kill("SIGUSR2");
      const result = await run.done;
      await writers.stop();
      expect(result.code, result.out).toBe(0);
      // ...but the run went on, and its end is what the log says.
      expect((await pair.home.admin.query("SELECT status FROM platform_ops.operations WHERE id = $1", [op[0]!.id])).rows[0]).toEqual({ status: "succeeded" });
      expect(await placement(t.id)).toBe(TARGET);
      expect(await lostWrites(pair, model)).toEqual([]);
    });
  }, 300_000);
});
