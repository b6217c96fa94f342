/**
 * One tenant's move, phase by phase, each recorded in the home database before it starts so that a run killed
 * anywhere resumes to the same end state (docs/runbooks/tenant-move.md):
 *
 *   fencing    the target refuses the tenant (platform.tenant_fences): only tenantctl writes its rows there
 *   copying    a slot on the source exports a snapshot; the tenant's rows are copied in it, parents first
 *   streaming  the slot's later changes are applied until the target is nearly caught up; verify (informational)
 *   cutover    (a) fence the source, (b) wait for the tenant's transactions there to end (await_tenant_quiet),
 *              (c) apply everything committed before the source's WAL position, (d) verify (decisive),
 *              (e) placement -> target in the home registry, (f) unfence the target. A failure before (e) removes
 *              the source fence and the move stays resumable in `streaming`.
 *   switched   (e) is committed; only (f) and dropping the forward stream remain
 *   rollback_window  the tenant lives in the target; a reverse stream (target -> source) keeps the way back
 *   reversed / completed
 */
import { HOME_DATABASE } from "../databases.js";
import { type Databases, type Db, type Output, TenantctlError, streamRefusal } from "./context.js";
import { TENANTS_TABLE, type TenantTable, tenantTables } from "./catalog.js";
import { copyTenantRows, deleteTenantRows, diffClean, diffTenant, type TableDiff } from "./copy.js";
import { PLACE_SQL, type MoveRow, placementOf, readMove, recordMove, startMove } from "./state.js";
import { TenantStream, createPublicationSql, createSlotWithSnapshot, dropStream, ensurePublication, ensureSlot, slotLag, streamNames } from "./stream.js";

export interface MoveOptions {
  readonly out: Output;
  /** lock_timeout for waiting on the tenant's in-flight transactions at the cutover (b). */
  readonly quietTimeoutMs: number;
  /** Cutover tries before the move gives up (each failure rolls back to streaming). */
  readonly cutoverAttempts: number;
  /** Catch-up is close enough to cut over when one pass applies at most this many changes. */
  readonly cutoverLagChanges: number;
  readonly dryRun?: boolean;
  /** Test hook (TENANTCTL_TEST_PAUSE_AT): stop at this phase, to be killed there. */
  readonly pauseAt?: string;
  /**
   * Aborted when the run is asked to stop (Ctrl-C, SIGTERM, SIGHUP): a move stops at its next phase boundary while its
   * tenant is served where it was (before a cutover, between copy pages, between catch-up passes), and a cutover
   * already begun goes to its end (switched, or rolled back and unfenced): stopping inside one leaves the tenant fenced,
   * refused everywhere, until someone runs the command again.
   */
  readonly stop?: AbortSignal;
}

/** Throws, exit 4, when the run was asked to stop: the move is recorded at a phase it resumes from. */
function stopIfAsked(options: MoveOptions, tenant: Tenant, where: string): void {
  if (!options.stop?.aborted) return;
  throw new TenantctlError(`tenant ${tenant.code}: stopped ${where} (${String(options.stop.reason)}); it is served where it was, and the same command resumes it`, 4);
}

export interface MoveReport {
  readonly tenant: string;
  readonly code: string;
  readonly from: string;
  readonly to: string;
  readonly outcome: "moved" | "already" | "dry-run" | "reversed" | "completed";
  readonly rowsCopied?: number;
  readonly copyMs?: number;
  readonly catchUpChanges?: number;
  readonly cutoverMs?: number | null;
}

interface Tenant {
  readonly id: string;
  readonly code: string;
}

async function pause(options: MoveOptions, phase: string, tenant: Tenant): Promise<void> {
  if (options.pauseAt !== phase) return;
  options.out.line(`tenant ${tenant.code}: paused at ${phase}`);
  // Bounded: a forgotten paused run still ends. SIGUSR2 ends the pause early (a test that needs the run to go on), and
  // so does a stop request (a test then sees what the stop does at that point).
  await new Promise<void>((resolve) => {
    const resume = () => {
      clearTimeout(timer);
      process.removeListener("SIGUSR2", resume);
      options.stop?.removeEventListener("abort", resume);
      resolve();
    };
    const timer = setTimeout(resume, 600_000);
    process.once("SIGUSR2", resume);
    options.stop?.addEventListener("abort", resume, { once: true });
  });
}

