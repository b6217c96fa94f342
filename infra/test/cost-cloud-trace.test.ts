/**
 * `pnpm cost` and Cloud Trace: where the stack enables the Cloud Trace API (monitoring.traceBackend cloudTrace), the
 * spans are priced from the config's sampling rate and a request rate the reader states, apart from the total (no
 * stack holds traffic). A hand-written stack of one resource is enough: which stacks enable the API is
 * test/stacks.test.ts's to check.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadEnvironment } from "@platform/config";
import { CostError, cloudTraceEstimate, estimateStack, priceTableSchema, type PriceTable, type TerraformJson } from "../src/cost/estimate.js";

const infraDir = join(import.meta.dirname, "..");
const table: PriceTable = priceTableSchema.parse(JSON.parse(readFileSync(join(infraDir, "pricing", "gcp-list-prices.json"), "utf8")));
const dir = mkdtempSync(join(tmpdir(), "cost-trace-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stack = (services: string[]): TerraformJson => ({
  provider: { google: [{ region: Object.keys(table.regions)[0]! }] },
  resource: { google_project_service: Object.fromEntries(services.map((s, i) => [`service_${i}`, { service: s }])) },
});

describe("Cloud Trace in pnpm cost", () => {
  it("prices a month of spans: requests/s x sampling x spans a trace, less the free allotment, at the table's rate", () => {
    const a = { requestsPerSecond: 1000, samplingRate: 0.01, spansPerTrace: 15 };
    const { spansPerMonth, monthly } = cloudTraceEstimate(table, a);
    expect(spansPerMonth).toBeCloseTo(1000 * 0.01 * 15 * table.hoursPerMonth * 3600, 3);
    expect(monthly).toBeCloseTo(((spansPerMonth - table.global.cloudTraceFreeSpansPerMonth) / 1e6) * table.global.cloudTracePerMillionSpans, 6);
    // Within the free allotment, nothing.
    expect(cloudTraceEstimate(table, { ...a, requestsPerSecond: 0.01 }).monthly).toBe(0);
    expect(() => cloudTraceEstimate(table, { ...a, samplingRate: 2 })).toThrow(CostError);
    expect(() => cloudTraceEstimate(table, { ...a, requestsPerSecond: Number.NaN })).toThrow(/requestsPerSecond/);
  });

  it("is named as usage only where the stack enables the Cloud Trace API, and never in the total", () => {
    const withTrace = estimateStack(stack(["cloudtrace.googleapis.com", "compute.googleapis.com"]), table);
    const without = estimateStack(stack(["compute.googleapis.com"]), table);
    expect([withTrace.cloudTrace, without.cloudTrace]).toEqual([true, false]);
    expect(withTrace.usageBased.filter((u) => u.startsWith("Cloud Trace"))).toHaveLength(1);
    expect(without.usageBased.filter((u) => u.startsWith("Cloud Trace"))).toEqual([]);
    expect(withTrace.total).toEqual(without.total);
  });

  it("the CLI states each assumption and reads the sampling rate from the environment's config", async () => {
    const file = join(dir, "cdk.tf.json");
    writeFileSync(file, JSON.stringify(stack(["cloudtrace.googleapis.com"])));
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, ["--import", "tsx", "src/cost/cli.ts", "production", "--stack", file, ...args], { cwd: infraDir });
    const sampling = loadEnvironment("production").monitoring.traceSamplingRate;
    const { stdout } = await cli("--trace-rps", "2000", "--spans-per-trace", "10");
    const { spansPerMonth, monthly } = cloudTraceEstimate(table, { requestsPerSecond: 2000, samplingRate: sampling, spansPerTrace: 10 });
    expect(stdout).toContain(`assuming 2,000 requests/s on average (--trace-rps) x ${sampling} sampled (monitoring.traceSamplingRate) x 10 spans a trace (--spans-per-trace)`);
    expect(stdout).toContain(`${(spansPerMonth / 1e6).toLocaleString("en-US", { maximumFractionDigits: 1 })} million spans, $${Math.round(monthly).toLocaleString("en-US")} a month`);
    const json = JSON.parse((await cli("--json")).stdout) as { cloudTraceEstimate: { requestsPerSecond: number; samplingRate: number } };
    expect(json.cloudTraceEstimate).toMatchObject({ requestsPerSecond: 1000, samplingRate: sampling });
  });
});
