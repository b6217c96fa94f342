/**
 * Every job, whatever its task: a span, linked to the request that queued it, the job metrics, and graphile-worker's
 * own log lines through the worker's pino logger (with the job's trace ids, from the active span).
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type Link } from "@opentelemetry/api";
import { Logger, type Task, type TaskList } from "graphile-worker";
import type { Logger as Pino } from "pino";
import type { WorkerMetrics } from "../metrics.js";
import { TRACE_CONTEXT_KEY } from "./queue.js";

const tracer = trace.getTracer("tenant-worker");

/**
 * The job's span starts a trace of its own and links to the span that queued the job (its context travels in the
 * payload, queue.ts): a job runs seconds or days later, perhaps several times, and as the request's child it would
 * stretch that trace over every retry. Jaeger shows the link as a reference both ways. Jobs queued by cron or by
 * hand have no origin and no link.
 */
function originLink(payload: unknown): Link[] {
  const carrier = (payload as Record<string, unknown> | null)?.[TRACE_CONTEXT_KEY];
  if (!carrier || typeof carrier !== "object") return [];
  const origin = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, carrier as Record<string, string>));
  return origin && trace.isSpanContextValid(origin) ? [{ context: origin }] : [];
}

function instrumentTask(name: string, task: Task, metrics: WorkerMetrics): Task {
  return (payload, helpers) => {
    const started = process.hrtime.bigint();
    const finish = (outcome: "success" | "failed") => {
      metrics.jobs.inc({ task: name, outcome });
      metrics.jobDuration.observe({ task: name, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    // Messaging semantic conventions: a consumer span named for the operation and the queue's task.
    return tracer.startActiveSpan(
      `process ${name}`,
      {
        root: true,
        kind: SpanKind.CONSUMER,
        links: originLink(payload),
        attributes: {
          "messaging.system": "graphile_worker",
          "messaging.operation.type": "process",
          "messaging.destination.name": name,
          "messaging.message.id": helpers.job.id,
          "job.attempt": helpers.job.attempts,
        },
      },
      async (span) => {
        try {
          await task(payload, helpers);
          finish("success");
        } catch (error) {
          finish("failed");
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error; // graphile-worker records it and retries the job later
        } finally {
          span.end();
        }
      },
    );
  };
}

export function instrumentTasks(tasks: TaskList, metrics: WorkerMetrics): TaskList {
  return Object.fromEntries(Object.entries(tasks).map(([name, task]) => [name, instrumentTask(name, task!, metrics)]));
}

/** graphile-worker's log lines (its own and each task's helpers.logger) as pino lines, with the job's scope. */
export function workerLogger(log: Pino): Logger {
  const levels = { error: "error", warning: "warn", info: "info", debug: "debug" } as const;
  return new Logger((scope) => {
    const child = log.child(Object.fromEntries(Object.entries(scope).filter(([, v]) => v !== undefined)));
    return (level, message, meta) => child[levels[level as keyof typeof levels] ?? "info"](meta ?? {}, message);
  });
}
