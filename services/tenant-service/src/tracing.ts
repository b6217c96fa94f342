/**
 * Tracing with OpenTelemetry's own instrumentation: @fastify/otel makes the request span (and one per hook and
 * handler) from the incoming W3C `traceparent`, and @opentelemetry/instrumentation-pg makes a span per statement, in
 * whatever context is active when the statement is sent, so a request's queries are in its trace.
 *
 * instrumentation-pg patches pg's classes as Node loads them (require-in-the-middle on pg/lib/client.js and
 * pg-pool): it must be enabled before anything imports `pg`. ESM evaluates every static import before the importing
 * module's body runs, so the processes enable it from a module given to `node --import` (tracing-register.ts), not
 * from server.ts; server.ts and worker.ts then register the tracer provider from their parsed config. Started
 * without that module, requests and jobs are traced but not their statements, and the process says so at start.
 */
import { context, propagation, trace, type Context, type Span } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { createRequire } from "node:module";
import { FastifyOtelInstrumentation } from "@fastify/otel";

/** Probes and scrapes: a trace every few seconds per replica that no one reads. */
const UNTRACED_PATHS = new Set(["/health", "/ready", "/metrics"]);

/**
 * The Fastify plugin (app.ts registers `fastifyTracing.plugin()` before anything else, so it wraps every hook and
 * handler). Disabled until `enableInstrumentation` runs: with no OTLP endpoint a hook costs one boolean check.
 */
export const fastifyTracing = new FastifyOtelInstrumentation({
  enabled: false,
  ignorePaths: (route) => UNTRACED_PATHS.has(route.url.split("?")[0]!),
  // "request" says nothing in Jaeger's list; the route template does (never the raw URL: it names tenants).
  requestHook: (span, request) => span.updateName(`${request.method} ${request.routeOptions.url ?? "unmatched"}`),
});

const pgTracing = new PgInstrumentation({
  enabled: false,
  // A statement outside any request or job (the pool's own, a readiness ping) would be a one-span trace.
  requireParentSpan: true,
});

export interface TracingOptions {
  /** OTLP/HTTP base URL (Jaeger's collector in the cluster); `/v1/traces` is appended. */
  readonly endpoint: string;
  readonly serviceName: string;
}

let instrumented: { queriesTraced: boolean } | undefined;

/**
 * Patches pg (as it loads) and enables the Fastify plugin, reporting to the global tracer provider, which
 * `startTracing` sets later. Called by tracing-register.ts, before the service's modules are loaded; idempotent.
 */
export function enableInstrumentation(): { queriesTraced: boolean } {
  if (!instrumented) {
    // pg already loaded keeps its unpatched classes: the requests are traced, their statements are not.
    instrumented = { queriesTraced: !pgLoaded() };
    registerInstrumentations({ instrumentations: [fastifyTracing, pgTracing] });
  }
  return instrumented;
}

/**
 * Registers the tracer provider (with its default propagators, W3C trace context and baggage) and enables the
 * instrumentation if tracing-register.ts did not. `queriesTraced` is false when pg was loaded first.
 */
export function startTracing(options: TracingOptions): { stop: () => Promise<void>; queriesTraced: boolean } {
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, "")}/v1/traces` });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  const { queriesTraced } = enableInstrumentation();
  return { stop: () => provider.shutdown(), queriesTraced };
}

/** Whether pg's client module is loaded (CommonJS, so in the require cache even when imported from ESM). */
function pgLoaded(): boolean {
  return Object.keys(createRequire(import.meta.url).cache).some((path) => /[\\/]node_modules[\\/]pg[\\/]lib[\\/]client\.js$/.test(path));
}

/** A span's trace and span ids (by default the active one's), for log lines; nothing when it is not recording. */
export function traceFields(span: Span | undefined = trace.getActiveSpan()): { traceId: string; spanId: string } | undefined {
  const ids = span?.spanContext();
  return ids && span!.isRecording() && trace.isSpanContextValid(ids) ? { traceId: ids.traceId, spanId: ids.spanId } : undefined;
}

/** The active trace context as W3C headers (`traceparent`, `tracestate`), to travel with a queued job. */
export function injectTraceContext(ctx: Context = context.active()): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ? carrier : undefined;
}
