/**
 * Checks made before any shard moves, so that a move known to fail or to hang is refused with its cause and nothing
 * half done.
 */
import type { ClientBase } from "pg";
import { nodeKey } from "./analysis.js";
import type { ClusterSnapshot } from "./catalog.js";
import type { Output } from "./context.js";
import { forcedRowSecurityTables } from "./moves.js";
import { ShardctlError } from "./operations.js";

export interface Preflight {
  readonly ok: boolean;
  readonly checks: { readonly name: string; readonly ok: boolean; readonly detail: string }[];
}

/**
 * What must hold before shards move: logical decoding everywhere, commits written before they are acknowledged,
 * identities for logical moves, no table whose forced row-level security would stop the move's catch-up, no job
 * running, every node active.
 */
export async function preflight(client: ClientBase, snapshot: ClusterSnapshot): Promise<Preflight> {
  const checks: Preflight["checks"][number][] = [];
  const wal = await client.query<{ nodename: string; nodeport: number; result: string }>("SELECT nodename, nodeport, result FROM run_command_on_workers('SHOW wal_level')");
  const coordinatorWal = (await client.query<{ wal_level: string }>("SHOW wal_level")).rows[0]!.wal_level;
  const notLogical = [...wal.rows.filter((r) => r.result !== "logical").map((r) => nodeKey(r.nodename, r.nodeport)), ...(coordinatorWal === "logical" ? [] : ["coordinator"])];
  checks.push({ name: "wal_level = logical", ok: notLogical.length === 0, detail: notLogical.length === 0 ? "on every node" : `not on ${notLogical.join(", ")}` });
  // A move waits for its target to apply the source's WAL up to pg_current_wal_lsn(), the WAL *written*. With
  // synchronous_commit = off a commit is acknowledged before its record is written, so the move can switch over
  // without it: the acknowledged write is lost (seen on Citus 13.2: one or two lost per drain under writes). Any
  // other value writes the commit record before acknowledging. Checked as every node's default and as any database
  // or role setting.
  const asyncCommit = await client.query<{ node: string }>(
    `SELECT nodename || ':' || nodeport AS node FROM run_command_on_all_nodes($$
       SELECT current_setting('synchronous_commit') = 'off'
           OR EXISTS (SELECT 1 FROM pg_db_role_setting, unnest(setconfig) c WHERE c = 'synchronous_commit=off')$$) r
       JOIN pg_dist_node n USING (nodeid) WHERE r.result <> 'f'`,
  );
  checks.push({
    name: "synchronous_commit not off",
    ok: asyncCommit.rows.length === 0,
    detail:
      asyncCommit.rows.length === 0
        ? "a write is acknowledged only once the WAL a move catches up to holds it"
        : `off (as the default or for a database or role) on ${asyncCommit.rows.map((r) => r.node).join(", ")}: a move can switch over before an acknowledged ` +
          `write reaches its target, and lose it. Set synchronous_commit = on (ALTER SYSTEM, then SELECT pg_reload_conf(); ALTER DATABASE/ROLE ... RESET synchronous_commit)`,
  });
  const identities = await client.query<{ name: string }>(
    `SELECT c.oid::regclass::text AS name FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
      WHERE p.partmethod = 'h' AND c.relkind = 'r'
        AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))`,
  );
  checks.push({
    name: "replica identity",
    ok: identities.rows.length === 0,
    detail: identities.rows.length === 0 ? "every distributed table can be moved logically" : `no primary key or replica identity: ${identities.rows.map((r) => r.name).join(", ")}`,
  });
  const forced = await forcedRowSecurityTables(client);
  checks.push({
    name: "row-level security not forced",
    ok: forced.length === 0,
    detail:
      forced.length === 0
        ? "a move's subscription can apply the writes made during it"
        : `${forced.join(", ")}: FORCE ROW LEVEL SECURITY stops the subscription a move replicates writes through, so the move would never finish ` +
          `while anything writes. Apply migration 0004 (pnpm migrate) or ALTER TABLE ... NO FORCE ROW LEVEL SECURITY (docs/runbooks/shard-move-stalled.md)`,
  });
  checks.push({ name: "no rebalance running", ok: snapshot.runningJob === null, detail: snapshot.runningJob ? `job ${snapshot.runningJob.job_id} is ${snapshot.runningJob.state}` : "none" });
  const inactive = snapshot.nodes.filter((n) => !n.isactive).map((n) => nodeKey(n.nodename, n.nodeport));
  checks.push({ name: "nodes active", ok: inactive.length === 0, detail: inactive.length === 0 ? "all" : `inactive: ${inactive.join(", ")}` });
  return { ok: checks.every((c) => c.ok), checks };
}

