/**
 * The rules and dashboards against a live Prometheus (issue 23). `promtool test rules` proves an alert's logic on
 * series written by hand; it cannot tell that a metric name or a label does not match what an exporter really
 * exports. Here a real Prometheus server scrapes the real processes (test/live-stack.ts) under the production job
 * names and target labels, with production's rules, and the test asserts that every rule evaluates, that every series
 * a rule or panel reads exists (or is written down below as appearing only under a condition, with the condition),
 * that every panel returns data, that the healthy stack raises only the alerts this stack's shape explains, that Cloud
 * Trace refusing the collector's writes raises OtelCollectorExportFailing, and that stopping PostgreSQL fires
 * CitusNodeDown within its `for`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnvironment } from "@platform/config";
import { type Probe, waitFor } from "@platform/testing";
import { SCRAPE_JOBS, dashboards, ruleGroups, type AlertRule } from "../src/index.js";
import { SLOW_QUERY } from "../src/rules.js";
import { INTERVAL_SECONDS, JOBS_NOT_RUN, OTELCOL, citusInstalled, liveStackUnavailable, startLiveStack, token, type LiveStack } from "./live-stack.js";
import { nameAndJob, selectors, type Selector } from "./promql-selectors.js";

const unavailable = liveStackUnavailable();
if (unavailable) console.warn(`skipping the live Prometheus test: ${unavailable}`);

const overrides = mkdtempSync(join(tmpdir(), "live-prometheus-config-"));
writeFileSync(join(overrides, "empty.json"), "{}");
// Production renders every rule (the missing-standby alert exists only where a group has a standby).
const production = loadEnvironment("production", { env: {}, overrideFile: join(overrides, "empty.json") });
rmSync(overrides, { recursive: true, force: true });
const RULES = ruleGroups(production).flatMap((g) => g.rules.map((r) => ({ name: "alert" in r ? r.alert : r.record, expr: r.expr, rule: r })));
const ALERTS = RULES.flatMap((r) => ("alert" in r.rule ? [r.rule as AlertRule] : []));

/**
 * Grafana's variables, as it substitutes them before a query reaches Prometheus. $tenant is one the stack's
 * citus_stat_tenants reports, once it does (beforeAll).
 */
const PANEL_VARIABLES: Record<string, string> = { $__rate_interval: "1m", $tenant: "no-tenant-here", $namespace: ".+" };
const substitute = (expr: string) => expr.replace(/\$[A-Za-z_]+/g, (v) => PANEL_VARIABLES[v] ?? v);
const PANELS = dashboards().flatMap((d) =>
  (d.panels ?? [])
    .filter((p) => (p as { type?: string }).type !== "row")
    .map((p) => {
      const panel = p as { title?: string; targets?: { expr?: string }[] };
      return { label: `${d.uid}: ${panel.title}`, exprs: (panel.targets ?? []).map((t) => t.expr ?? "") };
    }),
);

/**
 * Series that a healthy stack like this one does not have, by metric name or by exact selector, and why. An entry
 * that does show up fails the test: this list holds only what is really absent.
 */
/** On a Citus coordinator only (citus_* catalog views): conditional only where Citus is not installed. */
const CITUS_ONLY: Record<string, string> = {
  citus_node_shard_bytes: "Citus coordinator only (citus_shards), and Citus is not installed here",
  citus_node_shards: "Citus coordinator only (citus_shards), and Citus is not installed here",
  "citus:shard_bytes:skew": "recorded from citus_node_shard_bytes: Citus coordinator only, and Citus is not installed here",
  citus_stat_tenants_queries: "Citus coordinator only (citus_stat_tenants), and Citus is not installed here",
  citus_stat_tenants_cpu_seconds: "Citus coordinator only (citus_stat_tenants), and Citus is not installed here",
};
const CITUS = citusInstalled();
if (!unavailable) console.log(CITUS ? "live Prometheus test on a single-node Citus 13 coordinator" : "live Prometheus test on plain PostgreSQL 15 (Citus not installed): the citus_* series are conditional");