async function fence(db: Db, tenantId: string, reason: string): Promise<void> {
  await db.pool.query("INSERT INTO platform.tenant_fences (tenant_id, reason) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING", [tenantId, reason.slice(0, 200)]);
}
async function unfence(db: Db, tenantId: string): Promise<void> {
  await db.pool.query("DELETE FROM platform.tenant_fences WHERE tenant_id = $1", [tenantId]);
}

/** Rows the tenant has in `db` (its data tables, not its registry row). */
async function tenantRowCount(db: Db, tables: readonly TenantTable[], tenantId: string): Promise<number> {
  let n = 0;
  for (const t of tables) if (t.name !== TENANTS_TABLE) n += Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.name} WHERE tenant_id = $1`, [tenantId])).rows[0]!.n);
  return n;
}

export function printDiff(out: Output, diff: readonly TableDiff[], sides: [string, string]): void {
  for (const d of diff) {
    const same = d.source.rows === d.target.rows && d.source.checksum === d.target.checksum;
    out.line(`  ${same ? "same" : "DIFF"} ${d.table.padEnd(34)} ${sides[0]} ${String(d.source.rows).padStart(8)} ${d.source.checksum.slice(0, 12) || "-"}   ${sides[1]} ${String(d.target.rows).padStart(8)} ${d.target.checksum.slice(0, 12) || "-"}`);
    for (const line of d.differences) out.line(`       ${line}`);
  }
}

/** What the stream of a move from `source` carries: the tenant's registry row only when it comes from home. */
const streamTables = (all: readonly TenantTable[], source: string) => (source === HOME_DATABASE ? all : all.filter((t) => t.name !== TENANTS_TABLE));

/**
 * The cutover (a)-(f) from `from` to `to`: `catchUp` brings `to` up to a source position (the stream), or, for a
 * re-copy, copies everything while `from` is fenced and quiet. Returns the window in ms. Before (e) every failure
 * removes the fence on `from` and rethrows.
 */
async function cutover(
  dbs: Databases,
  tenant: Tenant,
  move: MoveRow,
  from: Db,
  to: Db,
  tables: readonly TenantTable[],
  catchUp: (upto: string) => Promise<void>,
  options: MoveOptions,
  after: { phase: "switched" | "reversed"; reverseFrom: () => Promise<string | null> },
): Promise<number> {
  const home = await dbs.home();
  await recordMove(home, tenant.id, { phase: "cutover", cutover_attempts: move.cutover_attempts + 1, error: null });
  const started = performance.now();
  // (a) New transactions of the tenant in `from` fail with PT001 from here on.
  await fence(from, tenant.id, `tenantctl: moving to ${to.name}`);
  let switched = false;
  try {
    await pause(options, "cutover", tenant);
    // (b) Every transaction that entered the tenant before the fence has ended.
    const quiet = await from.pool.connect();
    try {
      await quiet.query("BEGIN");
      await quiet.query(`SET LOCAL lock_timeout = ${Math.round(options.quietTimeoutMs)}`);
      await quiet.query("SELECT platform.await_tenant_quiet($1)", [tenant.id]);
      await quiet.query("COMMIT");
    } catch (error) {
      await quiet.query("ROLLBACK").catch(() => {});
      if ((error as { code?: string }).code === "55P03") throw new TenantctlError(`the tenant's transactions in ${from.name} did not end within ${options.quietTimeoutMs} ms`, 4);
      throw error;
    } finally {
      quiet.release();
    }
    // (c) The source's position after the last of them, flushed (a synchronous commit flushes everything before
    // it, whatever synchronous_commit the writers used), then everything committed before it applied.
    const upto = await flushedPosition(from, tenant.id);
    await catchUp(upto);
    // (d) Nothing writes the tenant on either side now: the two must be identical.
    const diff = await diffTenant(from, to, tables, tenant.id);
    if (!diffClean(diff)) {
      printDiff(options.out, diff, [from.name, to.name]);
      throw new TenantctlError(`tenant ${tenant.code}: ${from.name} and ${to.name} differ after the final catch-up (above): the cutover was rolled back; see docs/runbooks/tenant-move.md (verify mismatch)`, 5);
    }
    const reverseFrom = await after.reverseFrom();
    // (e) The switch, with the phase, in one home transaction.
    const client = await home.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(PLACE_SQL, [tenant.id, to.name]);
      await recordMove(client, tenant.id, { phase: "switched", cutover_lsn: upto, ...(reverseFrom ? { reverse_from_lsn: reverseFrom } : {}) });
      await client.query("COMMIT");
      switched = true;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  } catch (error) {
    if (!switched) {
      await unfence(from, tenant.id).catch(() => {});
      await recordMove(home, tenant.id, { phase: "streaming", error: (error as Error).message.slice(0, 2000) }).catch(() => {});
    }
    throw error;
  }
  await pause(options, "switched", tenant);
  // (f)
  await unfence(to, tenant.id);
  const windowMs = Math.round(performance.now() - started);
  await recordMove(home, tenant.id, { ...(after.phase === "reversed" ? { phase: "reversed" as const } : {}), cutover_ms: windowMs });
  return windowMs;
}

