/**
 * `pnpm cost <env> [--json] [--stack path/to/cdk.tf.json] [--prices path.json]`: the monthly estimate of one
 * environment, read from its synthesized Terraform (run `pnpm synth` first) and the dated price table.
 * Exit codes: 0 printed, 2 bad input (unknown environment, nothing synthesized, a resource with no price rule).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { ENVIRONMENT_NAMES, isEnvironmentName, loadEnvironment } from "@platform/config";
import { main } from "@platform/cli";
import { CostError, DEFAULT_SPANS_PER_TRACE, byComponent, cloudTraceEstimate, estimateStack, priceTableSchema, type Range } from "./estimate.js";

const infraDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const money = (n: number) => `$${n.toLocaleString("en-US", { maximumFractionDigits: n < 10 ? 2 : 0 })}`;
const range = (r: Range) => (r.min === r.max ? money(r.min) : `${money(r.min)}-${money(r.max)}`);

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new CostError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

const program = new Command()
  .name("cost")
  .argument("<env>", `environment: ${ENVIRONMENT_NAMES.join(", ")}`)
  .option("--stack <file>", "a synthesized cdk.tf.json (default: infra/cdktf.out/stacks/<env>/cdk.tf.json)")
  .option("--prices <file>", "price table", join(infraDir, "pricing", "gcp-list-prices.json"))
  .option("--trace-rps <n>", "where traces go to Cloud Trace: the month's average requests/s at the gateway (assumed; docs/SCALING.md's peak is 20000)", "1000")
  .option("--spans-per-trace <n>", "spans in one traced request (assumed)", String(DEFAULT_SPANS_PER_TRACE))
  .option("--json")
  .action((env: string, o: { stack?: string; prices: string; json?: boolean; traceRps: string; spansPerTrace: string }) => {
    if (!isEnvironmentName(env)) throw new CostError(`unknown environment "${env}"; use one of ${ENVIRONMENT_NAMES.join(", ")}`);
    const stackPath = o.stack ?? join(infraDir, "cdktf.out", "stacks", env, "cdk.tf.json");
    if (!existsSync(stackPath)) throw new CostError(`${o.stack ?? relative(process.cwd(), stackPath)} does not exist: run \`pnpm synth\` first (or pass --stack)`);
    const parsed = priceTableSchema.safeParse(readJson(o.prices, "the price table"));
    if (!parsed.success) throw new CostError(`${o.prices} is not a valid price table: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    const table = parsed.data;
    const estimate = estimateStack(readJson(stackPath, "the synthesized stack") as object, table);
    // Usage, so never in the total: the sampling rate is the config's, the traffic an assumption the reader states.
    const trace = estimate.cloudTrace
      ? { requestsPerSecond: Number(o.traceRps), samplingRate: loadEnvironment(env).monitoring.traceSamplingRate, spansPerTrace: Number(o.spansPerTrace) }
      : undefined;
    const traceCost = trace ? { ...trace, ...cloudTraceEstimate(table, trace) } : undefined;
    if (o.json) {
      console.log(JSON.stringify({ environment: env, stack: stackPath, sources: table.sources, ...estimate, ...(traceCost ? { cloudTraceEstimate: traceCost } : {}) }, null, 2));
      return;
    }
    console.log(`${env} in ${estimate.region}: monthly list prices of ${estimate.asOf} (${estimate.currency}, ${table.hoursPerMonth} h, on-demand, no discounts)`);
    console.log(`from ${relative(process.cwd(), stackPath)} (synthesized ${statSync(stackPath).mtime.toISOString()}) and ${relative(process.cwd(), o.prices)}\n`);
    const width = Math.max(...estimate.lines.map((l) => l.address.length));
    for (const l of [...estimate.lines].sort((a, b) => b.monthly.max - a.monthly.max)) {
      console.log(`${l.address.padEnd(width)}  ${range(l.monthly).padStart(15)}  ${l.what}`);
    }
    console.log("\nby component:");
    for (const [component, total] of byComponent(estimate.lines)) console.log(`  ${component.padEnd(48)} ${range(total).padStart(15)}`);
    console.log(`\ntotal: ${range(estimate.total)} a month${estimate.total.min !== estimate.total.max ? " (GKE node pools at their minimum to their maximum)" : ""}`);
    console.log("not in the total (charged by use):");
    for (const u of estimate.usageBased) console.log(`  - ${u}`);
    if (traceCost) {
      console.log(
        `Cloud Trace, assuming ${traceCost.requestsPerSecond.toLocaleString("en-US")} requests/s on average (--trace-rps) x ${traceCost.samplingRate} sampled (monitoring.traceSamplingRate)` +
          ` x ${traceCost.spansPerTrace} spans a trace (--spans-per-trace): ${(traceCost.spansPerMonth / 1e6).toLocaleString("en-US", { maximumFractionDigits: 1 })} million spans, ${money(traceCost.monthly)} a month` +
          ` (the first ${(table.global.cloudTraceFreeSpansPerMonth / 1e6).toLocaleString("en-US")} million free)`,
      );
    }
    for (const n of estimate.notes) console.log(`note: ${n}`);
    console.log(`prices transcribed from ${Object.values(table.sources).join(", ")}; check them there before quoting this figure`);
  });

await main("cost", program, 2);
