/**
 * Per request: the request id echoed in X-Request-Id, the trace ids on the request's log lines, the tenant on its
 * span, and the RED metrics by route template, never by raw URL (tenant ids would explode cardinality).
 *
 * The spans themselves are @fastify/otel's (tracing.ts), registered by app.ts before this plugin; with tracing off
 * `request.opentelemetry().span` is null and this adds nothing.
 */
import type { ServiceMetrics } from "../metrics.js";
import { traceFields } from "../tracing.js";
import { shared } from "./shared.js";

export const observability = shared<{ metrics: ServiceMetrics }>("observability", async (app, { metrics }) => {
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    const span = request.opentelemetry().span;
    const ids = span ? traceFields(span) : undefined;
    // reply.log is its own reference (Fastify logs "request completed" with it): both get the ids, so every line of
    // a request can be found from its trace in Jaeger, and the other way round.
    if (ids) request.log = reply.log = request.log.child(ids);
  });
  app.addHook("onSend", async (request) => {
    // The tenant is known only after the API scope's onRequest hooks (tenant-context.ts); the span ends right after
    // the onSend hooks.
    if (request.tenant) request.opentelemetry().span?.setAttribute("tenant.id", request.tenant.id);
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.duration.observe(labels, reply.elapsedTime / 1000);
  });
});
