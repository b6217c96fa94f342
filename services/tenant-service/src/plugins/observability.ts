/**
 * Per request: the request id echoed in X-Request-Id, a span (tracing.ts; a no-op unless OTLP is configured) and
 * the RED metrics by route template, never by raw URL (tenant ids would explode cardinality).
 */
import type { Span } from "@opentelemetry/api";
import type { ServiceMetrics } from "../metrics.js";
import { endSpan, tracer } from "../tracing.js";
import { shared } from "./shared.js";

declare module "fastify" {
  interface FastifyRequest {
    span?: Span;
  }
}

export const observability = shared<{ metrics: ServiceMetrics }>("observability", async (app, { metrics }) => {
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    request.span = tracer.startSpan(`${request.method} ${request.routeOptions.url ?? "unmatched"}`, {
      attributes: { "http.request.method": request.method, "http.route": request.routeOptions.url ?? "" },
    });
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.duration.observe(labels, reply.elapsedTime / 1000);
    const span = request.span;
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      if (request.tenant) span.setAttribute("tenant.id", request.tenant.id);
      endSpan(span);
    }
  });
});
