// The benchmark's wrk driver against a real HTTP server: it must send exactly the requests it is given (method,
// path, headers, body), rotate through them, and report what came back, or the benchmark measures something else.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { load, wrkInstalled, type Generator, type LoadRequest } from "../bench/load.js";

const hasWrk = await wrkInstalled();
if (!hasWrk) console.warn("skipping the benchmark's wrk driver tests: wrk not found (apt-get install wrk)");
// autocannon is the fallback when wrk is missing, so it must send the same requests; it needs nothing installed.
const generators: Generator[] = hasWrk ? ["wrk", "autocannon"] : ["autocannon"];

interface Seen { method: string; url: string; authorization?: string; body: string }

describe.each(generators)("bench load driver: %s", (generator) => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(status: (req: IncomingMessage) => number, seen: Seen[]): Promise<string> {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
        res.writeHead(status(req), { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  }

  it("sends every request as given, in rotation, and counts the answers", async () => {
    const seen: Seen[] = [];
    const url = await serve(() => 200, seen);
    const requests: LoadRequest[] = [
      { method: "GET", path: "/v1/items/a", headers: { authorization: "Bearer one" } },
      { method: "POST", path: "/v1/items", headers: { authorization: "Bearer two", "content-type": "application/json" }, body: '{"title":"t \\"q\\""}' },
    ];
    const result = await load(generator, { url, connections: 2, duration: 1, requests });
    expect(result.total).toBeGreaterThan(10);
    expect(result.errors).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.rps).toBeGreaterThan(0);
    expect(result.p99).toBeGreaterThanOrEqual(result.p50);
    const gets = seen.filter((s) => s.method === "GET");
    const posts = seen.filter((s) => s.method === "POST");
    expect(gets.every((s) => s.url === "/v1/items/a" && s.authorization === "Bearer one" && s.body === "")).toBe(true);
    expect(posts.every((s) => s.url === "/v1/items" && s.authorization === "Bearer two" && s.body === '{"title":"t \\"q\\""}')).toBe(true);
    // Rotation: both requests are sent, in about equal numbers.
    expect(Math.abs(gets.length - posts.length)).toBeLessThanOrEqual(2 + seen.length * 0.1);
  });

  it("reports non-2xx answers, so the benchmark can refuse a run where the service was failing", async () => {
    const url = await serve((req) => (req.url === "/bad" ? 500 : 200), []);
    const result = await load(generator, {
      url,
      connections: 2,
      duration: 1,
      requests: [
        { method: "GET", path: "/ok", headers: {} },
        { method: "GET", path: "/bad", headers: {} },
      ],
    });
    expect(result.non2xx).toBeGreaterThan(0);
    expect(result.non2xx).toBeLessThan(result.total);
  });
});

describe.skipIf(!hasWrk)("bench load driver: wrk's Lua", () => {
  it("refuses a request it cannot pass to wrk's Lua intact", async () => {
    await expect(load("wrk", { url: "http://127.0.0.1:9", connections: 1, duration: 1, requests: [{ method: "GET", path: "/é", headers: {} }] })).rejects.toThrow(/printable ASCII/);
  });
});
