/**
 * The platform's monitored processes, real and on loopback, for test/live-prometheus.test.ts: PostgreSQL 15 with
 * pg_stat_statements, migrated as `pnpm migrate` does; Redis; the tenant service and its worker started by their
 * package scripts' own command lines; postgres_exporter (with the platform's queries), redis_exporter and
 * node_exporter from Debian's packages; Alertmanager; the OpenTelemetry Collector of the pinned version
 * (scripts/tools/install-otelcol.sh) with the environment's own configuration, receiving the service's and worker's
 * spans and exporting them to a stand-in for Cloud Trace's gRPC API on loopback; and a Prometheus server that scrapes
 * them all under the job names and target labels of the rendered prometheus.yml, with the project's rules.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer as createHttp2Server } from "node:http2";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { parse, stringify } from "yaml";
import type { EnvironmentConfig } from "@platform/config";
import { citusUnavailable, freePort, postgresUnavailable, redisUnavailable, startPostgres, startRedis, waitFor as poll, type PostgresServer, type RedisServer } from "../../testing/src/index.js";
import { otelCollectorConfig } from "../../k8s/src/charts/monitoring/otel-collector.js";
import { hasOtelCollector, postgresExporterQueries, renderMonitoring, ruleGroups } from "../src/index.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const SERVICE_DIR = join(REPO, "services/tenant-service");
const CITUS_DIR = join(REPO, "citus");

export const BINARIES = {
  prometheus: "prometheus",
  postgresExporter: "prometheus-postgres-exporter",
  redisExporter: "prometheus-redis-exporter",
  nodeExporter: "prometheus-node-exporter",
  alertmanager: "prometheus-alertmanager",
} as const;

/** Why the live stack cannot run here, or undefined when it can. */
export function liveStackUnavailable(): string | undefined {
  for (const [what, binary] of Object.entries(BINARIES)) {
    if (spawnSync(binary, ["--version"]).error) return `${binary} not found (${what}; apt-get install ${binary === "prometheus" ? "prometheus" : binary})`;
  }
  return postgresUnavailable() ?? redisUnavailable();
}

/** Whether Citus is installed for the PostgreSQL the helper runs (built from its source: it is in no registry here). */
export const citusInstalled = (): boolean => citusUnavailable() === undefined;

/** Scrape and evaluation interval of the test's Prometheus: short, so that rules see a few points within seconds. */
export const INTERVAL_SECONDS = 2;

export const JWT = { secret: "live-prometheus-test-secret-0123456789", issuer: "https://auth.test/", audience: "tenant-service" } as const;

