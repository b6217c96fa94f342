/**
 * `pnpm bench:exports`: an export and an import of one large tenant in constant memory (issue 24), with the real
 * service and worker processes on a real PostgreSQL 15.
 *
 * 1. A tenant with BENCH_EXPORT_ROWS items of BENCH_ROW_BYTES bytes of body each (200,000 of 1 kB: some 250 MB of
 *    NDJSON) and a small tenant. The worker exports the small one first (its peak RSS then is the baseline), then the
 *    large one; the figures are the worker's peak resident memory (VmHWM) after each, the export's duration and size.
 * 2. The same number of items imported into a third tenant as one streamed NDJSON request; the figures are the
 *    service's peak resident memory before and after, the import's duration and its report.
 *
 * Constant memory means the peak after the large tenant is the small tenant's plus a bounded amount (a chunk of
 * EXPORT_FETCH_ROWS rows, an import batch of IMPORT_BATCH_ROWS), not a multiple of the data.
 *
 *   pnpm --filter tenant-service bench:exports
 *   BENCH_EXPORT_ROWS=1000000 pnpm --filter tenant-service bench:exports
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { token } from "../test/harness.js";
import { positiveInteger } from "./env.js";
import { memory, startBenchDatabase, startServiceProcess, startWorkerProcess } from "./fixture.js";

const ROWS = positiveInteger("BENCH_EXPORT_ROWS", 200_000);
const ROW_BYTES = positiveInteger("BENCH_ROW_BYTES", 1_000);
const mib = (n: number) => `${n.toFixed(0)} MiB`;

const exportDir = mkdtempSync(join(tmpdir(), "bench-exports-"));
// Both processes inherit it (fixture.ts passes the environment on).
process.env.EXPORT_DIR = exportDir;
const { server, admin, close } = await startBenchDatabase({ queue: true });
const service = await startServiceProcess(server);
const worker = await startWorkerProcess(server);
try {
  const platform = `Bearer ${await token({ scope: "platform:admin", sub: "bench-exports" })}`;
  const call = async (method: string, path: string, authorization: string, body?: unknown) => {
    const res = await fetch(`${service.url}${path}`, { method, headers: { authorization, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const tenant = async (code: string) => {
    const { id } = (await call("POST", "/v1/tenants", platform, { code, name: code, plan: "enterprise" })) as { id: string };
    const admin = `Bearer ${await token({ tenant: id, scope: "tenant:admin", sub: `${code}-admin` })}`;
    const { id: owner } = (await call("POST", `/v1/tenants/${id}/users`, admin, { email: `owner@${code}.test` })) as { id: string };
    return { id, admin, owner };
  };
  const small = await tenant("small");
  const large = await tenant("large");
  {
    const started = Date.now();
    await admin.query(
      "INSERT INTO platform.items (tenant_id, owner_id, title, body, tags) SELECT $1, $2, 'item ' || g, left(repeat(md5(g::text), $4 / 32 + 1), $4), ARRAY['bench'] FROM generate_series(1, $3::int) g",
      [large.id, large.owner, ROWS, ROW_BYTES],
    );
    await admin.query("VACUUM ANALYZE platform.items");
    console.log(`seeded ${ROWS} items of ${ROW_BYTES} bytes in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }

  const exportOf = async (t: { id: string; admin: string }) => {
    const started = Date.now();
    const { id } = (await call("POST", `/v1/tenants/${t.id}/exports`, t.admin)) as { id: string };
    for (;;) {
      const e = (await call("GET", `/v1/tenants/${t.id}/exports/${id}`, t.admin)) as { status: string; files: { table: string; rows: number; bytes: number }[] };
      if (e.status === "done") return { seconds: (Date.now() - started) / 1000, rows: e.files.reduce((n, f) => n + f.rows, 0), bytes: e.files.reduce((n, f) => n + f.bytes, 0) };
      if (e.status !== "queued" && e.status !== "running") throw new Error(`export ${id}: ${JSON.stringify(e)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const first = await exportOf(small);
  const baseline = memory(worker.pid);
  console.log(`worker after exporting the small tenant (${first.rows} rows): RSS ${mib(baseline.rss)}, peak ${mib(baseline.peak)}`);
  const big = await exportOf(large);
  const after = memory(worker.pid);
  console.log(
    `export of ${big.rows} rows, ${(big.bytes / 1024 ** 2).toFixed(0)} MiB of NDJSON in ${big.seconds.toFixed(1)} s ` +
      `(${Math.round(big.rows / big.seconds)} rows/s): worker peak RSS ${mib(after.peak)} (${after.peak - baseline.peak >= 0 ? "+" : ""}${mib(after.peak - baseline.peak)} over the small tenant's)`,
  );

  const target = await tenant("imported");
  const before = memory(service.pid);
  const started = Date.now();
  const lines = async function* () {
    const body = "x".repeat(ROW_BYTES);
    for (let i = 0; i < ROWS; i += 500) {
      let chunk = "";
      for (let j = i; j < Math.min(ROWS, i + 500); j++) chunk += JSON.stringify({ type: "item", key: `bench-${j}`, ownerId: target.owner, title: `item ${j}`, body }) + "\n";
      yield Buffer.from(chunk);
    }
  };
  const res = await fetch(`${service.url}/v1/tenants/${target.id}/imports`, {
    method: "POST",
    headers: { authorization: target.admin, "content-type": "application/x-ndjson" },
    body: lines(),
    duplex: "half",
  } as RequestInit);
  const report = (await res.json()) as { created: { items: number }; failed: number };
  const seconds = (Date.now() - started) / 1000;
  const served = memory(service.pid);
  console.log(
    `import of ${ROWS} NDJSON items (${((ROWS * (ROW_BYTES + 80)) / 1024 ** 2).toFixed(0)} MiB) in ${seconds.toFixed(1)} s (${Math.round(ROWS / seconds)} rows/s): ` +
      `${res.status}, ${report.created?.items} created, ${report.failed} failed; service peak RSS ${mib(before.peak)} before, ${mib(served.peak)} after`,
  );
} finally {
  await worker.stop();
  await service.stop();
  await close();
  rmSync(exportDir, { recursive: true, force: true });
}
