// The load generator of bench/tenant.ts. It runs outside the service's process so it does not share its event loop,
// but on this machine it shares the cores, so the generator's own CPU is taken from the service under test: wrk
// (C, one epoll thread) when it is installed, autocannon (Node.js) otherwise. On the 2-core build machine autocannon
// took 20 to 35% of a core, and the service read about 20% slower under it than under wrk.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export type LoadRequest = { method: string; path: string; headers: Record<string, string>; body?: string };
export type LoadResult = { rps: number; p50: number; p99: number; errors: number; non2xx: number; total: number };
export type LoadOptions = { url: string; connections: number; duration: number; requests: LoadRequest[] };
export type Generator = "wrk" | "autocannon";

const run = promisify(execFile);

export async function wrkInstalled(): Promise<boolean> {
  try {
    await run("wrk", ["--version"]);
    return true;
  } catch (error) {
    // wrk prints its usage and exits 1 for --version; only a missing binary is "not installed".
    return (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
}

export async function load(generator: Generator, options: LoadOptions): Promise<LoadResult> {
  return generator === "wrk" ? wrk(options) : autocannonLoad(options);
}

// A JSON string literal of printable ASCII is also a valid Lua string literal; wrk's LuaJIT has no \u escapes.
function lua(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`wrk requests must be printable ASCII; got ${JSON.stringify(value)}`);
  return JSON.stringify(value);
}

// The requests are formatted once, in init, so the generator does no per-request work beyond picking the next one.
function wrkScript(requests: LoadRequest[]): string {
  const entries = requests.map((r) => {
    const headers = Object.entries(r.headers).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`).join(", ");
    return `  wrk.format(${lua(r.method)}, ${lua(r.path)}, { ${headers} }${r.body === undefined ? "" : `, ${lua(r.body)}`}),`;
  });
  return [
    "local formatted",
    "local next = 0",
    "function init(args)",
    "  formatted = {",
    ...entries,
    "  }",
    "end",
    "function request()",
    "  next = next % #formatted + 1",
    "  return formatted[next]",
    "end",
    "function done(summary, latency, requests)",
    "  local e = summary.errors",
    '  io.write(string.format("\\nLOAD_RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"socket_errors\\":%d,\\"status_errors\\":%d}\\n",',
    "    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))",
    "end",
    "",
  ].join("\n");
}

async function wrk({ url, connections, duration, requests }: LoadOptions): Promise<LoadResult> {
  const dir = await mkdtemp(join(tmpdir(), "bench-wrk-"));
  try {
    const script = join(dir, "requests.lua");
    await writeFile(script, wrkScript(requests));
    const { stdout } = await run("wrk", ["-t1", `-c${connections}`, `-d${duration}s`, "--timeout", "10s", "-s", script, url], { maxBuffer: 10 * 1024 * 1024 });
    const line = stdout.split("\n").find((l) => l.startsWith("LOAD_RESULT "));
    if (!line) throw new Error(`wrk printed no result line; its output was:\n${stdout}`);
    const r = JSON.parse(line.slice("LOAD_RESULT ".length)) as { requests: number; duration_us: number; p50_us: number; p99_us: number; socket_errors: number; status_errors: number };
    // wrk counts a status of 400 or above as an error; 3xx would pass here, and the service answers none.
    return { rps: r.requests / (r.duration_us / 1e6), p50: r.p50_us / 1000, p99: r.p99_us / 1000, errors: r.socket_errors, non2xx: r.status_errors, total: r.requests };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const here = dirname(fileURLToPath(import.meta.url));

async function autocannonLoad(options: LoadOptions): Promise<LoadResult> {
  const { stdout } = await run(join(here, "..", "node_modules", ".bin", "tsx"), [join(here, "autocannon.ts"), JSON.stringify(options)], {
    encoding: "utf8",
    maxBuffer: 10 * 1024 * 1024,
  });
  return JSON.parse(stdout) as LoadResult;
}