/** An HS256 token as the service accepts in development (AUTH_JWT_SECRET). */
export function token(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: "live-test", iss: JWT.issuer, aud: JWT.audience, iat: now, exp: now + 3600, scope: "", ...claims })}`;
  return `${body}.${createHmac("sha256", JWT.secret).update(body).digest("base64url")}`;
}

interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  readonly output: string[];
  stop(): Promise<void>;
}

function run(name: string, command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Running {
  const child = spawn(command, args, { cwd: options.cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  // Kept bounded: the last lines are what a failure message needs.
  const keep = (chunk: Buffer) => {
    output.push(...chunk.toString().split("\n").filter(Boolean));
    if (output.length > 400) output.splice(0, output.length - 400);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    name,
    child,
    output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 2xx, within `timeoutMs`; fails with the process's last output if it exits first. */
async function waitFor(process: Running, url: string, timeoutMs = 90_000): Promise<void> {
  await poll(
    `${process.name} to answer at ${url}`,
    async () => {
      if (process.child.exitCode !== null) throw new Error(`${process.name} exited with ${process.child.exitCode}:\n${process.output.slice(-30).join("\n")}`);
      return fetch(url).then((r) => r.ok, () => false);
    },
    { timeoutMs, intervalMs: 300, detail: () => `\n${process.output.slice(-30).join("\n")}` },
  );
}

function runToEnd(name: string, command: string, args: string[], options: { cwd?: string; env?: Record<string, string> }): void {
  const r = spawnSync(command, args, { cwd: options.cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...options.env }, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${name} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

/** One command to Redis over RESP; resolves with the first reply line. */
function redisCommand(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(10_000, () => socket.destroy(new Error("redis: no reply within 10 s")));
    socket.once("data", (chunk) => {
      socket.end();
      const reply = chunk.toString().split("\r\n")[0]!;
      if (reply.startsWith("-")) reject(new Error(`redis ${args.join(" ")}: ${reply}`));
      else resolve(reply);
    });
    socket.once("error", reject);
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  });
}

/** `node <args>` of a package.json script that starts with node (the service's start and worker scripts). */
function nodeScript(dir: string, script: string): string[] {
  const command = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts[script]!;
  const [node, ...args] = command.split(" ");
  if (node !== "node") throw new Error(`${dir}/package.json script ${script} no longer starts with node: ${command}`);
  return args;
}

/**
 * The collector binary of the version the cluster runs, as k8s/test/otel-collector.test.ts finds it: built once and
 * cached by scripts/tools/install-otelcol.sh (exit 3: it cannot be had here, said why).
 */
export const OTELCOL: { readonly path?: string; readonly unavailable?: string } = (() => {
  const script = join(REPO, "scripts/tools/install-otelcol.sh");
  const install = spawnSync(script, [], { encoding: "utf8", timeout: 900_000 });
  if (install.status === 0) return { path: install.stdout.trim().split("\n").pop()! };
  if (install.status === 3) return { unavailable: `no OpenTelemetry Collector here: ${install.stderr.trim().split("\n").pop()}` };
  throw new Error(`scripts/tools/install-otelcol.sh failed (exit ${String(install.status ?? install.signal)}):\n${install.stderr}`);
})();

/**
 * Cloud Trace's gRPC API as the googlecloud exporter calls it (TraceService/BatchWriteSpans, plaintext on loopback):
 * it answers Empty, or while `refusing` PERMISSION_DENIED, as Cloud Trace does when the collector's Google account
 * lacks roles/cloudtrace.agent. The collector and its exporter are real; only Google's end is stood in for.
 */
export interface FakeCloudTrace {
  readonly port: number;
  /** BatchWriteSpans calls answered so far. */
  readonly calls: number;
  refusing: boolean;
  stop(): Promise<void>;
}

async function startFakeCloudTrace(port: number): Promise<FakeCloudTrace> {
  const server = createHttp2Server();
  const state = { calls: 0, refusing: false };
  server.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      const ok = headers[":path"] === "/google.devtools.cloudtrace.v2.TraceService/BatchWriteSpans" && !state.refusing;
      if (ok) state.calls++;
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(ok ? { "grpc-status": "0" } : { "grpc-status": "7", "grpc-message": "The caller does not have permission" }));
      // An empty message (google.protobuf.Empty): no compression flag, length 0.
      stream.end(ok ? Buffer.alloc(5) : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    get calls() {
      return state.calls;
    },
    get refusing() {
      return state.refusing;
    },
    set refusing(value: boolean) {
      state.refusing = value;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The Prometheus jobs this stack runs, and why the others of the rendered configuration are not here. */
export const JOBS_NOT_RUN: Record<string, string> = {
  ...(OTELCOL.unavailable ? { "otel-collector": OTELCOL.unavailable } : {}),
  kong: "Kong is in no package registry reachable here (k8s/README.md); its metrics are Kong's Prometheus plugin's",
  hydra: "Ory Hydra is not packaged here; no rule or panel reads its metrics",
  patroni: "Patroni runs on the Citus VMs; test/patroni-metrics.test.ts scrapes a real Patroni 3.0 for every metric the rules read",
  "kube-state-metrics": "no Kubernetes cluster here (kube-state-metrics needs one to list); promtool cases cover its alerts",
  kubelet: "no kubelet here (the API server test runs none either); promtool cases cover its alerts",
  cadvisor: "no kubelet here, so no cAdvisor",
};

export interface LiveStack {
  readonly prometheusUrl: string;
  readonly alertmanagerUrl: string;
  readonly serviceUrl: string;
  readonly postgres: PostgresServer;
  readonly redis: RedisServer;
  /** The jobs scraped, as in the rendered prometheus.yml. */
  readonly jobs: readonly string[];
  /** The rules file Prometheus loaded. */
  readonly rulesFile: string;
  /** Superuser pool on the PostgreSQL server (closed by stop). */
  readonly admin: pg.Pool;
  readonly processes: readonly Running[];
  /** Google's end of the collector's exports, where the stack runs the collector. */
  readonly cloudTrace?: FakeCloudTrace;
  /** Stops PostgreSQL (and the exporters keep running): what a node down looks like to the rules. */
  stopPostgres(): void;
  stopRedis(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts everything. `config` gives the rules (ruleGroups) and the scrape configuration whose job names, target
 * labels and relabelling the test's prometheus.yml keeps; only the targets change, to loopback.
 */
export async function startLiveStack(config: EnvironmentConfig, options: { citus: boolean }): Promise<LiveStack> {
  const { citus } = options;
  const dir = mkdtempSync(join(tmpdir(), "live-prometheus-"));
  const processes: Running[] = [];
  let postgres: PostgresServer | undefined;
  let redis: RedisServer | undefined;
  let admin: pg.Pool | undefined;
  let postgresStopped = false;
  let redisStopped = false;
  let cloudTrace: FakeCloudTrace | undefined;
  const stopAll = async () => {
    for (const p of [...processes].reverse()) await p.stop();
    await cloudTrace?.stop();
    await admin?.end().catch(() => {});
    if (postgres && !postgresStopped) postgres.stop();
    if (redis && !redisStopped) await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // pg_stat_statements as on the Citus VMs (infra/src/citus/patroni-vm.ts: shared_preload_libraries).
    // With Citus installed, the node is a single-node Citus coordinator holding its own shards, as the Citus VMs'
    // settings have it (citus and pg_stat_statements preloaded, every tenant's statements tracked); without, plain
    // PostgreSQL 15 and the citus_* series are ONLY_WHEN's.
    const settings: Record<string, string> = citus
      ? { shared_preload_libraries: "'citus,pg_stat_statements'", "citus.stat_tenants_track": "'all'", "citus.stat_tenants_period": "10" }
      : { shared_preload_libraries: "'pg_stat_statements'" };
    [postgres, redis] = await Promise.all([startPostgres({ settings }), startRedis()]);
    admin = new pg.Pool({ connectionString: postgres.url, max: 2 });
    // Its idle connections end when the node-down test stops PostgreSQL: expected, not an error of the test.
    admin.on("error", () => {});
    // The roles the Citus bootstrap creates (infra/src/citus/bootstrap/lib/roles.sh), as services/tenant-service's
    // test harness does; prometheus is postgres_exporter's, pg_monitor and nothing more.
    if (citus) {
      // Citus reaches the node it places shards on as the session's own role; over the socket directory, where
      // authentication is trust, it needs no password for itself.
      await admin.query("CREATE EXTENSION citus");
      await admin.query("SELECT citus_set_coordinator_host($1, $2)", [postgres.socketDir, postgres.port]);
      await admin.query("SELECT citus_set_node_property($1, $2, 'shouldhaveshards', true)", [postgres.socketDir, postgres.port]);
    }
    for (const statement of [
      "CREATE EXTENSION pg_stat_statements",
      "CREATE ROLE platform_migrator LOGIN PASSWORD 'migrator'",
      "CREATE ROLE platform_app LOGIN PASSWORD 'app'",
      "GRANT CREATE ON DATABASE postgres TO platform_migrator",
      "CREATE ROLE platform_queue NOLOGIN",
      "GRANT platform_queue TO platform_app, platform_migrator",
      "GRANT CREATE ON DATABASE postgres TO platform_queue",
      "CREATE ROLE prometheus LOGIN PASSWORD 'prometheus' NOSUPERUSER NOBYPASSRLS",
      "GRANT pg_monitor TO prometheus",
    ]) await admin.query(statement);
    // Memorystore always runs with maxmemory (the instance's size); a bare redis-server has none (0).
    await redisCommand(redis.port, ["CONFIG", "SET", "maxmemory", String(64 * 1024 * 1024)]);
    const migratorUrl = postgres.urlFor("platform_migrator", "migrator");
    // The schema as `pnpm migrate` applies it, and the queue as `worker --install-queue` installs it.
    runToEnd("pnpm migrate", process.execPath, ["--import", "tsx", "src/migrate-cli.ts"], { cwd: CITUS_DIR, env: { DATABASE_URL: migratorUrl } });
    runToEnd("worker --install-queue", process.execPath, [...nodeScript(SERVICE_DIR, "worker"), "--install-queue"], { cwd: SERVICE_DIR, env: { DATABASE_URL: migratorUrl } });

    const appUrl = postgres.urlFor("platform_app", "app");
    const [servicePort, workerPort, pgExporterPort, redisExporterPort, nodeExporterPort, alertmanagerPort, alertmanagerClusterPort, prometheusPort, otlpPort, collectorMetricsPort, collectorHealthPort, cloudTracePort] =
      await Promise.all(Array.from({ length: 12 }, () => freePort()));

    // The collector, where the environment runs one, with its own configuration: only its listen addresses move to
    // loopback, and its exporter writes to the stand-in (plaintext, hence use_insecure) instead of Google.
    const collector = hasOtelCollector(config) && OTELCOL.path ? OTELCOL.path : undefined;
    const tracing: Record<string, string> = {};
    if (collector) {
      cloudTrace = await startFakeCloudTrace(cloudTracePort!);
      const c = otelCollectorConfig(config) as {
        extensions: { health_check: { endpoint: string } };
        receivers: { otlp: { protocols: { http: { endpoint: string } } } };
        exporters: { googlecloud: Record<string, unknown> };
        service: { telemetry: { metrics: { readers: { pull: { exporter: { prometheus: { host: string; port: number } } } }[] } } };
      };
      c.extensions.health_check.endpoint = `127.0.0.1:${collectorHealthPort}`;
      c.receivers.otlp.protocols.http.endpoint = `127.0.0.1:${otlpPort}`;
      c.exporters.googlecloud.trace = { endpoint: `127.0.0.1:${cloudTracePort}`, use_insecure: true };
      c.service.telemetry.metrics.readers[0]!.pull.exporter.prometheus = { host: "127.0.0.1", port: collectorMetricsPort! };
      const collectorConfig = join(dir, "otel-collector.yaml");
      writeFileSync(collectorConfig, stringify(c));
      processes.push(run("otel-collector", collector, [`--config=${collectorConfig}`]));
      tracing.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${otlpPort}`;
    }
    const service = run("tenant-service", process.execPath, nodeScript(SERVICE_DIR, "start"), {
      cwd: SERVICE_DIR,
      env: { DATABASE_URL: appUrl, REDIS_URL: redis.url, AUTH_JWT_SECRET: JWT.secret, AUTH_ISSUER: JWT.issuer, AUTH_AUDIENCE: JWT.audience, HOST: "127.0.0.1", PORT: String(servicePort), LOG_LEVEL: "warn", ...tracing },
    });
    processes.push(service);
    const worker = run("tenant-worker", process.execPath, nodeScript(SERVICE_DIR, "worker"), { cwd: SERVICE_DIR, env: { DATABASE_URL: appUrl, HEALTH_PORT: String(workerPort), LOG_LEVEL: "warn", ...tracing } });
    processes.push(worker);

    const queriesFile = join(dir, "queries.yaml");
    writeFileSync(queriesFile, postgresExporterQueries());
    // As the bootstrap runs it (infra/src/citus/bootstrap/lib/exporters.sh), but over TCP with a password: the VMs
    // use peer authentication on the socket, which needs an OS user of the same name.
    const pgExporter = run("postgres_exporter", BINARIES.postgresExporter, [`--web.listen-address=127.0.0.1:${pgExporterPort}`, `--extend.query-path=${queriesFile}`], {
      env: { DATA_SOURCE_NAME: `${postgres.urlFor("prometheus", "prometheus")}?sslmode=disable` },
    });
    processes.push(pgExporter);
    const redisExporter = run("redis_exporter", BINARIES.redisExporter, [`--redis.addr=redis://127.0.0.1:${redis.port}`, `--web.listen-address=127.0.0.1:${redisExporterPort}`]);
    processes.push(redisExporter);
    const nodeExporter = run("node_exporter", BINARIES.nodeExporter, [`--web.listen-address=127.0.0.1:${nodeExporterPort}`]);
    processes.push(nodeExporter);

    const alertmanagerConfig = join(dir, "alertmanager.yml");
    // Receivers are not what is tested here (amtool checks the real configuration): alerts only need to arrive.
    writeFileSync(alertmanagerConfig, stringify({ route: { receiver: "none", group_wait: "1s" }, receivers: [{ name: "none" }] }));
    const alertmanager = run("alertmanager", BINARIES.alertmanager, [
      `--config.file=${alertmanagerConfig}`,
      `--storage.path=${join(dir, "alertmanager-data")}`,
      `--web.listen-address=127.0.0.1:${alertmanagerPort}`,
      `--cluster.listen-address=127.0.0.1:${alertmanagerClusterPort}`,
    ]);
    processes.push(alertmanager);

    // The rendered configuration, its discovery swapped for the loopback targets: the same job names, the labels
    // the Citus jobs give their targets (citus_role, standby, citus_node) and their relabelling (instance without
    // the port), and for the pod jobs the labels their relabelling would give (pod, namespace).
    const rendered = parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: Record<string, unknown>[] };
    const loopback: Record<string, { target: string; labels?: Record<string, string> }> = {
      "tenant-service": { target: `127.0.0.1:${servicePort}`, labels: { pod: "tenant-service-0", namespace: config.kubernetes.tenantService.namespace } },
      "tenant-worker": { target: `127.0.0.1:${workerPort}`, labels: { pod: "tenant-worker-0", namespace: config.kubernetes.tenantWorker.namespace } },
      "citus-postgres": { target: `127.0.0.1:${pgExporterPort}` },
      "citus-node": { target: `127.0.0.1:${nodeExporterPort}` },
      redis: { target: `127.0.0.1:${redisExporterPort}` },
      prometheus: { target: `127.0.0.1:${prometheusPort}` },
      alertmanager: { target: `127.0.0.1:${alertmanagerPort}` },
      ...(collector ? { "otel-collector": { target: `127.0.0.1:${collectorMetricsPort}`, labels: { pod: "otel-collector-0", namespace: config.kubernetes.otelCollector.namespace } } } : {}),
    };
    const scrapeConfigs = rendered.scrape_configs.flatMap((job) => {
      const name = String(job.job_name);
      const here = loopback[name];
      if (!here) {
        if (!JOBS_NOT_RUN[name]) throw new Error(`the rendered prometheus.yml has a job ${name} this test neither runs nor lists in JOBS_NOT_RUN`);
        return [];
      }
      const staticConfigs = job.static_configs as { labels?: Record<string, string> }[] | undefined;
      const isPodJob = job.kubernetes_sd_configs !== undefined;
      return [
        {
          job_name: name,
          // The Citus jobs: the coordinator's target labels (the first target), on the loopback exporter.
          static_configs: [{ targets: [here.target], labels: { ...(staticConfigs?.[0]?.labels ?? {}), ...here.labels } }],
          ...(isPodJob ? {} : job.relabel_configs ? { relabel_configs: job.relabel_configs } : {}),
          ...(job.metrics_path ? { metrics_path: job.metrics_path } : {}),
        },
      ];
    });
    const rulesFile = join(dir, "platform.rules.yml");
    writeFileSync(rulesFile, stringify({ groups: ruleGroups(config) }, { lineWidth: 0 }));
    const prometheusConfig = join(dir, "prometheus.yml");
    writeFileSync(
      prometheusConfig,
      stringify(
        {
          global: { scrape_interval: `${INTERVAL_SECONDS}s`, scrape_timeout: `${INTERVAL_SECONDS}s`, evaluation_interval: `${INTERVAL_SECONDS}s`, external_labels: { environment: config.name } },
          rule_files: [rulesFile],
          alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${alertmanagerPort}`] }] }] },
          scrape_configs: scrapeConfigs,
        },
        { lineWidth: 0 },
      ),
    );
    const prometheus = run("prometheus", BINARIES.prometheus, [
      `--config.file=${prometheusConfig}`,
      `--storage.tsdb.path=${join(dir, "prometheus-data")}`,
      `--web.listen-address=127.0.0.1:${prometheusPort}`,
      // Alerts leave as soon as they fire, not on the next minute's resend.
      "--rules.alert.resend-delay=1s",
    ]);
    processes.push(prometheus);

    const serviceUrl = `http://127.0.0.1:${servicePort}`;
    await Promise.all([
      waitFor(service, `${serviceUrl}/health`),
      waitFor(worker, `http://127.0.0.1:${workerPort}/metrics`),
      waitFor(pgExporter, `http://127.0.0.1:${pgExporterPort}/metrics`),
      waitFor(redisExporter, `http://127.0.0.1:${redisExporterPort}/metrics`),
      waitFor(nodeExporter, `http://127.0.0.1:${nodeExporterPort}/metrics`),
      waitFor(alertmanager, `http://127.0.0.1:${alertmanagerPort}/-/ready`),
      waitFor(prometheus, `http://127.0.0.1:${prometheusPort}/-/ready`),
      ...(collector ? [waitFor(processes.find((p) => p.name === "otel-collector")!, `http://127.0.0.1:${collectorHealthPort}/`)] : []),
    ]);
    const pgServer = postgres;
    return {
      prometheusUrl: `http://127.0.0.1:${prometheusPort}`,
      alertmanagerUrl: `http://127.0.0.1:${alertmanagerPort}`,
      serviceUrl,
      postgres,
      redis,
      admin,
      jobs: scrapeConfigs.map((j) => j.job_name),
      rulesFile,
      processes,
      ...(cloudTrace ? { cloudTrace } : {}),
      stopPostgres() {
        postgresStopped = true;
        pgServer.stop();
      },
      async stopRedis() {
        redisStopped = true;
        await redis!.stop();
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
