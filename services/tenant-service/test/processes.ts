/**
 * The service and the worker as real processes, started by the package scripts' own command lines, and an OTLP/HTTP
 * receiver that keeps what their real exporters send: what a test of tracing needs, since the instrumentation of
 * pg is only right if it is loaded the way the processes load it (src/tracing.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import { waitFor } from "@platform/testing";

const SERVICE_DIR = fileURLToPath(new URL("..", import.meta.url));

export interface RunningProcess {
  readonly child: ChildProcess;
  /** Lines written to stdout so far (pino's JSON). */
  readonly stdout: string[];
  readonly stderr: string[];
  /** The exit code, once it has exited by itself. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code: the processes flush their spans on the way out. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  /** Where the process runs. @default the package's directory */
  readonly cwd?: string;
  /** A command the process is started under, e.g. `ip netns exec <ns>` (which execs it: the pid is still node's). */
  readonly prefix?: readonly string[];
}

/** Runs `pnpm <script>`'s command (package.json) directly, so that SIGTERM reaches the process itself. */
export function startScript(script: "start" | "worker", env: Record<string, string>, options: SpawnOptions = {}): RunningProcess {
  const scripts = (JSON.parse(readFileSync(`${SERVICE_DIR}/package.json`, "utf8")) as { scripts: Record<string, string> }).scripts;
  const [command, ...args] = scripts[script]!.split(" ");
  if (command !== "node") throw new Error(`package.json script ${script} no longer starts with node: ${scripts[script]}`);
  return startNode(args, env, options);
}

/** `node <args>` with only the given environment (and PATH, HOME, TMPDIR), its output kept line by line. */
export function startNode(args: readonly string[], env: Record<string, string>, options: SpawnOptions = {}): RunningProcess {
  const [command, ...prefixArgs] = [...(options.prefix ?? []), process.execPath];
  const child = spawn(command!, [...prefixArgs, ...args], {
    cwd: options.cwd ?? SERVICE_DIR,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const lines = (into: string[]) => {
    let partial = "";
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split("\n");
      partial = parts.pop()!;
      into.push(...parts.filter((line) => line.length > 0));
    };
  };
  child.stdout!.on("data", lines(stdout));
  child.stderr!.on("data", lines(stderr));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    stdout,
    stderr,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Polls `url` until it answers 200; fails with the process's stderr if it exits first. */
export async function waitUntilServing(running: RunningProcess, url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `${url} to answer`,
    async () => {
      if (running.child.exitCode !== null) throw new Error(`exited with ${running.child.exitCode}:\n${running.stderr.join("\n")}\n${running.stdout.join("\n")}`);
      return fetch(url).then((r) => r.ok, () => false);
    },
    { timeoutMs, intervalMs: 200, detail: () => `\n${running.stderr.join("\n")}` },
  );
}

export interface CapturedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP's enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly links: { traceId: string; spanId: string }[];
}

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  links?: { traceId: string; spanId: string }[];
}
interface OtlpRequest {
  resourceSpans: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans: { spans?: OtlpSpan[] }[] }[];
}

const attributes = (list: OtlpAttribute[] = []): Record<string, unknown> =>
  Object.fromEntries(list.map(({ key, value }) => [key, value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue]));

export interface OtlpReceiver {
  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: CapturedSpan[];
  close(): Promise<void>;
}

/** Receives OTLP/HTTP JSON (what @opentelemetry/exporter-trace-otlp-http sends) on POST /v1/traces. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: CapturedSpan[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (request.method !== "POST" || request.url !== "/v1/traces" || !request.headers["content-type"]?.includes("json")) {
        response.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpRequest;
      for (const resourceSpans of body.resourceSpans) {
        const service = String(attributes(resourceSpans.resource?.attributes)["service.name"]);
        for (const scope of resourceSpans.scopeSpans) {
          for (const s of scope.spans ?? []) {
            spans.push({ service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? "", name: s.name, kind: s.kind, attributes: attributes(s.attributes), links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })) });
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("no address");
  return { endpoint: `http://127.0.0.1:${address.port}`, spans, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Whether `span` is `ancestor` or below it, following parent ids among `spans`. */
export function descendsFrom(span: CapturedSpan, ancestor: CapturedSpan, spans: readonly CapturedSpan[]): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let current: CapturedSpan | undefined = span; current; current = byId.get(current.parentSpanId)) {
    if (current.spanId === ancestor.spanId) return true;
  }
  return false;
}