/**
 * The database's WAL position now, flushed: everything committed before it, even with synchronous_commit = off, is
 * then readable by decoding (which reads only flushed WAL and stops there without a word). The write makes the
 * synchronous commit flush: a transaction that wrote nothing flushes nothing.
 */
async function flushedPosition(db: Db, tenantId: string): Promise<string> {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SET LOCAL synchronous_commit = on");
    const upto = (await client.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0]!.lsn;
    await client.query(
      `INSERT INTO platform.tenant_move_progress (slot, lsn) VALUES ($1, $2::pg_lsn) ON CONFLICT (slot) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = EXCLUDED.updated_at`,
      [`tenantctl_position_${tenantId.replace(/-/g, "")}`, upto],
    );
    await client.query("COMMIT");
    return upto;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** After the switch: the target unfenced, the forward stream dropped, the reverse slot moved to its starting point. */
async function finishSwitch(dbs: Databases, tenant: Tenant, move: MoveRow): Promise<void> {
  const home = await dbs.home();
  const [source, target] = await Promise.all([dbs.get(move.source), dbs.get(move.target)]);
  await unfence(target, tenant.id);
  await dropStream(source, move.slot, move.publication);
  if (move.slot) await target.pool.query("DELETE FROM platform.tenant_move_progress WHERE slot = $1", [move.slot]);
  const fresh = (await readMove(home, tenant.id))!;
  if (fresh.reverse_slot && fresh.reverse_from_lsn) {
    await target.pool.query(
      "SELECT pg_replication_slot_advance($1, $2::pg_lsn) FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn",
      [fresh.reverse_slot, fresh.reverse_from_lsn],
    );
  }
  if (fresh.phase === "switched") await recordMove(home, tenant.id, { phase: "rollback_window" });
}

/** Catch up until one pass applies at most `lagChanges` changes (bounded: a stream that never closes is reported). */
async function catchUpStream(stream: TenantStream, lagChanges: number, stop: () => void, deadlineMs = 600_000): Promise<number> {
  let total = 0;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    stop();
    const pass = await stream.drain();
    total += pass.changes;
    if (pass.changes <= lagChanges) return total;
    if (Date.now() > deadline) throw new TenantctlError(`the stream did not catch up within ${deadlineMs / 1000} s (last pass applied ${pass.changes} changes): see docs/runbooks/tenant-move.md (lag that does not close)`, 4);
  }
}

