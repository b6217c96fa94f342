/**
 * shardctl: the careful operator around Citus's rebalancer.
 *
 *   pnpm shardctl status [--json]
 *   pnpm shardctl plan [--strategy by_disk_size|by_shard_count] [--threshold x] [--drain-only] [--json]
 *   pnpm shardctl rebalance [--yes] [--dry-run] [--attach] [--no-verify] [--checksum]
 *   pnpm shardctl verify [--checksum]
 *   pnpm shardctl add-node <host:port> [--rebalance] | drain <host:port> | remove-node <host:port>
 *   pnpm shardctl isolate-tenant <tenant id or code> [--to host:port]
 *   pnpm shardctl tenant <tenant id or code> [--json]
 *   pnpm shardctl move-shard <shardid> <from host:port> <to host:port>
 *   pnpm shardctl simulate --add-workers N [--from status.json]
 *
 * Every command that changes the cluster takes --dry-run, and asks before it acts unless --yes (without a terminal
 * it refuses). Each command is a module of its own in commands/, registering itself here.
 *
 * The coordinator comes from --coordinator or CITUS_URL (a superuser connection). Exit codes: 0 done, 2 bad input,
 * 3 refused (preflight, lock, state, not confirmed), 4 the operation failed, 5 verification failed.
 */
import { Command } from "commander";
import { main } from "@platform/cli";
import * as addNode from "./commands/add-node.js";
import * as drain from "./commands/drain.js";
import * as isolateTenant from "./commands/isolate-tenant.js";
import * as moveShard from "./commands/move-shard.js";
import * as plan from "./commands/plan.js";
import * as rebalance from "./commands/rebalance.js";
import * as removeNode from "./commands/remove-node.js";
import * as simulate from "./commands/simulate.js";
import * as status from "./commands/status.js";
import * as tenant from "./commands/tenant.js";
import * as verify from "./commands/verify.js";

const program = new Command().name("shardctl").description("Citus shard operations").option("--coordinator <url>", "coordinator connection string (default: $CITUS_URL)");
// Set before the subcommands exist, so they inherit it: bad options are bad input (exit 2), not a crash.
program.exitOverride();
for (const command of [status, plan, rebalance, verify, addNode, drain, removeNode, isolateTenant, moveShard, tenant, simulate]) command.register(program);

// ShardctlError carries its exit code; anything else is 4, the operation failed.
await main("shardctl", program);
