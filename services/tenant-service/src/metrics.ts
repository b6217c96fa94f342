import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { PoolStats as DatabasePoolStats } from "./db/database.js";

export interface ServiceMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"method" | "route" | "status">;
  readonly duration: Histogram<"method" | "route" | "status">;
  readonly rejections: Counter<"reason">;
  /** Requests answered 503 because a database node was away (a failover, a restart), by SQLSTATE or driver code. */
  readonly databaseUnavailable: Counter<"cause">;
  readonly rateLimitRenewals: Counter<"result">;
  /** Exports failed by the service because they would never end by itself (routes/exports.ts): stale, or job_lost. */
  readonly exportsGivenUp: Counter<"reason">;
}

type PoolStats = () => DatabasePoolStats;

/**
 * What every process of the service exports, the API and the worker alike: its own registry (never prom-client's
 * global one, so two apps in one test process do not collide) with the default process metrics, and the database
 * pool's occupancy when there is a pool.
 */
function processRegistry(pool?: PoolStats): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  if (pool) {
    // Read at scrape time: the saturation alert (monitoring/src/rules.ts) divides in_use by max.
    new Gauge({
      name: "db_pool_connections",
      help: "Database pool connections by state",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const s = pool();
        this.set({ state: "in_use" }, s.total - s.idle);
        this.set({ state: "idle" }, s.idle);
      },
    });
    new Gauge({ name: "db_pool_waiting_clients", help: "Requests waiting for a database connection", registers: [registry], collect() { this.set(pool().waiting); } });
    new Gauge({ name: "db_pool_max_connections", help: "Database pool size", registers: [registry], collect() { this.set(pool().max); } });
    // A lost Citus worker shows here first (src/db/postgres.ts, ROLLBACK_WAIT_MS): failed transactions whose ROLLBACK
    // the coordinator could not answer in time, their connections closed (retired) or, past the budget, held.
    new Gauge({
      name: "db_pool_connections_after_unanswered_rollback",
      help: "Connections whose ROLLBACK went unanswered: closed with the server maybe still busy (retired), or held until it answers (held)",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const s = pool();
        this.set({ state: "retired" }, s.retired ?? 0);
        this.set({ state: "held" }, s.heldBusy ?? 0);
      },
    });
    new Gauge({
      name: "db_pool_nodes_quarantined",
      help: "Citus node groups whose tenants get one connection of the pool, after a ROLLBACK there went unanswered",
      registers: [registry],
      collect() {
        this.set(pool().nodesQuarantined ?? 0);
      },
    });
  }
  return registry;
}

/** RED metrics per route template (never the raw URL: tenant ids would explode cardinality). */
export function createMetrics(pool?: PoolStats): ServiceMetrics {
  const registry = processRegistry(pool);
  return {
    registry,
    requests: new Counter({ name: "http_requests_total", help: "HTTP requests by route template and status", labelNames: ["method", "route", "status"], registers: [registry] }),
    duration: new Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP request duration by route template",
      labelNames: ["method", "route", "status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    rejections: new Counter({ name: "tenant_requests_rejected_total", help: "Requests refused before reaching data, by reason", labelNames: ["reason"], registers: [registry] }),
    databaseUnavailable: new Counter({ name: "db_unavailable_total", help: "Requests answered 503 because a database node was away, by cause", labelNames: ["cause"], registers: [registry] }),
    rateLimitRenewals: new Counter({
      name: "rate_limit_lease_renewals_total",
      help: "Rate-limit leases asked of Redis, by result (granted, exhausted: the tenant's window is used up, error)",
      labelNames: ["result"],
      registers: [registry],
    }),
    exportsGivenUp: exportsGivenUp(registry),
  };
}

/** Both the service (a tenant's request) and the worker (its sweep) give up exports that would never end. */
const exportsGivenUp = (registry: Registry) =>
  new Counter({
    name: "exports_given_up_total",
    help: "Tenant exports given up, by reason (stale: its job stopped making progress, a worker died; job_lost: its job left the queue)",
    labelNames: ["reason"],
    registers: [registry],
  });

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Jobs finished, by task and outcome (success, failed: graphile-worker retries it later). */
  readonly jobs: Counter<"task" | "outcome">;
  readonly jobDuration: Histogram<"task" | "outcome">;
  /** Exports the sweep gave up (worker/export-sweep.ts). */
  readonly exportsGivenUp: Counter<"reason">;
  /** Worker processes found dead, and the jobs they held, released (worker/dead-workers.ts). */
  readonly deadWorkers: Counter;
  readonly deadWorkerJobs: Counter;
}

/** The worker's: per task (a handful, fixed by the task list), never per tenant or job. */
export function createWorkerMetrics(pool?: PoolStats): WorkerMetrics {
  const registry = processRegistry(pool);
  return {
    registry,
    jobs: new Counter({ name: "worker_jobs_total", help: "Jobs finished by task and outcome", labelNames: ["task", "outcome"], registers: [registry] }),
    jobDuration: new Histogram({
      name: "worker_job_duration_seconds",
      help: "Job run time by task and outcome",
      labelNames: ["task", "outcome"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    }),
    exportsGivenUp: exportsGivenUp(registry),
    // Only deaths without a graceful stop count (an OOM kill, a node lost, SIGKILL after the grace period): a rollout's
    // SIGTERM lets the worker release its own jobs. WorkersDying alerts on them.
    deadWorkers: new Counter({ name: "worker_processes_found_dead_total", help: "Worker processes found dead by the sweep, their jobs released", registers: [registry] }),
    deadWorkerJobs: new Counter({ name: "worker_dead_jobs_released_total", help: "Jobs of dead worker processes released to run again", registers: [registry] }),
  };
}