/** `tenantctl move`: one tenant to `targetName`, from wherever it is, or resumed from where a run stopped. */
export async function moveTenant(dbs: Databases, tenant: Tenant, targetName: string, options: MoveOptions): Promise<MoveReport> {
  const home = await dbs.home();
  const out = options.out;
  const target = await dbs.get(targetName);
  const placement = await placementOf(home, tenant.id);
  let move = await readMove(home, tenant.id);
  const inFlight = move && !["completed", "reversed", "rollback_window"].includes(move.phase);
  if (move && move.phase === "rollback_window") {
    if (move.target === targetName) return { tenant: tenant.id, code: tenant.code, from: move.source, to: targetName, outcome: "already" };
    throw new TenantctlError(`tenant ${tenant.code} is in the rollback window of its move to ${move.target}: run tenantctl reverse or tenantctl complete first`, 3);
  }
  if (move && move.phase === "reversed") throw new TenantctlError(`tenant ${tenant.code} was moved back to ${move.source}: run tenantctl complete ${tenant.code} first (removes the rows left in ${move.target})`, 3);
  if (inFlight && (move!.direction !== "forward" || move!.target !== targetName)) {
    throw new TenantctlError(`tenant ${tenant.code} has a ${move!.direction} move to ${move!.direction === "forward" ? move!.target : move!.source} in phase ${move!.phase}: resume that one (tenantctl ${move!.direction === "forward" ? `move --to ${move!.target}` : "reverse"} ${tenant.code})`, 3);
  }
  if (!inFlight && placement.database === targetName) return { tenant: tenant.id, code: tenant.code, from: targetName, to: targetName, outcome: "already" };
  const sourceName = inFlight ? move!.source : placement.database;
  const source = await dbs.get(sourceName);
  const all = await tenantTables(source, target, true);
  const tables = streamTables(all, sourceName);
  const forward = streamNames(tenant.id, "forward");
  // A Citus coordinator cannot stream a tenant's rows out (they are in the workers' shards): reverse re-copies.
  const reverse = target.citus ? null : streamNames(tenant.id, "reverse");
  const reverseTables = streamTables(all, targetName);

  if (options.dryRun) {
    out.line(`tenant ${tenant.code} (${tenant.id}): ${sourceName} -> ${targetName}${inFlight ? `, resuming from ${move!.phase}` : ""}`);
    out.line(`  tables, in copy order: ${tables.map((t) => t.name).join(", ")}`);
    out.line(`  1. ${targetName}: INSERT INTO platform.tenant_fences (tenant_id, reason) VALUES ('${tenant.id}', ...)`);
    out.line(`  2. ${sourceName}: ${createPublicationSql(forward.publication, tables, tenant.id)}`);
    out.line(`     ${sourceName}: CREATE_REPLICATION_SLOT ${forward.slot} LOGICAL pgoutput (SNAPSHOT 'export'); copy in that snapshot; apply the slot's changes`);
    if (reverse) out.line(`     ${targetName}: ${createPublicationSql(reverse.publication, reverseTables, tenant.id)}; slot ${reverse.slot} (the rollback window's stream)`);
    else out.line(`     ${targetName} is Citus: no reverse stream; tenantctl reverse re-copies under a fence`);
    out.line(`  3. verify: row counts and checksums per table`);
    out.line(`  4. ${sourceName}: fence; await_tenant_quiet with lock_timeout ${options.quietTimeoutMs} ms; catch up to pg_current_wal_insert_lsn(); verify`);
    out.line(`     home: ${PLACE_SQL.replace(/\s+/g, " ")} -- ($1 = ${tenant.id}, $2 = ${targetName})`);
    out.line(`     ${targetName}: DELETE FROM platform.tenant_fences WHERE tenant_id = '${tenant.id}'`);
    return { tenant: tenant.id, code: tenant.code, from: sourceName, to: targetName, outcome: "dry-run" };
  }

  // A run that stopped in a cutover (or just after the switch) left the tenant fenced: a resumed one finishes it even
  // when asked to stop. Once an attempt rolls back (and unfences), stopping is safe again.
  let mayStop = !(inFlight && ["cutover", "switched"].includes(move!.phase));
  if (mayStop) stopIfAsked(options, tenant, "before its move began");
  // Checked between catch-up passes and before each cutover attempt, never inside one.
  const beforeCutover = () => {
    if (mayStop) stopIfAsked(options, tenant, "before its cutover");
  };
  if (!inFlight) {
    if (source.citus) throw new TenantctlError(`tenant ${tenant.code} lives in ${sourceName}, a Citus database: a move out of Citus is a reverse (tenantctl reverse) within a rollback window`, 3);
    for (const [db, why] of [[source, "the move's stream"], ...(reverse ? [[target, "the rollback window's stream"] as const] : [])] as const) {
      const refusal = await streamRefusal(db, why);
      if (refusal) throw new TenantctlError(`tenant ${tenant.code}: ${refusal}; then run this again`, 3);
    }
    await startMove(home, { tenant_id: tenant.id, source: sourceName, target: targetName, slot: forward.slot, publication: forward.publication, reverse_slot: reverse?.slot ?? null, reverse_publication: reverse?.publication ?? null });
    move = (await readMove(home, tenant.id))!;
    out.line(`tenant ${tenant.code}: moving ${sourceName} -> ${targetName}`);
  } else {
    out.line(`tenant ${tenant.code}: resuming its move ${sourceName} -> ${targetName} from ${move!.phase}`);
    await pause(options, "resuming", tenant);
  }
  let report: MoveReport = { tenant: tenant.id, code: tenant.code, from: sourceName, to: targetName, outcome: "moved" };

  if (move!.phase === "fencing") {
    await fence(target, tenant.id, `tenantctl: moving in from ${sourceName}`);
    await pause(options, "fencing", tenant);
    const present = await tenantRowCount(target, tables, tenant.id);
    if (present > 0) {
      throw new TenantctlError(`${targetName} already holds ${present} rows of tenant ${tenant.code} that no move of tenantctl put there: inspect them (tenantctl verify ${tenant.code} --against ${targetName}) and delete them, then run this again`, 3);
    }
    await recordMove(home, tenant.id, { phase: "copying" });
    move = (await readMove(home, tenant.id))!;
  }

  if (move!.phase === "copying") {
    // A copy that was interrupted starts over: its snapshot died with the run.
    await dropStream(source, forward.slot, null);
    await target.pool.query("DELETE FROM platform.tenant_move_progress WHERE slot = $1", [forward.slot]);
    await deleteTenantRows(target, tables.filter((t) => t.name !== TENANTS_TABLE), tenant.id);
    await ensurePublication(source, forward.publication, tables, tenant.id);
    if (reverse) await ensurePublication(target, reverse.publication, reverseTables, tenant.id);
    // The reverse slot exists before the target is unfenced, so it sees every write the tenant makes there.
    const [slot] = await Promise.all([createSlotWithSnapshot(source, forward.slot), reverse ? ensureSlot(target, reverse.slot) : Promise.resolve()]);
    const copyStarted = performance.now();
    let copied = 0;
    try {
      copied = await copyTenantRows(source, target, tables, tenant.id, {
        snapshot: slot.snapshot,
        onRows: async (_table, n) => {
          copied += n;
          if (copied === n) await pause(options, "copying", tenant);
          // The copy starts over when the move resumes (its snapshot dies with the run), so it may stop mid-way.
          stopIfAsked(options, tenant, "during its copy");
        },
      });
    } finally {
      await slot.close();
    }
    const copyMs = Math.round(performance.now() - copyStarted);
    await recordMove(home, tenant.id, { phase: "streaming", copy_lsn: slot.consistentLsn, rows_copied: String(copied) });
    out.line(`tenant ${tenant.code}: copied ${copied} rows in ${copyMs} ms (${Math.round((copied * 1000) / Math.max(copyMs, 1))} rows/s) at ${slot.consistentLsn}`);
    report = { ...report, rowsCopied: copied, copyMs };
    move = (await readMove(home, tenant.id))!;
  }

  if (move!.phase === "streaming" || move!.phase === "cutover") {
    const stream = new TenantStream(source, target, forward.slot, forward.publication, tables);
    if (move!.phase === "streaming") {
      await pause(options, "streaming", tenant);
      const changes = await catchUpStream(stream, options.cutoverLagChanges, beforeCutover);
      const lag = await slotLag(source, forward.slot);
      out.line(`tenant ${tenant.code}: caught up (${changes} changes applied, ${lag ?? "?"} bytes behind)`);
      report = { ...report, catchUpChanges: changes };
      const diff = await diffTenant(source, target, tables, tenant.id);
      if (!diffClean(diff)) out.line(`tenant ${tenant.code}: verify before the cutover: ${diff.filter((d) => d.source.rows !== d.target.rows || d.source.checksum !== d.target.checksum).map((d) => d.table).join(", ")} still differ (writes in flight); the cutover verifies again with writes blocked`);
      // What was written while verify read: applied now, not inside the window.
      await catchUpStream(stream, options.cutoverLagChanges, beforeCutover);
    }
    for (let attempt = 1; ; attempt++) {
      beforeCutover();
      try {
        const fresh = (await readMove(home, tenant.id))!;
        const windowMs = await cutover(dbs, tenant, fresh, source, target, tables, async (upto) => void (await stream.drain(upto)), options, {
          phase: "switched",
          reverseFrom: async () => (reverse ? (await target.pool.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0]!.lsn : null),
        });
        report = { ...report, cutoverMs: windowMs };
        out.line(`tenant ${tenant.code}: cutover window ${windowMs} ms`);
        break;
      } catch (error) {
        if ((error as TenantctlError).exitCode === 5 || attempt >= options.cutoverAttempts) throw error;
        out.line(`tenant ${tenant.code}: cutover attempt ${attempt} rolled back (${(error as Error).message}); catching up and trying again`);
        mayStop = true;
        await catchUpStream(stream, options.cutoverLagChanges, beforeCutover);
      }
    }
    move = (await readMove(home, tenant.id))!;
  }

  if (move!.phase === "switched") {
    await finishSwitch(dbs, tenant, move!);
    move = (await readMove(home, tenant.id))!;
    if (report.cutoverMs === undefined) {
      out.line(`tenant ${tenant.code}: resumed after the switch; unfenced in ${targetName} (window not measured: the run that fenced it was stopped)`);
      report = { ...report, cutoverMs: null };
    }
  }
  return report;
}

