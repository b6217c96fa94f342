import { randomBytes } from "node:crypto";
import { freePort, waitFor } from "@platform/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installQueue } from "../src/worker/queue.js";
import { AUDIENCE, ISSUER, SECRET, createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";
import { descendsFrom, startOtlpReceiver, startScript, waitUntilServing, type CapturedSpan, type OtlpReceiver } from "./processes.js";

if (unavailable) console.warn(`skipping tracing tests: ${unavailable}`);

/** A traceparent as Kong would send it: a trace of its own, its span the parent, sampled. */
function traceparent(): { header: string; traceId: string; spanId: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { header: `00-${traceId}-${spanId}-01`, traceId, spanId };
}

const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;
const isStatement = (s: CapturedSpan) => s.kind === CLIENT && s.attributes["db.system.name"] === "postgresql" && typeof s.attributes["db.query.text"] === "string";

describe.skipIf(unavailable !== undefined)("traces from the real processes, over OTLP, on PostgreSQL 15", () => {
  let stack: Stack;
  let otlp: OtlpReceiver;
  let tenant: TenantFixture;
  let platform: string;
  const read = traceparent();
  const create = traceparent();
  let createdId: string;
  let serviceLog: string[];

  beforeAll(async () => {
    stack = await startStack();
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    otlp = await startOtlpReceiver();
    platform = await token({ scope: "platform:admin" });
    tenant = await createTenant(stack, "traced", platform);

    // The service as `pnpm start` runs it, exporting to the receiver. Two requests, each with its own traceparent.
    const port = await freePort();
    const service = startScript("start", {
      DATABASE_URL: stack.config.DATABASE_URL!,
      REDIS_URL: stack.config.REDIS_URL!,
      AUTH_JWT_SECRET: SECRET,
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
      HOST: "127.0.0.1",
      PORT: String(port),
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    });
    try {
      await waitUntilServing(service, `http://127.0.0.1:${port}/health`);
      const items = await fetch(`http://127.0.0.1:${port}/v1/tenants/${tenant.id}/items`, { headers: { authorization: `Bearer ${tenant.member}`, traceparent: read.header } });
      expect(items.status).toBe(200);
      const created = await fetch(`http://127.0.0.1:${port}/v1/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${platform}`, traceparent: create.header, "content-type": "application/json" },
        body: JSON.stringify({ code: "linked", name: "Linked" }),
      });
      expect(created.status).toBe(201);
      createdId = ((await created.json()) as { id: string }).id;
    } finally {
      const code = await service.stop();
      expect(code, [...service.stdout, ...service.stderr].join("\n")).toBe(0); // exits cleanly, having flushed its spans
    }
    serviceLog = service.stdout;
  }, 180_000);
  afterAll(async () => {
    await otlp?.close();
    await stack?.close();
  });

  const serviceSpans = () => otlp.spans.filter((s) => s.service === "tenant-service");
  const requestSpan = (parent: { traceId: string; spanId: string }) => {
    const roots = serviceSpans().filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);
    expect(roots.length).toBe(1);
    return roots[0]!;
  };

  it("puts every span of a request in the trace its traceparent names, under the caller's span", () => {
    const spans = serviceSpans();
    // Only the two requests were traced (the health checks are not): no span started a trace of its own.
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([read.traceId, create.traceId]));
    const request = requestSpan(read);
    expect(request).toMatchObject({ kind: SERVER, name: "GET /v1/tenants/:tenant/items" });
    expect(request.attributes).toMatchObject({ "http.route": "/v1/tenants/:tenant/items", "http.response.status_code": 200, "tenant.id": tenant.id });
    for (const span of spans.filter((s) => s.traceId === read.traceId)) expect(descendsFrom(span, request, spans)).toBe(true);
  });

  it("traces each database statement of a request as a descendant of the request's span", () => {
    const spans = serviceSpans();
    const request = requestSpan(read);
    const statements = spans.filter((s) => s.traceId === read.traceId && isStatement(s));
    const texts = statements.map((s) => s.attributes["db.query.text"] as string);
    // The route's transaction: BEGIN, entering the tenant and reading its row, which this replica had not cached (the
    // one statement sets the tenant's context on plain PostgreSQL, db/database.ts), the queries, COMMIT.
    expect(texts).toEqual(expect.arrayContaining(["BEGIN", "COMMIT", `SELECT * FROM platform.enter_tenant_row('${tenant.id}')`]));
    expect(texts.some((t) => t.includes("FROM platform.items"))).toBe(true);
    for (const statement of statements) expect(descendsFrom(statement, request, spans)).toBe(true);
  });

  it("writes the trace ids on the request's log lines", () => {
    const lines = serviceLog.map((line) => JSON.parse(line) as { msg?: string; traceId?: string; spanId?: string });
    const completed = lines.filter((l) => l.msg === "request completed" && l.traceId === read.traceId);
    expect(completed.length).toBe(1);
    expect(completed[0]!.spanId).toBe(requestSpan(read).spanId);
  });

  it("queues the job with the context of the request that queued it", async () => {
    const { rows } = await stack.admin.query<{ payload: { tenantId: string; traceContext?: { traceparent?: string } } }>(
      "SELECT payload FROM graphile_worker._private_jobs WHERE key = $1",
      [`tenant.provision:${createdId}`],
    );
    expect(rows.length).toBe(1);
    expect(rows[0]!.payload.tenantId).toBe(createdId);
    expect(rows[0]!.payload.traceContext?.traceparent).toMatch(new RegExp(`^00-${create.traceId}-[0-9a-f]{16}-01$`));
  });

  it("traces the worker's job, linked to the request that queued it, with its statements under the job", async () => {
    const healthPort = await freePort();
    const worker = startScript("worker", { DATABASE_URL: stack.config.DATABASE_URL!, HEALTH_PORT: String(healthPort), OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint });
    let metrics = "";
    try {
      await waitUntilServing(worker, `http://127.0.0.1:${healthPort}/livez`);
      await waitFor(
        "the provisioning job to run",
        async () => (await stack.admin.query("SELECT 1 FROM platform.audit_log WHERE tenant_id = $1 AND action = 'tenant.provisioned'", [createdId])).rows.length > 0,
        { intervalMs: 200, detail: () => `${worker.stdout.join("\n")}\n${worker.stderr.join("\n")}` },
      );
      metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    } finally {
      const code = await worker.stop();
      expect(code, [...worker.stdout, ...worker.stderr].join("\n")).toBe(0);
    }

    const spans = otlp.spans;
    const jobs = spans.filter((s) => s.service === "tenant-worker" && s.kind === CONSUMER && s.name === "process tenant.provision");
    const job = jobs.find((s) => s.links.some((l) => l.traceId === create.traceId));
    expect(job).toBeDefined();
    // Linked to the span that queued it, which is in the request's trace, under its request span.
    const origin = serviceSpans().find((s) => s.spanId === job!.links[0]!.spanId);
    expect(origin).toBeDefined();
    expect(descendsFrom(origin!, requestSpan(create), serviceSpans())).toBe(true);
    // A trace of its own (retries would otherwise stretch the request's), with the job's statements under it.
    expect(job!.parentSpanId).toBe("");
    expect(job!.traceId).not.toBe(create.traceId);
    const statements = spans.filter((s) => s.traceId === job!.traceId && isStatement(s));
    expect(statements.some((s) => (s.attributes["db.query.text"] as string).includes("platform.tenant_metrics"))).toBe(true);
    for (const statement of statements) expect(descendsFrom(statement, job!, spans)).toBe(true);

    // The worker's conventions: pino JSON lines only, and the service's metric conventions.
    for (const line of worker.stdout) expect(() => JSON.parse(line)).not.toThrow();
    expect(metrics).toMatch(/^worker_jobs_total\{task="tenant.provision",outcome="success"\} [1-9]/m);
    expect(metrics).toMatch(/^worker_job_duration_seconds_count\{task="tenant.provision",outcome="success"\} [1-9]/m);
    expect(metrics).toMatch(/^db_pool_max_connections 7$/m);
  });
});