const ONLY_WHEN: Record<string, string> = {
  ...(CITUS ? {} : CITUS_ONLY),
  citus_background_jobs_recent: "Citus coordinator only (pg_dist_background_job), and a row only once a rebalance has run",
  citus_background_tasks_max_retries: "Citus coordinator only, and only while a rebalance has tasks not done",
  // Only during a shard move or split.
  citus_move_subscription_apply_errors: "only during a shard move or split (its subscription on the target node)",
  citus_move_subscription_enabled: "only during a shard move or split",
  citus_move_subscription_applying: "only during a shard move or split",
  citus_move_subscription_received_lsn_bytes: "only during a shard move or split",
  replication_slot_safe_wal_ratio: "only while a node has a replication slot other than its standby's: a shard move's",
  replication_slot_active: "only while a node has a replication slot other than its standby's: a shard move's",
  replication_slot_retained_bytes: "only while a node has a replication slot other than its standby's: a shard move's",
  // Only with a streaming standby (production's pairs).
  pg_replication_lag_seconds: "only on a primary a standby streams from (production)",
  standby_slot_safe_wal_ratio: "only on a primary with its standby's slot (production)",
  'up{job="citus-postgres",standby="true"}': "only where a Citus group has a standby VM (production); this stack is one primary",
  // Patroni's, on the Citus VMs (test/patroni-metrics.test.ts scrapes a real Patroni for these names).
  ...Object.fromEntries(
    ["up", "patroni_primary", "patroni_replica", "patroni_postgres_running", "patroni_postgres_timeline", "patroni_xlog_location", "patroni_xlog_received_location", "patroni_xlog_replayed_location", "patroni_is_paused"].map((m) => [
      `${m}{job="patroni"}`,
      JOBS_NOT_RUN.patroni!,
    ]),
  ),
  // What the Citus VMs' bootstrap writes for node_exporter's textfile collector (infra/test/bootstrap-backups and
  // bootstrap-restore-points run those scripts).
  pgbackrest_stanza_status_code: "written by citus-backup-metrics on a Citus primary with pgBackRest",
  pgbackrest_backup_last_completion_timestamp_seconds: "written by citus-backup-metrics on a Citus primary with pgBackRest",
  pgbackrest_backup_error: "written by citus-backup-metrics on a Citus primary with pgBackRest",
  citus_restore_point_last_timestamp_seconds: "written by citus-restore-point on the serving coordinator",
  citus_restore_point_interval_seconds: "written by citus-restore-point on the serving coordinator",
  'node_filesystem_avail_bytes{job="citus-node",mountpoint="/var/lib/postgresql"}': "the data disk is mounted there on the Citus VMs only; the metric itself is checked",
  'node_filesystem_size_bytes{job="citus-node",mountpoint="/var/lib/postgresql"}': "the data disk is mounted there on the Citus VMs only; the metric itself is checked",
  // Failures a healthy stack does not have.
  'http_requests_total{job="tenant-service",status=~"5.."}': "only once a request has failed with a 5xx",
  'rate_limit_lease_renewals_total{job="tenant-service",result="error"}': "only once Redis failed a lease renewal",
  'exports_given_up_total{job="tenant-service"}': "only once the service gave up an export that would never end",
  'exports_given_up_total{job="tenant-worker"}': "only once the worker's sweep gave up an export that would never end",
  'worker_jobs_total{job="tenant-worker",outcome="failed"}': "only once a job has failed",
  'db_unavailable_total{job="tenant-service"}': "only once a request was answered 503 for a database node away",
  webhook_deliveries_total: "only once a webhook delivery was attempted (no tenant here has a webhook)",
  // The Kubernetes layer: kube-state-metrics, the kubelets and cAdvisor need a cluster.
  ...Object.fromEntries(
    [...SCRAPE_JOBS["kube-state-metrics"], ...SCRAPE_JOBS.kubelet, ...SCRAPE_JOBS.cadvisor].filter((m) => m !== "up").map((m) => [m, JOBS_NOT_RUN["kube-state-metrics"]!]),
  ),
  // Kong's Prometheus plugin.
  kong_http_requests_total: JOBS_NOT_RUN.kong!,
  kong_request_latency_ms_bucket: JOBS_NOT_RUN.kong!,
  kong_nginx_connections_total: JOBS_NOT_RUN.kong!,
  // The OpenTelemetry Collector: its failure counter exists only once an export has failed, which the test below
  // brings about; without a collector binary here, none of its series.
  ...(OTELCOL.unavailable
    ? Object.fromEntries(SCRAPE_JOBS["otel-collector"].filter((m) => m !== "up").map((m) => [m, OTELCOL.unavailable!]))
    : { otelcol_exporter_send_failed_spans: "only once an export has failed: the collector creates the series at the first failure" }),
};