/** `tenantctl reverse`: back to the move's source within the rollback window, with the same cutover. */
export async function reverseTenant(dbs: Databases, tenant: Tenant, options: MoveOptions): Promise<MoveReport> {
  const home = await dbs.home();
  const out = options.out;
  let move = await readMove(home, tenant.id);
  if (!move) throw new TenantctlError(`tenant ${tenant.code} has no move to reverse`, 3);
  if (move.phase === "reversed") return { tenant: tenant.id, code: tenant.code, from: move.target, to: move.source, outcome: "already" };
  const resuming = move.direction === "reverse" && ["streaming", "cutover", "switched"].includes(move.phase);
  if (!resuming && move.phase !== "rollback_window") {
    throw new TenantctlError(`tenant ${tenant.code}'s move is in phase ${move.phase}${move.phase === "completed" ? " (its rollback window was closed by tenantctl complete)" : ""}: only a move in its rollback window can be reversed`, 3);
  }
  const [holder, back] = await Promise.all([dbs.get(move.target), dbs.get(move.source)]);
  const all = await tenantTables(back, holder, true);
  const tables = streamTables(all, holder.name);
  const how = move.reverse_slot ? `the reverse stream (slot ${move.reverse_slot})` : `a re-copy under a fence (${holder.name} cannot stream the tenant out)`;
  if (options.dryRun) {
    out.line(`tenant ${tenant.code}: ${holder.name} -> ${back.name} by ${how}; the same cutover: fence ${holder.name}, await_tenant_quiet, catch up, verify, placement -> ${back.name}, unfence ${back.name}`);
    return { tenant: tenant.id, code: tenant.code, from: holder.name, to: back.name, outcome: "dry-run" };
  }
  // As in moveTenant: a reverse resumed in its cutover or after its switch is finished even when asked to stop.
  let mayStop = !(resuming && ["cutover", "switched"].includes(move.phase));
  if (mayStop) stopIfAsked(options, tenant, "before its reverse began");
  const beforeCutover = () => {
    if (mayStop) stopIfAsked(options, tenant, "before its reverse cutover");
  };
  if (!resuming) await recordMove(home, tenant.id, { direction: "reverse", phase: "streaming", cutover_ms: null, cutover_attempts: 0, error: null });
  out.line(`tenant ${tenant.code}: ${resuming ? "resuming its reverse" : "reversing"} ${holder.name} -> ${back.name} by ${how}`);
  move = (await readMove(home, tenant.id))!;
  let report: MoveReport = { tenant: tenant.id, code: tenant.code, from: holder.name, to: back.name, outcome: "reversed" };
  if (move.phase === "streaming" || move.phase === "cutover") {
    let catchUp: (upto: string) => Promise<void>;
    const stream = move.reverse_slot ? new TenantStream(holder, back, move.reverse_slot, move.reverse_publication!, tables, move.reverse_from_lsn) : null;
    if (stream) {
      await pause(options, "streaming", tenant);
      const changes = await catchUpStream(stream, options.cutoverLagChanges, beforeCutover);
      out.line(`tenant ${tenant.code}: reverse stream caught up (${changes} changes applied)`);
      catchUp = async (upto) => void (await stream.drain(upto));
    } else {
      catchUp = async () => {
        await deleteTenantRows(back, tables.filter((t) => t.name !== TENANTS_TABLE), tenant.id);
        await copyTenantRows(holder, back, tables, tenant.id);
      };
    }
    for (let attempt = 1; ; attempt++) {
      beforeCutover();
      try {
        const windowMs = await cutover(dbs, tenant, (await readMove(home, tenant.id))!, holder, back, tables, catchUp, options, { phase: "reversed", reverseFrom: async () => null });
        report = { ...report, cutoverMs: windowMs };
        out.line(`tenant ${tenant.code}: cutover window ${windowMs} ms (back in ${back.name})`);
        break;
      } catch (error) {
        if ((error as TenantctlError).exitCode === 5 || attempt >= options.cutoverAttempts || !stream) throw error;
        out.line(`tenant ${tenant.code}: reverse cutover attempt ${attempt} rolled back (${(error as Error).message}); trying again`);
        mayStop = true;
        await catchUpStream(stream, options.cutoverLagChanges, beforeCutover);
      }
    }
    move = (await readMove(home, tenant.id))!;
  }
  if (move.phase === "switched" || move.phase === "reversed") {
    await unfence(back, tenant.id);
    await dropStream(holder, move.reverse_slot, move.reverse_publication);
    if (move.reverse_slot) await back.pool.query("DELETE FROM platform.tenant_move_progress WHERE slot = $1", [move.reverse_slot]);
    if (move.phase === "switched") await recordMove(home, tenant.id, { phase: "reversed" });
  }
  return report;
}