/**
 * Why the node holding a tenant's shard would refuse to split it, or null. PostgreSQL 15.19, 16.15 and 17.11 decode
 * only with the output plugins named in output_plugin_libraries, and a Citus split (tenant isolation) decodes on the
 * shard's node with Citus's own plugin, "citus"; moves use pgoutput. A server that predates the setting decodes with
 * any plugin. Asked before the split, so that the refusal comes with what to do and nothing half done.
 */
export async function citusDecoderRefusal(client: ClientBase, table: string, tenantId: string): Promise<string | null> {
  const placement = (
    await client.query<{ nodename: string; nodeport: number; local: boolean; isolated: boolean }>(
      `SELECT s.nodename, s.nodeport, n.groupid = (SELECT groupid FROM pg_dist_local_group) AS local,
              d.shardminvalue = d.shardmaxvalue AS isolated
         FROM citus_shards s JOIN pg_dist_shard d USING (shardid)
         JOIN pg_dist_node n ON n.nodename = s.nodename AND n.nodeport = s.nodeport
        WHERE s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)`,
      [table, tenantId],
    )
  ).rows[0];
  // An isolated tenant is only placed: a move, which decodes with pgoutput.
  if (!placement || placement.isolated) return null;
  // '*': the server has no such setting.
  const ask = "SELECT coalesce(current_setting('output_plugin_libraries', true), '*')";
  let libraries: string;
  if (placement.local) {
    libraries = (await client.query<{ libraries: string }>(`${ask} AS libraries`)).rows[0]!.libraries;
  } else {
    const answer = (
      await client.query<{ success: boolean; result: string }>(
        "SELECT success, result FROM run_command_on_workers($1) WHERE nodename = $2 AND nodeport = $3",
        [ask, placement.nodename, placement.nodeport],
      )
    ).rows[0];
    if (!answer?.success) return `cannot ask ${nodeKey(placement.nodename, placement.nodeport)} which output plugins it allows: ${answer?.result ?? "no answer"}`;
    libraries = answer.result;
  }
  if (libraries === "*") return null;
  const allowed = libraries.split(",").map((name) => name.trim().replace(/^"(.*)"$/, "$1"));
  if (allowed.includes("citus")) return null;
  return (
    `${nodeKey(placement.nodename, placement.nodeport)}, which holds the tenant's shard, decodes only with the output plugins "${libraries}" ` +
    `(output_plugin_libraries), and isolating a tenant splits its shard with Citus's "citus" plugin. Add citus on every node ` +
    `(output_plugin_libraries = 'pgoutput, citus', as the platform's bootstrap writes it at boot; then SELECT pg_reload_conf(): ` +
    `docs/runbooks/whale-tenant.md) and run this again`
  );
}

/** Prints the checks and refuses (exit 3) when one fails. */
export function requirePreflight(result: Preflight, out: Output): void {
  for (const check of result.checks) out.line(`${check.ok ? "ok  " : "FAIL"} ${check.name}: ${check.detail}`);
  if (!result.ok) throw new ShardctlError("preflight failed: nothing was changed", 3);
}