/** Alerts pending or firing on this healthy stack, and why: anything else raised here is a rule misreading real data. */
const RAISED_AT_REST: Record<string, string> = {
  Watchdog: "always fires, by design",
  TenantServiceReplicasDown: "one tenant-service replica here; production runs at least two",
  PrometheusAlertmanagerUnreachable: "one Alertmanager here; the rules expect the two production runs",
  AlertmanagerClusterDegraded: "one Alertmanager here; the rules expect the two production runs",
  CitusPatroniNotScraped: "a Citus exporter with no Patroni beside it: " + JOBS_NOT_RUN.patroni,
  CitusBackupMetricsMissing: "a primary whose node_exporter has no pgBackRest textfile (no pgBackRest here)",
  CitusRestorePointsMissing: "a serving coordinator with no restore-point textfile (no restore-point timer here)",
};

const conditionalReason = (s: Selector) => ONLY_WHEN[s.text] ?? ONLY_WHEN[nameAndJob(s)] ?? ONLY_WHEN[s.name];

describe.skipIf(unavailable !== undefined)("rules and dashboards on a live Prometheus (PostgreSQL 15, Redis, the tenant service and worker, Debian's exporters)", () => {
  let stack: LiveStack;
  const startedAt = Date.now() / 1000;

  interface ApiResponse<T> {
    status: "success" | "error";
    data: T;
    error?: string;
  }
  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<ApiResponse<T>> => {
    const response = await fetch(`${stack.prometheusUrl}${path}?${new URLSearchParams(params)}`);
    return (await response.json()) as ApiResponse<T>;
  };
  const instant = (expr: string) => api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>("/api/v1/query", { query: expr });
  /** Whether any series matching `selector` was scraped or recorded since the stack started. */
  const seen = async (selector: string) => {
    const r = await api<unknown[]>("/api/v1/series", { "match[]": selector, start: String(startedAt) });
    if (r.status !== "success") throw new Error(`${selector}: ${r.error}`);
    return r.data.length > 0;
  };
  // Prometheus evaluates every few seconds: a try a second is enough.
  const until = <T>(what: string, timeoutMs: number, check: Probe<T>) => waitFor(what, check, { timeoutMs, intervalMs: 1000 });

  beforeAll(async () => {
    stack = await startLiveStack(production, { citus: CITUS });
    // Traffic as the service sees it: tenants on each plan (two suspended), their users and items, reads, and a
    // request refused for a suspended tenant. Creating a tenant queues its provisioning job for the worker.
    const call = async (method: string, path: string, bearer: string, body?: unknown) => {
      const r = await fetch(`${stack.serviceUrl}${path}`, { method, headers: { authorization: `Bearer ${bearer}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
      return { status: r.status, body: (await r.json().catch(() => ({}))) as Record<string, unknown> };
    };
    const platform = token({ scope: "platform:admin" });
    const plans = ["free", "free", "starter", "business", "enterprise", "starter"];
    const tenants: { id: string; admin: string; member: string }[] = [];
    for (const [i, plan] of plans.entries()) {
      const created = await call("POST", "/v1/tenants", platform, { code: `live-${i}`, name: `Live ${i}`, plan });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = String(created.body.id);
      tenants.push({ id, admin: token({ tenant_id: id, scope: "tenant:admin", sub: `admin-${i}` }), member: token({ tenant_id: id, sub: `member-${i}` }) });
    }
    for (const t of tenants) {
      const user = await call("POST", `/v1/tenants/${t.id}/users`, t.admin, { email: `owner@${t.id}.test` });
      expect(user.status, JSON.stringify(user.body)).toBe(201);
      const item = await call("POST", `/v1/tenants/${t.id}/items`, t.member, { ownerId: user.body.id, title: "first", body: "hello" });
      expect(item.status, JSON.stringify(item.body)).toBe(201);
    }
    for (const t of tenants.slice(-2)) expect((await call("PATCH", `/v1/tenants/${t.id}`, platform, { status: "suspended" })).status).toBe(200);
    expect((await call("GET", `/v1/tenants/${tenants.at(-1)!.id}/items`, tenants.at(-1)!.member)).status).toBe(403);
    for (let round = 0; round < 5; round++) for (const t of tenants.slice(0, -2)) expect((await call("GET", `/v1/tenants/${t.id}/items`, t.member)).status).toBe(200);

    // Until the rules have data to work on: the service's rates recorded, the worker's jobs done and scraped, the
    // exporters' queries answered. Then two more evaluations, so every rule has run on it.
    await until("the scraped data", 120_000, async () => {
      const wanted = ['job:http_requests:rate5m{job="tenant-service"}', 'worker_jobs_total{job="tenant-worker",outcome="success"}', "platform_tenants_tenants", "pg_top_statements_calls", "redis_up"];
      if (CITUS) wanted.push("citus:shard_bytes:skew", "citus_stat_tenants_queries");
      // The service's spans through the collector to (the stand-in for) Cloud Trace.
      if (stack.cloudTrace) wanted.push('otelcol_exporter_sent_spans{job="otel-collector",exporter="googlecloud"} > 0', 'otelcol_receiver_accepted_spans{job="otel-collector"} > 0');
      const checks = await Promise.all(wanted.map((e) => instant(e)));
      return checks.every((r) => r.status === "success" && r.data.result.length > 0);
    });
    if (CITUS) {
      const tenants = await api<string[]>("/api/v1/label/tenant/values", { "match[]": "citus_stat_tenants_queries" });
      PANEL_VARIABLES.$tenant = tenants.data[0]!;
    }
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_SECONDS * 1000));
  }, 300_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it("scrapes every target it runs, each up", async () => {
    // Judged over a few scrapes, not one: on a loaded CI machine a single scrape can run past its 2 s timeout. A
    // target down or missing for 20 s still fails, with the last answer's errors.
    let byJob: Record<string, string> = {};
    const want = Object.fromEntries(stack.jobs.map((j) => [j, "up"]));
    await until("every target up", 20_000, async () => {
      const r = await api<{ activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] }>("/api/v1/targets");
      byJob = Object.fromEntries(r.data.activeTargets.map((t) => [t.labels.job, `${t.health} ${t.lastError}`.trim()]));
      return JSON.stringify(Object.entries(byJob).sort()) === JSON.stringify(Object.entries(want).sort());
    }).catch(() => {});
    expect(byJob).toEqual(want);
  });

  it.each(RULES.map((r) => [r.name, r.expr]))("%s evaluates without error", async (_name, expr) => {
    const r = await instant(expr);
    expect(r.error ?? "", expr).toBe("");
    expect(r.status).toBe("success");
  });

  it("every rule group has evaluated with every rule healthy", async () => {
    const r = await api<{ groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] }>("/api/v1/rules");
    const unhealthy = r.data.groups.flatMap((g) => g.rules.filter((rule) => rule.health !== "ok").map((rule) => `${g.name}/${rule.name}: ${rule.health} ${rule.lastError ?? ""}`));
    expect(unhealthy).toEqual([]);
    expect(r.data.groups.flatMap((g) => g.rules.map((rule) => rule.name)).sort()).toEqual(RULES.map((rule) => rule.name).sort());
  });

  const everySelector = () => [
    ...RULES.flatMap((r) => selectors(r.expr).map((s) => ({ where: `rule ${r.name}`, s }))),
    ...PANELS.flatMap((p) => p.exprs.flatMap((e) => selectors(substitute(e)).map((s) => ({ where: `panel ${p.label}`, s })))),
  ];

  it("every series a rule or panel reads was scraped (or recorded), unless written down as conditional", async () => {
    const missing: string[] = [];
    for (const { where, s } of everySelector()) {
      if (conditionalReason(s)) continue;
      // The metric from the job the rule names, then the exact selector (a label value the exporter does not use).
      if (!(await seen(nameAndJob(s)))) missing.push(`${where}: ${nameAndJob(s)} (no such metric from that job)`);
      else if (s.text !== nameAndJob(s) && !(await seen(s.text))) missing.push(`${where}: ${s.text} (the metric exists, not with these labels)`);
    }
    expect(missing).toEqual([]);
  });

  it("each conditional series is really absent here, and read by some rule or panel", async () => {
    const used = new Set(everySelector().flatMap(({ s }) => [s.text, nameAndJob(s), s.name]));
    const stale: string[] = [];
    for (const key of Object.keys(ONLY_WHEN)) {
      if (!used.has(key)) stale.push(`${key}: no rule or panel reads it`);
      else if (await seen(key)) stale.push(`${key}: present here, so not conditional`);
    }
    expect(stale).toEqual([]);
  });

  it("the series check fails on a misspelt name or label value", async () => {
    expect(await seen('pg_up{job="citus-postgres"}')).toBe(true);
    expect(await seen('pg_upp{job="citus-postgres"}')).toBe(false);
    expect(await seen('pg_up{job="citus-postgress"}')).toBe(false);
  });

  it.each(PANELS.map((p) => [p.label, p.exprs]))("panel %s returns data", async (_label, exprs) => {
    for (const expr of exprs.map(substitute)) {
      const r = await instant(expr);
      expect(r.error ?? "", expr).toBe("");
      if (r.data.result.length > 0) continue;
      const conditional = selectors(expr).filter((s) => conditionalReason(s));
      expect(conditional.map((s) => s.text), `no data and no conditional series in: ${expr}`).not.toEqual([]);
    }
  });

  it("the business dashboard's counts are the database's", async () => {
    const { rows } = await stack.admin.query<{ plan: string; status: string; n: string }>("SELECT plan, status, count(*) AS n FROM platform.tenants GROUP BY 1, 2");
    const r = await instant('max by (plan, status) (platform_tenants_tenants{job="citus-postgres",citus_role="coordinator"})');
    const scraped = Object.fromEntries(r.data.result.map((s) => [`${s.metric.plan}/${s.metric.status}`, Number(s.value[1])]));
    expect(scraped).toEqual(Object.fromEntries(rows.map((row) => [`${row.plan}/${row.status}`, Number(row.n)])));
    expect(scraped).toMatchObject({ "free/active": 2, "starter/active": 1, "business/active": 1, "enterprise/suspended": 1, "starter/suspended": 1 });
  });

  it("the top statements are bounded, carry no query text, and name the role that ran each", async () => {
    // A statement of the service's role with enough execution time to be among the 20 whatever else this stack ran
    // (the migrations' DDL, the queue's polling: which of the service's own statements made the list varied from run
    // to run on a loaded machine), each call well under CitusSlowQuery's mean so that no alert follows.
    const client = await stack.admin.connect();
    try {
      await client.query("SET ROLE platform_app");
      for (let i = 0; i < 15; i++) await client.query("SELECT count(*) AS top_statement_for_the_test FROM pg_sleep($1)", [SLOW_QUERY.meanSeconds / 2.5]);
      await client.query("RESET ROLE");
    } finally {
      client.release();
    }
    const { rows } = await stack.admin.query<{ queryid: string }>("SELECT queryid::text FROM pg_stat_statements WHERE query LIKE '%top_statement_for_the_test%' AND userid = 'platform_app'::regrole");
    expect(rows.length).toBe(1);
    const scraped = await until("the role's statement scraped", 60_000, async () => {
      const r = await instant(`pg_top_statements_calls{job="citus-postgres",queryid="${rows[0]!.queryid}"}`);
      return r.data.result.length > 0 && r.data.result;
    });
    expect(scraped.map((s) => s.metric.user)).toContain("platform_app");
    const r = await instant('pg_top_statements_calls{job="citus-postgres"}');
    expect(r.data.result.length).toBeGreaterThan(0);
    expect(r.data.result.length).toBeLessThanOrEqual(20);
    for (const s of r.data.result) {
      expect(s.metric.queryid).toMatch(/^-?\d+$/);
      expect(Object.keys(s.metric).filter((l) => /query$|text/.test(l))).toEqual([]);
    }
  });

  it("a healthy stack raises only the alerts its shape explains", async () => {
    // Over 20 s, not one reading: a single slow scrape on a loaded machine makes an `up == 0` alert pending for an
    // evaluation. An alert the stack's shape does not explain that stays raised still fails.
    const want = Object.keys(RAISED_AT_REST).sort();
    let raised: string[] = [];
    await until("only the explained alerts", 20_000, async () => {
      const r = await api<{ alerts: { labels: Record<string, string>; state: string }[] }>("/api/v1/alerts");
      raised = [...new Set(r.data.alerts.map((a) => a.labels.alertname!))].sort();
      return JSON.stringify(raised) === JSON.stringify(want);
    }).catch(() => {});
    expect(raised).toEqual(want);
  });

  it("a statement slow on the node makes CitusSlowQuery pending, naming its queryid", { timeout: 150_000 }, async () => {
    // A statement of 0.6 s run back to back until the alert is pending (90 s at most): the rate of a counter needs it
    // to grow between two scrapes that list it, and it is listed only once its total time is among the node's top 20,
    // which on a loaded machine (slower DDL before it) took longer than the ten seconds this once ran for.
    let stopped = false;
    const load = (async () => {
      const deadline = Date.now() + 90_000;
      while (!stopped && Date.now() < deadline) await stack.admin.query("SELECT pg_sleep(0.6) AS slow_statement_for_the_test");
    })();
    let raised: Record<string, string> | undefined;
    try {
      await until("CitusSlowQuery pending", 90_000, async () => {
        const r = await api<{ alerts: { labels: Record<string, string>; state: string }[] }>("/api/v1/alerts");
        raised = r.data.alerts.find((a) => a.labels.alertname === "CitusSlowQuery")?.labels;
        return raised !== undefined;
      });
    } finally {
      stopped = true;
      await load;
    }
    const { rows } = await stack.admin.query<{ queryid: string }>("SELECT queryid::text FROM pg_stat_statements WHERE query LIKE 'SELECT pg_sleep($1) AS slow_statement_for_the_test'");
    expect(rows.length).toBe(1);
    expect(raised).toMatchObject({ queryid: rows[0]!.queryid, database: "postgres", user: "postgres", citus_role: "coordinator" });
  });

  it.runIf(OTELCOL.path !== undefined)("Cloud Trace refusing the collector's writes makes OtelCollectorExportFailing pending, naming the exporter", { timeout: 120_000 }, async () => {
    expect(stack.cloudTrace!.calls).toBeGreaterThan(0);
    // What Cloud Trace answers when the collector's Google account lost roles/cloudtrace.agent; the service keeps
    // sending spans (every request is traced), so failed exports follow one another as they would in production.
    stack.cloudTrace!.refusing = true;
    const admin = token({ scope: "platform:admin" });
    let raised: Record<string, string> | undefined;
    try {
      await until("OtelCollectorExportFailing pending", 90_000, async () => {
        await fetch(`${stack.serviceUrl}/v1/tenants/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${admin}` } });
        const r = await api<{ alerts: { labels: Record<string, string>; state: string }[] }>("/api/v1/alerts");
        raised = r.data.alerts.find((a) => a.labels.alertname === "OtelCollectorExportFailing")?.labels;
        return raised !== undefined;
      });
    } finally {
      stack.cloudTrace!.refusing = false;
    }
    expect(raised).toMatchObject({ job: "otel-collector", exporter: "googlecloud", severity: "ticket" });
    expect(await seen('otelcol_exporter_send_failed_spans{job="otel-collector",exporter="googlecloud"}')).toBe(true);
  });

  // The last test: it stops PostgreSQL and Redis for good.
  const nodeDown = ALERTS.find((a) => a.alert === "CitusNodeDown")!;
  const redisDown = ALERTS.find((a) => a.alert === "RedisDown")!;
  const seconds = (duration: string) => Number(/^(\d+)m$/.exec(duration)![1]) * 60;
  it(
    `stopping PostgreSQL fires CitusNodeDown within its for (${nodeDown.for}), and stopping Redis fires RedisDown (${redisDown.for})`,
    { timeout: (seconds(nodeDown.for) + seconds(redisDown.for) + 120) * 1000 },
    async () => {
      const stoppedAt = Date.now();
      stack.stopPostgres();
      await stack.stopRedis();
      const seenAt: Record<string, Partial<Record<"pending" | "firing", number>>> = { CitusNodeDown: {}, RedisDown: {} };
      let labels: Record<string, string> = {};
      // Scrape, then evaluation: a state change shows within two intervals of its cause, and firing one evaluation
      // after `for` has run out. The slack covers a loaded two-core machine.
      const slack = 4 * INTERVAL_SECONDS + 15;
      await until("CitusNodeDown and RedisDown firing", (Math.max(seconds(nodeDown.for), seconds(redisDown.for)) + slack) * 1000, async () => {
        const r = await api<{ alerts: { labels: Record<string, string>; state: "pending" | "firing" }[] }>("/api/v1/alerts");
        for (const a of r.data.alerts) {
          const times = seenAt[a.labels.alertname!];
          if (!times) continue;
          times[a.state] ??= (Date.now() - stoppedAt) / 1000;
          if (a.labels.alertname === "CitusNodeDown") labels = a.labels;
        }
        return seenAt.CitusNodeDown!.firing !== undefined && seenAt.RedisDown!.firing !== undefined;
      });
      expect(seenAt.CitusNodeDown!.pending).toBeLessThan(slack);
      expect(seenAt.CitusNodeDown!.firing).toBeGreaterThanOrEqual(seconds(nodeDown.for));
      expect(seenAt.CitusNodeDown!.firing).toBeLessThan(seconds(nodeDown.for) + slack);
      expect(seenAt.RedisDown!.firing).toBeGreaterThanOrEqual(seconds(redisDown.for));
      // Named as the runbook's commands need it: the node and its role, from the production target labels.
      expect(labels).toMatchObject({ job: "citus-postgres", citus_role: "coordinator", standby: "false", severity: "page" });
      // And Alertmanager has it.
      await until("CitusNodeDown at Alertmanager", 30_000, async () => {
        const alerts = (await (await fetch(`${stack.alertmanagerUrl}/api/v2/alerts?filter=alertname%3D%22CitusNodeDown%22`)).json()) as unknown[];
        return alerts.length > 0;
      });
      console.log(`CitusNodeDown pending after ${seenAt.CitusNodeDown!.pending?.toFixed(1)} s, firing after ${seenAt.CitusNodeDown!.firing?.toFixed(1)} s (for ${nodeDown.for}); RedisDown firing after ${seenAt.RedisDown!.firing?.toFixed(1)} s`);
    },
  );
});