/**
 * `tenantctl complete`: closes the rollback window. Drops both streams, deletes the tenant's rows from the side that
 * no longer holds it (in batches; its registry row too unless that side is home, where the registry is authoritative),
 * and keeps its fence there.
 */
export async function completeTenant(dbs: Databases, tenant: Tenant, options: MoveOptions): Promise<MoveReport & { rowsDeleted?: number }> {
  const home = await dbs.home();
  const move = await readMove(home, tenant.id);
  if (!move) throw new TenantctlError(`tenant ${tenant.code} has no move to complete`, 3);
  if (move.phase === "completed") return { tenant: tenant.id, code: tenant.code, from: move.source, to: move.target, outcome: "already" };
  if (move.phase !== "rollback_window" && move.phase !== "reversed") throw new TenantctlError(`tenant ${tenant.code}'s ${move.direction} move is in phase ${move.phase}: finish it first (tenantctl ${move.direction === "forward" ? `move --to ${move.target}` : "reverse"} ${tenant.code})`, 3);
  const holderName = move.phase === "rollback_window" ? move.target : move.source;
  const leftName = move.phase === "rollback_window" ? move.source : move.target;
  const [holder, left] = await Promise.all([dbs.get(holderName), dbs.get(leftName)]);
  const placement = await placementOf(home, tenant.id);
  if (placement.database !== holderName) throw new TenantctlError(`the registry places tenant ${tenant.code} in ${placement.database}, not ${holderName} as its move says: investigate before deleting anything`, 3);
  const all = await tenantTables(holder, left, true);
  const remove = leftName === HOME_DATABASE ? all.filter((t) => t.name !== TENANTS_TABLE) : all;
  if (options.dryRun) {
    options.out.line(`tenant ${tenant.code}: drop the streams; delete its rows in ${leftName} (${remove.map((t) => t.name).join(", ")}), keep its fence there`);
    return { tenant: tenant.id, code: tenant.code, from: leftName, to: holderName, outcome: "dry-run" };
  }
  const [source, target] = [await dbs.get(move.source), await dbs.get(move.target)];
  await dropStream(source, move.slot, move.publication);
  await dropStream(target, move.reverse_slot, move.reverse_publication);
  for (const slot of [move.slot, move.reverse_slot, `tenantctl_position_${tenant.id.replace(/-/g, "")}`]) if (slot) await Promise.all([source, target].map((db) => db.pool.query("DELETE FROM platform.tenant_move_progress WHERE slot = $1", [slot])));
  await fence(left, tenant.id, `tenantctl: moved to ${holderName}`);
  await pause(options, "complete", tenant);
  const rowsDeleted = await deleteTenantRows(left, remove, tenant.id);
  await recordMove(home, tenant.id, { phase: "completed", finished_at: new Date() });
  options.out.line(`tenant ${tenant.code}: completed; ${rowsDeleted} rows deleted from ${leftName}, fenced there`);
  return { tenant: tenant.id, code: tenant.code, from: leftName, to: holderName, outcome: "completed", rowsDeleted };
}

