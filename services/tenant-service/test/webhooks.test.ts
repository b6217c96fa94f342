/**
 * Webhooks against a real PostgreSQL 15 and Redis, the real worker process (its package script), and real HTTPS
 * receivers on 127.0.0.1 with a certificate made here by openssl, which the worker trusts through WEBHOOK_CA_FILE.
 * The stack and the worker allow 127.0.0.1/32 only (WEBHOOK_ALLOWED_PRIVATE_CIDRS); an app built without it checks
 * the refusals of loopback too.
 */
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "graphile-worker";
import pg from "pg";
import { freePort, waitFor } from "@platform/testing";
import { citusUrlAs, prepareCitusDatabase } from "@platform/citus/testing";
import { buildApp } from "../src/app.js";
import { loadServiceConfig } from "../src/config.js";
import { createPostgresDatabase } from "../src/db/postgres.js";
import { installQueue } from "../src/worker/queue.js";
import { webhookTaskList } from "../src/worker/webhooks.js";
import { AUDIENCE, ISSUER, SECRET, createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";
import { startScript, waitUntilServing, type RunningProcess } from "./processes.js";

if (unavailable) console.warn(`skipping webhook tests: ${unavailable}`);
const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping the webhook tests on Citus: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");

interface Received {
  readonly at: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** Status codes to answer, in order; then 200. "hang": never answer. */
  answers: (number | "hang")[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(unavailable !== undefined)("webhooks on PostgreSQL 15 with the real worker", () => {
  let stack: Stack;
  let dir: string;
  let tls: { key: string; cert: string; caFile: string };
  let platform: string;
  let a: TenantFixture;
  let b: TenantFixture;
  const receivers: Receiver[] = [];
  const hanging: { server: TcpServer; sockets: Set<Duplex> }[] = [];

  async function receiver(answers: (number | "hang")[] = []): Promise<Receiver> {
    const received: Received[] = [];
    const state = { answers };
    const sockets = new Set<Duplex>();
    const server = createHttpsServer({ key: tls.key, cert: tls.cert }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        received.push({ at: Date.now(), headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
        const answer = state.answers.shift() ?? 200;
        if (answer === "hang") return; // the connection stays open, unanswered
        response.writeHead(answer, { "content-type": "text/plain" }).end(answer === 200 ? "ok" : "nope");
      });
    });
    server.on("connection", (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const r: Receiver = {
      url: `https://127.0.0.1:${port}/hook`,
      received,
      get answers() {
        return state.answers;
      },
      set answers(v) {
        state.answers = v;
      },
      close: () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
    receivers.push(r);
    return r;
  }

  const subscribe = async (t: TenantFixture, url: string, events: string[]) => {
    const res = await stack.request({ method: "POST", url: `/v1/tenants/${t.id}/webhooks`, token: t.admin, payload: { url, events } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; secret: string; url: string };
  };
  const deliveries = async (t: TenantFixture, webhookId: string) => {
    const res = await stack.request({ method: "GET", url: `/v1/tenants/${t.id}/webhooks/${webhookId}/deliveries?limit=100`, token: t.admin });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as { id: string; status: string; attempts: number; responseStatus: number | null; lastError: string | null; attemptLog: { at: string; responseStatus: number | null; error: string | null }[] }[];
  };
  const newItem = async (t: TenantFixture, title: string) => {
    const res = await stack.request({ method: "POST", url: "/v1/items", token: t.member, payload: { ownerId: t.userId, title } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "webhooks-test-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=receiver.test",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:receiver.test",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    tls = { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8"), caFile: join(dir, "cert.pem") };
    stack = await startStack({ env: { WEBHOOK_ALLOWED_PRIVATE_CIDRS: "127.0.0.1/32", TENANT_ERASURE_GRACE_SECONDS: "0" } });
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
    platform = await token({ scope: "platform:admin" });
    a = await createTenant(stack, "hooks-a", platform);
    b = await createTenant(stack, "hooks-b", platform);
  }, 120_000);
  afterAll(async () => {
    for (const r of receivers) await r.close();
    for (const h of hanging) {
      for (const s of h.sockets) s.destroy();
      h.server.close();
    }
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("subscribing", () => {
    it("refuses targets that are not HTTPS or not public, at subscription, with what was wrong: nothing stored", async () => {
      // The same database, with no private range allowed: the production default.
      const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
      const strict = await buildApp({ config: { ...stack.config, WEBHOOK_ALLOWED_PRIVATE_CIDRS: "" }, db });
      try {
        const refused: [string, RegExp][] = [
          ["http://93.184.215.14/hook", /must be an https:\/\/ URL/],
          ["https://10.1.2.3/hook", /private address/],
          ["https://172.16.0.1/hook", /private address/],
          ["https://192.168.1.1/hook", /private address/],
          ["https://100.64.0.1/hook", /carrierGradeNat/],
          ["https://127.0.0.1/hook", /loopback address/],
          ["https://127.1.2.3:8443/hook", /loopback address/],
          ["https://2130706433/hook", /loopback address/], // 127.0.0.1 as one number: the URL parser makes it an address
          ["https://169.254.169.254/latest/meta-data", /linkLocal address/],
          ["https://[::1]/hook", /loopback address/],
          ["https://[fe80::1]/hook", /linkLocal address/],
          ["https://[fd00::1]/hook", /uniqueLocal address/],
          ["https://[::ffff:127.0.0.1]/hook", /loopback address/],
          ["https://[::ffff:a01:203]/hook", /private address/],
          ["https://0.0.0.0/hook", /unspecified address/],
          ["https://localhost/hook", /host localhost is not a public address/],
          ["https://user:pw@93.184.215.14/hook", /credentials/],
          ["not a url", /is not a URL/],
        ];
        for (const [url, message] of refused) {
          const res = await strict.inject({ method: "POST", url: `/v1/tenants/${a.id}/webhooks`, headers: { authorization: `Bearer ${a.admin}` }, payload: { url, events: ["item.created"] } });
          expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
          expect(res.json().error.code).toBe("validation_failed");
          expect(res.json().error.message, url).toMatch(message);
        }
        // The stack allows 127.0.0.1/32 only: the rest of loopback, and every other range, stay refused.
        for (const url of ["https://127.0.0.2/hook", "https://[::1]/hook", "https://169.254.169.254/"]) {
          const res = await stack.request({ method: "POST", url: `/v1/tenants/${a.id}/webhooks`, token: a.admin, payload: { url, events: ["item.created"] } });
          expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
        }
      } finally {
        await strict.close();
        await db.close();
      }
      expect((await stack.admin.query("SELECT count(*)::int AS n FROM platform.webhooks")).rows[0].n).toBe(0);
    });

    it("validates the body, and leaves webhooks to tenant administrators", async () => {
      const bad = await stack.request({ method: "POST", url: "/v1/webhooks", token: a.admin, payload: { url: "https://127.0.0.1/", events: ["item.exploded"] } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.message).toMatch(/item\.created/);
      const none = await stack.request({ method: "POST", url: "/v1/webhooks", token: a.admin, payload: { url: "https://127.0.0.1/", events: [] } });
      expect(none.statusCode).toBe(400);
      for (const [method, url] of [["GET", "/v1/webhooks"], ["POST", "/v1/webhooks"]] as const) {
        const res = await stack.request({ method, url, token: a.member, payload: method === "POST" ? { url: "https://127.0.0.1/", events: ["item.created"] } : undefined });
        expect(res.statusCode, `${method} ${url}`).toBe(403);
      }
    });

    it("returns the secret once, at creation; lists, reads and deletes webhooks (their log with them)", async () => {
      const r = await receiver();
      const created = await subscribe(a, r.url, ["user.deleted"]);
      expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      const list = await stack.request({ method: "GET", url: "/v1/webhooks", token: a.admin });
      expect(list.statusCode).toBe(200);
      expect(list.json().data.map((w: { id: string }) => w.id)).toEqual([created.id]);
      expect(list.body).not.toContain(created.secret);
      const one = await stack.request({ method: "GET", url: `/v1/webhooks/${created.id}`, token: a.admin });
      expect(one.statusCode).toBe(200);
      expect(one.json()).not.toHaveProperty("secret");
      expect(one.json()).toMatchObject({ url: r.url, events: ["user.deleted"], consecutiveFailures: 0, pausedUntil: null });
      // Nor in the audit log.
      const audit = await stack.request({ method: "GET", url: "/v1/audit-log", token: a.admin });
      expect(audit.body).toContain("webhook.create");
      expect(audit.body).not.toContain(created.secret);

      const del = await stack.request({ method: "DELETE", url: `/v1/webhooks/${created.id}`, token: a.admin });
      expect(del.statusCode).toBe(204);
      expect((await stack.request({ method: "GET", url: `/v1/webhooks/${created.id}`, token: a.admin })).statusCode).toBe(404);
      expect((await stack.request({ method: "GET", url: `/v1/webhooks/${created.id}/deliveries`, token: a.admin })).statusCode).toBe(404);
    });

    it("writes nothing for a tenant without webhooks, or for an event no webhook takes", async () => {
      const jobs = async () => (await stack.admin.query("SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'webhook.deliver'")).rows[0].n as number;
      const before = await jobs();
      await newItem(b, "no webhooks here");
      const r = await receiver();
      const hook = await subscribe(a, r.url, ["user.deleted"]);
      await newItem(a, "nobody listens to item.created");
      expect((await stack.admin.query("SELECT count(*)::int AS n FROM platform.webhook_deliveries")).rows[0].n).toBe(0);
      expect(await jobs()).toBe(before);
      await stack.request({ method: "DELETE", url: `/v1/webhooks/${hook.id}`, token: a.admin });
    });
  });

  it("checks the address again at delivery, on the address it connects to (a name rebound to the metadata server is refused)", async () => {
    // Only DNS's answer is the test's: the worker's task connects, or refuses, for real.
    const answers = new Map<string, string>([["receiver.test", "127.0.0.1"]]);
    const appPool = new pg.Pool({ connectionString: stack.config.DATABASE_URL, max: 3 });
    const db = createPostgresDatabase({ url: stack.config.DATABASE_URL!, poolSize: 2 });
    const tasks = () =>
      webhookTaskList({
        db, timeoutMs: 2_000, maxAttempts: 3, retryBaseMs: 60_000, allowedPrivateCidrs: "127.0.0.1/32", caFile: tls.caFile,
        resolve: async (host) => [answers.get(host) ?? "203.0.113.1"],
      });
    const taskList = tasks();
    try {
      const r = await receiver();
      const port = new URL(r.url).port;
      const hook = await subscribe(a, `https://127.0.0.1:${port}/hook`, ["item.created"]);
      // As a name passing the subscription check would be stored, then rebound: written as the migration role would.
      await stack.admin.query("UPDATE platform.webhooks SET url = $1 WHERE id = $2", [`https://receiver.test:${port}/hook`, hook.id]);

      await newItem(a, "to the name, resolved to 127.0.0.1");
      await runOnce({ pgPool: appPool, taskList });
      expect(r.received.length).toBe(1);
      expect((await deliveries(a, hook.id))[0]).toMatchObject({ status: "delivered", attempts: 1, responseStatus: 200 });

      // A later connection (a new worker; this one would reuse its socket to the address it checked) resolves anew.
      answers.set("receiver.test", "169.254.169.254");
      await newItem(a, "to the name, rebound");
      await runOnce({ pgPool: appPool, taskList: tasks() });
      expect(r.received.length).toBe(1);
      const [rebound] = await deliveries(a, hook.id);
      expect(rebound).toMatchObject({ status: "pending", attempts: 1, responseStatus: null });
      expect(rebound!.lastError).toMatch(/refused to connect to receiver\.test: 169\.254\.169\.254 is a linkLocal address/);

      // An address written into the URL is judged without a lookup.
      await stack.admin.query("UPDATE platform.webhooks SET url = 'https://[::1]:1/hook', paused_until = NULL WHERE id = $1", [hook.id]);
      await newItem(a, "to ::1");
      await runOnce({ pgPool: appPool, taskList: tasks() });
      const [literal] = await deliveries(a, hook.id);
      expect(literal!.lastError).toMatch(/::1 is a loopback address/);
      await stack.request({ method: "DELETE", url: `/v1/webhooks/${hook.id}`, token: a.admin });
      await stack.admin.query("DELETE FROM graphile_worker._private_jobs WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'webhook.deliver')");
    } finally {
      await appPool.end();
      await db.close();
    }
  });

  describe("delivered by the worker process", () => {
    let worker: RunningProcess;
    let healthPort: number;
    const TIMEOUT_MS = 3_000;
    // graphile-worker looks for jobs that come due every 2 s (its pollInterval): a retry starts up to 2 s late.
    const RETRY_BASE_MS = 1_000;

    beforeAll(async () => {
      healthPort = await freePort();
      worker = startScript("worker", {
        DATABASE_URL: stack.config.DATABASE_URL!,
        HEALTH_PORT: String(healthPort),
        LOG_LEVEL: "warn",
        WORKER_CONCURRENCY: "2",
        WEBHOOK_CONCURRENCY: "4",
        WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
        WEBHOOK_RETRY_BASE_MS: String(RETRY_BASE_MS),
        WEBHOOK_MAX_ATTEMPTS: "4",
        WEBHOOK_ALLOWED_PRIVATE_CIDRS: "127.0.0.1/32",
        WEBHOOK_CA_FILE: tls.caFile,
      });
      await waitUntilServing(worker, `http://127.0.0.1:${healthPort}/readyz`);
    }, 90_000);
    afterAll(async () => {
      const code = await worker?.stop();
      expect(code, [...(worker?.stdout ?? []), ...(worker?.stderr ?? [])].join("\n")).toBe(0);
    });

    it("delivers each event signed with the webhook's secret over timestamp.body, and logs the delivery", async () => {
      const r = await receiver();
      const hook = await subscribe(a, r.url, ["item.created", "item.updated", "item.deleted", "user.created", "user.updated", "user.deleted"]);
      const itemId = await newItem(a, "signed");
      expect((await stack.request({ method: "PATCH", url: `/v1/items/${itemId}`, token: a.member, payload: { title: "signed, changed" } })).statusCode).toBe(200);
      expect((await stack.request({ method: "DELETE", url: `/v1/items/${itemId}`, token: a.member })).statusCode).toBe(204);
      const user = await stack.request({ method: "POST", url: "/v1/users", token: a.admin, payload: { email: "hooked@hooks-a.test" } });
      expect(user.statusCode).toBe(201);
      await waitFor("4 deliveries", async () => (r.received.length >= 4 ? true : undefined));
      await sleep(300);
      expect(r.received.length).toBe(4);

      const events = r.received.map((m) => JSON.parse(m.body) as { id: string; type: string; tenantId: string; data: { id: string; title?: string } });
      expect(events.map((e) => e.type).sort()).toEqual(["item.created", "item.deleted", "item.updated", "user.created"]);
      expect(events.find((e) => e.type === "item.updated")!.data).toMatchObject({ id: itemId, title: "signed, changed" });
      expect(events.find((e) => e.type === "item.deleted")!.data).toEqual({ id: itemId });
      expect(events.find((e) => e.type === "user.created")!.data.id).toBe(user.json().id);
      for (const [i, m] of r.received.entries()) {
        expect(events[i]!.tenantId).toBe(a.id);
        expect(m.headers["content-type"]).toBe("application/json");
        expect(m.headers["webhook-event"]).toBe(events[i]!.type);
        const timestamp = Number(m.headers["webhook-timestamp"]);
        expect(Math.abs(Date.now() / 1000 - timestamp)).toBeLessThan(30);
        // What a receiver computes, with nothing of the service's code.
        const expected = `v1=${createHmac("sha256", hook.secret).update(`${timestamp}.${m.body}`).digest("hex")}`;
        expect(m.headers["webhook-signature"]).toBe(expected);
        // Another secret, or another body, does not verify.
        expect(createHmac("sha256", "whsec_other").update(`${timestamp}.${m.body}`).digest("hex")).not.toBe(expected.slice(3));
      }
      const log = await deliveries(a, hook.id);
      expect(log.length).toBe(4);
      for (const d of log) expect(d).toMatchObject({ status: "delivered", attempts: 1, responseStatus: 200, lastError: null });
      expect(new Set(r.received.map((m) => m.headers["webhook-id"]))).toEqual(new Set(log.map((d) => d.id)));
      // Paged like the other lists.
      const first = await stack.request({ method: "GET", url: `/v1/webhooks/${hook.id}/deliveries?limit=3`, token: a.admin });
      const second = await stack.request({ method: "GET", url: `/v1/webhooks/${hook.id}/deliveries?limit=3&cursor=${first.json().nextCursor}`, token: a.admin });
      expect([...first.json().data, ...second.json().data].map((d: { id: string }) => d.id)).toEqual(log.map((d) => d.id));
      expect(second.json().nextCursor).toBeNull();
      await stack.request({ method: "DELETE", url: `/v1/webhooks/${hook.id}`, token: a.admin });
    });

    it("retries after 500s with growing delays, then succeeds; gives up after WEBHOOK_MAX_ATTEMPTS", async () => {
      const flaky = await receiver([500, 503]);
      const down = await receiver([500, 500, 500, 500, 500]);
      const ok = await subscribe(a, flaky.url, ["item.created"]);
      const failing = await subscribe(a, down.url, ["item.created"]);
      await newItem(a, "retried");
      const [delivered] = await waitFor("the flaky receiver's success", async () => {
        const log = await deliveries(a, ok.id);
        return log[0]?.status === "delivered" ? log : undefined;
      });
      expect(delivered!.attempts).toBe(3);
      expect(delivered!.attemptLog.map((x) => x.responseStatus)).toEqual([500, 503, 200]);
      expect(flaky.received.map((m) => m.headers["webhook-id"])).toEqual([delivered!.id, delivered!.id, delivered!.id]);
      // Each attempt signed anew (a fresh timestamp), the body the same.
      expect(new Set(flaky.received.map((m) => m.body)).size).toBe(1);
      const gaps = flaky.received.slice(1).map((m, i) => m.at - flaky.received[i]!.at);
      console.log(`retry gaps after 500s: ${gaps.join(" ms, ")} ms (base ${RETRY_BASE_MS} ms, doubling)`);
      expect(gaps[0]!).toBeGreaterThanOrEqual(RETRY_BASE_MS * 0.9);
      expect(gaps[1]!).toBeGreaterThanOrEqual(2 * RETRY_BASE_MS * 0.9);

      const [failed] = await waitFor("the failing receiver's last attempt", async () => {
        const log = await deliveries(a, failing.id);
        return log[0]?.status === "failed" ? log : undefined;
      }, { timeoutMs: 60_000 });
      expect(failed).toMatchObject({ attempts: 4, responseStatus: 500, lastError: "answered 500", nextAttemptAt: null });
      expect(down.received.length).toBe(4);
      const webhook = (await stack.request({ method: "GET", url: `/v1/webhooks/${failing.id}`, token: a.admin })).json();
      expect(webhook.consecutiveFailures).toBe(4);
      const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
      expect(metrics).toMatch(/webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
      expect(metrics).toMatch(/webhook_deliveries_total\{outcome="retry"\} [1-9]/);
      expect(metrics).toMatch(/webhook_deliveries_total\{outcome="failed"\} [1-9]/);
      for (const h of [ok, failing]) await stack.request({ method: "DELETE", url: `/v1/webhooks/${h.id}`, token: a.admin });
    }, 90_000);

    it("does not follow a redirect", async () => {
      const r = await receiver([302]);
      const hook = await subscribe(a, r.url, ["item.created"]);
      await newItem(a, "redirected");
      const [d] = await waitFor("the attempt", async () => {
        const log = await deliveries(a, hook.id);
        return log[0]?.attempts ? log : undefined;
      });
      expect(d).toMatchObject({ status: "pending", responseStatus: 302 });
      expect(d!.lastError).toMatch(/redirects are not followed/);
      await stack.request({ method: "DELETE", url: `/v1/webhooks/${hook.id}`, token: a.admin });
    });

    it("keeps delivering another tenant's events on time while one tenant's receivers hang or are dead", async () => {
      // Tenant A: two webhooks on a receiver that never answers, one on a port that accepts and then says nothing
      // (not even TLS), each with a backlog.
      const hang = await receiver(Array.from({ length: 200 }, () => "hang" as const));
      const silentSockets = new Set<Duplex>();
      const silent: TcpServer = createTcpServer((s) => {
        silentSockets.add(s);
        s.on("close", () => silentSockets.delete(s));
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      hanging.push({ server: silent, sockets: silentSockets });
      const deadUrl = `https://127.0.0.1:${(silent.address() as { port: number }).port}/hook`;
      const stuck = [await subscribe(a, hang.url, ["item.created"]), await subscribe(a, `${hang.url}2`, ["item.created"]), await subscribe(a, deadUrl, ["item.created"])];
      for (let i = 0; i < 10; i++) await newItem(a, `backlog ${i}`);

      // Tenant B's receiver answers at once; its events start once A has an attempt in flight on each of its webhooks.
      await waitFor("A's three attempts in flight", async () => (hang.received.length >= 2 && silentSockets.size >= 1 ? true : undefined));
      const fast = await receiver();
      const hook = await subscribe(b, fast.url, ["item.created"]);
      const latencies: number[] = [];
      for (let i = 0; i < 8; i++) {
        const sent = Date.now();
        const count = fast.received.length;
        await newItem(b, `on time ${i}`);
        await waitFor(`B's delivery ${i}`, async () => (fast.received.length > count ? true : undefined), { timeoutMs: 20_000 });
        latencies.push(fast.received.at(-1)!.at - sent);
        await sleep(250);
      }
      const attemptsA = (await stack.admin.query("SELECT coalesce(sum(attempts), 0)::int AS n FROM platform.webhook_deliveries WHERE tenant_id = $1 AND webhook_id = ANY($2::uuid[])", [a.id, stuck.map((s) => s.id)])).rows[0].n;
      console.log(`B's deliveries while A's 3 receivers hang (30 queued, ${TIMEOUT_MS} ms timeout, 4 slots): ${latencies.join(", ")} ms; A's attempts finished meanwhile: ${attemptsA}`);
      // Generous: one timeout of A's plus graphile-worker's poll interval (2 s: a worker that missed the new job's
      // notification finds it then), plus as much again for a loaded CI machine (B's took 9-50 ms there). Were A's
      // attempts holding B's slots, B would wait behind 30 of them (4 slots, 3 s each: over 20 s).
      expect(Math.max(...latencies)).toBeLessThan(2 * (TIMEOUT_MS + 2_000));
      const delivered = (await stack.admin.query("SELECT count(*)::int AS n FROM platform.webhook_deliveries WHERE tenant_id = $1 AND webhook_id = ANY($2::uuid[]) AND status = 'delivered'", [a.id, stuck.map((s) => s.id)])).rows[0].n;
      expect(delivered).toBe(0);
      for (const s of stuck) await stack.request({ method: "DELETE", url: `/v1/webhooks/${s.id}`, token: a.admin });
      await stack.request({ method: "DELETE", url: `/v1/webhooks/${hook.id}`, token: b.admin });
    }, 90_000);

    it("erases a tenant's webhooks, deliveries and queued delivery jobs with the tenant", async () => {
      const c = await createTenant(stack, "hooks-c", platform);
      const r = await receiver(Array.from({ length: 50 }, () => 500));
      const hook = await subscribe(c, r.url, ["item.created", "user.created"]);
      for (let i = 0; i < 3; i++) await newItem(c, `to be erased ${i}`);
      await waitFor("a first attempt", async () => ((await deliveries(c, hook.id)).some((d) => d.attempts > 0) ? true : undefined));
      const rows = async () =>
        (await stack.admin.query(
          `SELECT (SELECT count(*) FROM platform.webhooks WHERE tenant_id = $1)::int AS webhooks,
                  (SELECT count(*) FROM platform.webhook_deliveries WHERE tenant_id = $1)::int AS deliveries`,
          [c.id],
        )).rows[0];
      expect(await rows()).toEqual({ webhooks: 1, deliveries: 3 });
      const erase = await stack.request({ method: "DELETE", url: `/v1/tenants/${c.id}`, token: platform });
      expect(erase.statusCode, erase.body).toBe(202);
      await waitFor("the erasure", async () => ((await stack.admin.query("SELECT 1 FROM platform.tenants WHERE id = $1", [c.id])).rows.length === 0 ? true : undefined));
      expect(await rows()).toEqual({ webhooks: 0, deliveries: 0 });
      const record = (await stack.admin.query("SELECT row_counts FROM platform.tenant_erasures WHERE tenant_id = $1", [c.id])).rows[0].row_counts;
      expect(record).toMatchObject({ webhooks: 1, webhook_deliveries: 3 });
      // A job taken after the erasure finds nothing and sends nothing.
      await sleep(3_000);
      const sent = r.received.length;
      await sleep(3_000);
      expect(r.received.length).toBe(sent);
      const jobs = await stack.admin.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE payload->>'tenantId' = $1 AND locked_at IS NULL", [c.id]);
      expect(jobs.rows[0].n).toBe(0);
    }, 60_000);
  });

  // The same path on a real Citus cluster: the tables distributed and colocated, the outbox statement routed to the
  // tenant's shard in the transaction that also queues on the coordinator, and the worker's task delivering.
  describe.skipIf(!CITUS_URL)("on a real Citus cluster (CITUS_URL)", () => {
    let release: (() => Promise<void>) | undefined;
    let citusApp: Awaited<ReturnType<typeof buildApp>> | undefined;
    let citusDb: ReturnType<typeof createPostgresDatabase> | undefined;
    let appPool: pg.Pool | undefined;
    let admin: pg.Client | undefined;
    let appUrl: string;

    beforeAll(async () => {
      ({ appUrl, release } = await prepareCitusDatabase(CITUS_URL!));
      await installQueue(citusUrlAs(CITUS_URL!, "platform_migrator", "migrator"));
      admin = new pg.Client({ connectionString: CITUS_URL });
      await admin.connect();
      citusDb = createPostgresDatabase({ url: appUrl, poolSize: 4 });
      const config = loadServiceConfig({ DATABASE_URL: appUrl, AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE, TENANT_CACHE_TTL_MS: "0", WEBHOOK_ALLOWED_PRIVATE_CIDRS: "127.0.0.1/32" });
      citusApp = await buildApp({ config, db: citusDb });
      appPool = new pg.Pool({ connectionString: appUrl, max: 3 });
    }, 180_000);
    afterAll(async () => {
      await citusApp?.close();
      await citusDb?.close();
      await appPool?.end();
      await admin?.end();
      await release?.();
    });

    it("distributes both tables with the tenant's other rows, and delivers a tenant's events signed, from its shard", async () => {
      const colocation = await admin!.query<{ table: string; colocation: number; column: string }>(
        `SELECT logicalrelid::regclass::text AS table, colocationid AS colocation, column_to_column_name(logicalrelid, partkey) AS column
           FROM pg_dist_partition WHERE logicalrelid IN ('platform.users'::regclass, 'platform.webhooks'::regclass, 'platform.webhook_deliveries'::regclass)`,
      );
      expect(colocation.rows.map((r) => r.column)).toEqual(["tenant_id", "tenant_id", "tenant_id"]);
      expect(new Set(colocation.rows.map((r) => r.colocation)).size).toBe(1);

      const call = (t: string, method: string, url: string, payload?: object) => citusApp!.inject({ method: method as "GET", url, payload, headers: { authorization: `Bearer ${t}` } });
      const platform = await token({ scope: "platform:admin" });
      const tenants: { id: string; admin: string; member: string; userId: string }[] = [];
      for (const code of ["test-hook-a", "test-hook-b"]) {
        const t = await call(platform, "POST", "/v1/tenants", { code, name: code });
        expect(t.statusCode, t.body).toBe(201);
        const id = t.json().id as string;
        const adminToken = await token({ tenant: id, scope: "tenant:admin" });
        const user = await call(adminToken, "POST", "/v1/users", { email: `owner@${code}.test` });
        expect(user.statusCode, user.body).toBe(201);
        tenants.push({ id, admin: adminToken, member: await token({ tenant: id }), userId: user.json().id });
      }
      const [a, b] = tenants as [(typeof tenants)[0], (typeof tenants)[0]];
      const r = await receiver();
      const hook = await call(a.admin, "POST", "/v1/webhooks", { url: r.url, events: ["item.created", "item.updated", "item.deleted"] });
      expect(hook.statusCode, hook.body).toBe(201);
      const item = await call(a.member, "POST", "/v1/items", { ownerId: a.userId, title: "on citus" });
      expect(item.statusCode, item.body).toBe(201);
      expect((await call(a.member, "PATCH", `/v1/items/${item.json().id}`, { title: "on citus, changed" })).statusCode).toBe(200);
      expect((await call(a.member, "DELETE", `/v1/items/${item.json().id}`)).statusCode).toBe(204);
      expect((await call(b.member, "POST", "/v1/items", { ownerId: b.userId, title: "no webhooks" })).statusCode).toBe(201);
      const jobs = await admin!.query("SELECT payload->>'tenantId' AS tenant FROM graphile_worker._private_jobs WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'webhook.deliver')");
      expect(jobs.rows.map((j) => j.tenant)).toEqual([a.id, a.id, a.id]);

      await runOnce({ pgPool: appPool!, taskList: webhookTaskList({ db: citusDb!, timeoutMs: 3_000, maxAttempts: 3, retryBaseMs: 60_000, allowedPrivateCidrs: "127.0.0.1/32", caFile: tls.caFile }) });
      expect(r.received.map((m) => JSON.parse(m.body).type)).toEqual(["item.created", "item.updated", "item.deleted"]);
      for (const m of r.received) {
        const timestamp = m.headers["webhook-timestamp"] as string;
        expect(m.headers["webhook-signature"]).toBe(`v1=${createHmac("sha256", hook.json().secret).update(`${timestamp}.${m.body}`).digest("hex")}`);
      }
      const log = await call(a.admin, "GET", `/v1/webhooks/${hook.json().id}/deliveries`);
      expect(log.json().data.map((d: { status: string }) => d.status)).toEqual(["delivered", "delivered", "delivered"]);
      const byTenant = await admin!.query("SELECT tenant_id, count(*)::int AS n FROM platform.webhook_deliveries GROUP BY 1");
      expect(byTenant.rows).toEqual([{ tenant_id: a.id, n: 3 }]);

      // A failure's record and the pause, then a delivery deferred by it: the other statements of the task, on Citus.
      const down = await receiver([500, 500]);
      const failing = await call(a.admin, "POST", "/v1/webhooks", { url: down.url, events: ["user.created"] });
      expect(failing.statusCode, failing.body).toBe(201);
      const tasks = webhookTaskList({ db: citusDb!, timeoutMs: 3_000, maxAttempts: 3, retryBaseMs: 60_000, allowedPrivateCidrs: "127.0.0.1/32", caFile: tls.caFile });
      expect((await call(a.admin, "POST", "/v1/users", { email: "first@test-hook-a.test" })).statusCode).toBe(201);
      await runOnce({ pgPool: appPool!, taskList: tasks });
      expect((await call(a.admin, "POST", "/v1/users", { email: "second@test-hook-a.test" })).statusCode).toBe(201);
      await runOnce({ pgPool: appPool!, taskList: tasks });
      expect(down.received.length).toBe(1);
      const [deferred, failed] = (await call(a.admin, "GET", `/v1/webhooks/${failing.json().id}/deliveries`)).json().data;
      expect(failed).toMatchObject({ status: "pending", attempts: 1, responseStatus: 500, lastError: "answered 500" });
      const paused = (await call(a.admin, "GET", `/v1/webhooks/${failing.json().id}`)).json();
      expect(paused.consecutiveFailures).toBe(1);
      expect(deferred).toMatchObject({ status: "pending", attempts: 0, nextAttemptAt: paused.pausedUntil });
    });
  });
});
