/**
 * tenantctl: moves tenants between the databases of a deployment online, one at a time or in waves (issue 25).
 *
 *   pnpm tenantctl move <tenant|--batch file|--all> --to citus [--concurrency 4] [--dry-run]
 *   pnpm tenantctl verify <tenant|--batch file|--all> [--against home]
 *   pnpm tenantctl sync <tenant|--batch file|--all>          # apply the reverse stream now (rollback window)
 *   pnpm tenantctl reverse <tenant|--batch file> [--dry-run]
 *   pnpm tenantctl complete <tenant|--batch file|--all> [--dry-run]
 *   pnpm tenantctl status [--all] [--json]
 *
 * The databases come from the service's environment convention (citus/src/databases.ts): DATABASE_URL is home,
 * DATABASE_URL_<NAME> another one, with DATABASE_PASSWORD_FILE[_<NAME>] and DATABASE_CA_FILE[_<NAME>]. Each command is
 * a module of its own in commands/. Exit codes: 0 done, 2 bad input, 3 refused (state, another run on the tenant,
 * preflight), 4 the operation failed (the move stays resumable: run the same command again), 5 verify found differences.
 */
import { Command } from "commander";
import { main } from "@platform/cli";
import * as complete from "./commands/complete.js";
import * as move from "./commands/move.js";
import * as reverse from "./commands/reverse.js";
import * as status from "./commands/status.js";
import * as sync from "./commands/sync.js";
import * as verify from "./commands/verify.js";

const program = new Command().name("tenantctl").description("move tenants between databases online: copy, stream, verify, cut over, reverse");
program.exitOverride();
for (const command of [move, verify, sync, reverse, complete, status]) command.register(program);

await main("tenantctl", program);