/** `tenantctl verify`: the tenant's rows where it lives against `other` (default: the other side of its last move). */
export async function verifyTenant(dbs: Databases, tenant: Tenant, other: string | undefined, out: Output): Promise<TableDiff[]> {
  const home = await dbs.home();
  const placement = await placementOf(home, tenant.id);
  const move = await readMove(home, tenant.id);
  const otherName = other ?? (move ? (move.source === placement.database ? move.target : move.source) : undefined);
  if (!otherName) throw new TenantctlError(`tenant ${tenant.code} has never moved: name the database to compare with (--against <name>)`, 2);
  if (otherName === placement.database) throw new TenantctlError(`tenant ${tenant.code} lives in ${otherName}: compare it with another database`, 2);
  const [a, b] = await Promise.all([dbs.get(placement.database), dbs.get(otherName)]);
  const all = await tenantTables(a, b, true);
  const tables = move && move.source !== HOME_DATABASE && move.target !== HOME_DATABASE ? all : streamTables(all, move?.source ?? HOME_DATABASE);
  const diff = await diffTenant(a, b, tables, tenant.id);
  out.line(`tenant ${tenant.code}: ${a.name} (holds it) against ${b.name}`);
  printDiff(out, diff, [a.name, b.name]);
  return diff;
}

/**
 * `tenantctl sync`: applies the reverse stream now, so the side a tenant left is current (a later reverse has less to
 * catch up, verify compares like with like, and the slot releases the WAL it holds). Changes nothing for a move
 * without a reverse stream.
 */
