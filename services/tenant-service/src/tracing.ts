import { SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { Database, Queryable, TenantContext } from "./db/database.js";

export const tracer = trace.getTracer("tenant-service");

/**
 * Exports spans over OTLP/HTTP when an endpoint is configured (Jaeger's OTLP receiver in the cluster); otherwise the
 * API's no-op tracer makes every span free. Spans are created explicitly (request, transaction), which works under
 * ESM without loader hooks.
 */
export function initTracing(options: { endpoint?: string; serviceName: string }): () => Promise<void> {
  if (!options.endpoint) return async () => {};
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, "")}/v1/traces` }))],
  });
  provider.register();
  return () => provider.shutdown();
}

export function endSpan(span: Span, error?: unknown): void {
  if (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** Wraps every transaction in a span carrying the tenant. */
export function tracedDatabase(db: Database): Database {
  return {
    ...db,
    kind: db.kind,
    ping: () => db.ping(),
    close: () => db.close(),
    poolStats: db.poolStats ? () => db.poolStats!() : undefined,
    transaction<T>(context: TenantContext, work: (tx: Queryable) => Promise<T>): Promise<T> {
      return tracer.startActiveSpan("db.transaction", { attributes: { "db.system": "postgresql", "tenant.id": context.tenantId ?? "" } }, async (span) => {
        try {
          const result = await db.transaction(context, work);
          endSpan(span);
          return result;
        } catch (error) {
          endSpan(span, error);
          throw error;
        }
      });
    },
  };
}