export async function syncTenant(dbs: Databases, tenant: Tenant, options: MoveOptions): Promise<MoveReport & { changes: number }> {
  const home = await dbs.home();
  const move = await readMove(home, tenant.id);
  if (!move || move.phase !== "rollback_window") throw new TenantctlError(`tenant ${tenant.code} is not in a rollback window${move ? ` (its move is ${move.phase})` : ""}: nothing to sync`, 3);
  if (!move.reverse_slot) {
    options.out.line(`tenant ${tenant.code}: ${move.target} cannot stream it out (Citus): no reverse stream to sync`);
    return { tenant: tenant.id, code: tenant.code, from: move.target, to: move.source, outcome: "already", changes: 0 };
  }
  const [holder, back] = await Promise.all([dbs.get(move.target), dbs.get(move.source)]);
  const tables = streamTables(await tenantTables(back, holder, true), holder.name);
  if (options.dryRun) {
    options.out.line(`tenant ${tenant.code}: would apply slot ${move.reverse_slot} (${holder.name}) to ${back.name}`);
    return { tenant: tenant.id, code: tenant.code, from: holder.name, to: back.name, outcome: "dry-run", changes: 0 };
  }
  // Everything committed in the holder before now, flushed or not yet.
  const { changes } = await new TenantStream(holder, back, move.reverse_slot, move.reverse_publication!, tables, move.reverse_from_lsn).drain(await flushedPosition(holder, tenant.id));
  options.out.line(`tenant ${tenant.code}: ${changes} changes applied to ${back.name}`);
  return { tenant: tenant.id, code: tenant.code, from: holder.name, to: back.name, outcome: "already", changes };
}
