/**
 * The gcs export store against a real Cloud Storage engine: fake-gcs-server (built from the Go module proxy by
 * scripts/tools/install-fake-gcs-server.sh; skipped, saying why, where it cannot be built), spoken to by the same
 * @google-cloud/storage code production runs. First the store alone (a streamed upload read back byte for byte, a V4
 * signed URL, the tenant prefix removed), then the real worker process exporting a tenant into the bucket and the
 * service answering with signed URLs whose objects equal the tenant's rows.
 *
 * fake-gcs-server serves a signed URL without checking its signature, so what is checked of signing with a key is its
 * form (V4, the signer's account, the expiry asked for) and that it reads the object. The keyless path production
 * takes (no key file: signBlob as the pod's account) runs against a metadata server and an IAM played on loopback,
 * and there the signature is checked too: over the V4 string to sign rebuilt from the URL, with the account's key.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Storage } from "@google-cloud/storage";
import { freePort, waitFor } from "@platform/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gcsExportStore, tenantPrefix, type ExportStore } from "../src/export-store.js";
import { installQueue } from "../src/worker/queue.js";
import { createTenant, startStack, token, unavailable, type Stack, type TenantFixture } from "./harness.js";
import { startScript, waitUntilServing, type RunningProcess } from "./processes.js";

const INSTALL = fileURLToPath(new URL("../../../scripts/tools/install-fake-gcs-server.sh", import.meta.url));

/** The binary's path, or why there is none (exit 3: cannot be had here). */
async function fakeGcsServer(): Promise<{ path?: string; reason?: string }> {
  try {
    const { stdout } = await promisify(execFile)("bash", [INSTALL], { timeout: 900_000 });
    return { path: stdout.trim() };
  } catch (error) {
    const { code, stderr } = error as { code?: number; stderr?: string };
    if (code === 3) return { reason: stderr?.trim() || "install-fake-gcs-server.sh: cannot be had here" };
    throw error;
  }
}

const binary = await fakeGcsServer();
const skip = binary.reason ?? unavailable;
if (skip) console.warn(`skipping gcs export store tests: ${skip}`);

describe.skipIf(skip !== undefined)("the gcs export store on fake-gcs-server v1.56.1", () => {
  let server: ChildProcess;
  let endpoint: string;
  let store: ExportStore;
  let keyDir: string;
  let keyFile: string;
  const bucket = "tenant-exports-test";
  const account = "tenant-svc@example-project.iam.gserviceaccount.com";

  beforeAll(async () => {
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    server = spawn(binary.path!, ["-scheme", "http", "-host", "127.0.0.1", "-port", String(port), "-backend", "memory", "-public-host", `127.0.0.1:${port}`, "-external-url", endpoint, "-log-level", "error"], { stdio: "ignore" });
    await waitFor(
      "fake-gcs-server to answer",
      async () => {
        if (server.exitCode !== null) throw new Error(`fake-gcs-server exited with ${server.exitCode} before answering`);
        return fetch(`${endpoint}/storage/v1/b`).then((r) => r.ok, () => false);
      },
      { intervalMs: 100 },
    );
    await new Storage({ apiEndpoint: endpoint, projectId: "example-project" }).createBucket(bucket);
    // A service account key of the tests' own: the library signs with it locally, as it signs through signBlob on GKE.
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const credentials = { type: "service_account", project_id: "example-project", client_email: account, private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
    keyDir = mkdtempSync(join(tmpdir(), "gcs-key-"));
    keyFile = join(keyDir, "key.json");
    writeFileSync(keyFile, JSON.stringify(credentials), { mode: 0o600 });
    store = gcsExportStore({ bucket, apiEndpoint: endpoint, credentials, projectId: "example-project" });
  }, 900_000);
  afterAll(() => {
    server?.kill("SIGTERM");
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it("streams an object up and reads it back byte for byte", async () => {
    const hash = createHash("sha256");
    const chunks = function* () {
      for (let i = 0; i < 3_000; i++) {
        const chunk = Buffer.from(JSON.stringify({ i, pad: randomBytes(500).toString("base64") }) + "\n");
        hash.update(chunk);
        yield chunk;
      }
    };
    const key = "tenants/00000000-0000-4000-8000-000000000001/exports/e1/items.ndjson";
    await store.write(key, Readable.from(chunks()), "application/x-ndjson");
    const back = createHash("sha256");
    for await (const chunk of (await store.read(key))!) back.update(chunk as Buffer);
    expect(back.digest("hex")).toBe(hash.digest("hex"));
    expect(await store.read("tenants/00000000-0000-4000-8000-000000000001/exports/e1/nothing.ndjson")).toBeUndefined();
  });

  it("signs a V4 URL as its account that expires when asked and reads the object", async () => {
    const key = "tenants/00000000-0000-4000-8000-000000000001/exports/e2/users.ndjson";
    await store.write(key, Readable.from(['{"a":1}\n']), "application/x-ndjson");
    const url = new URL((await store.signedUrl(key, new Date(Date.now() + 600_000)))!);
    expect(url.origin).toBe(endpoint);
    expect(url.pathname).toBe(`/${bucket}/${key}`);
    expect(url.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
    expect(url.searchParams.get("X-Goog-Credential")).toMatch(new RegExp(`^${account.replace(/\./g, "\\.")}/\\d{8}/auto/storage/goog4_request$`));
    expect(Number(url.searchParams.get("X-Goog-Expires"))).toBeGreaterThanOrEqual(599);
    expect(Number(url.searchParams.get("X-Goog-Expires"))).toBeLessThanOrEqual(600);
    expect(url.searchParams.get("X-Goog-Signature")).toMatch(/^[0-9a-f]{512}$/);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"a":1}\n');
  });

  it("with no key, as on GKE, signs through IAM's signBlob as the metadata server's account, over exactly the URL it gives", async () => {
    const key = "tenants/00000000-0000-4000-8000-000000000001/exports/e5/items.ndjson";
    await store.write(key, Readable.from(['{"b":2}\n']), "application/x-ndjson");
    const iam = await startMetadataAndIam(account);
    const saved = { credentials: process.env.GOOGLE_APPLICATION_CREDENTIALS, host: process.env.GCE_METADATA_HOST };
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GCE_METADATA_HOST = iam.host;
    try {
      // No credentials: Application Default Credentials find the metadata server, as a pod with Workload Identity does.
      const keyless = gcsExportStore({ bucket, apiEndpoint: endpoint, projectId: "example-project", signingEndpoint: `http://${iam.host}/v1/projects/-/serviceAccounts/` });
      const url = new URL((await keyless.signedUrl(key, new Date(Date.now() + 300_000)))!);

      expect(iam.signed, "one signBlob call, as the metadata server's account, with its token").toEqual([
        { path: `/v1/projects/-/serviceAccounts/${iam.account}:signBlob`, authorization: `Bearer ${iam.token}`, payload: expect.any(String) },
      ]);
      expect(url.searchParams.get("X-Goog-Credential")).toMatch(new RegExp(`^${iam.account.replace(/\./g, "\\.")}/\\d{8}/auto/storage/goog4_request$`));
      // What IAM signed is the V4 string to sign of this URL, rebuilt here from the URL by Google's published
      // algorithm (https://cloud.google.com/storage/docs/authentication/signatures): the request line, the query
      // without the signature, sorted, and the host. A URL that said other than what was signed fails Google's check.
      // The host is the name alone: the library signs the endpoint's host name without its port, which Google's
      // endpoint (https, 443) never shows, so there the two are the same.
      const query = url.search.slice(1).split("&").filter((pair) => !pair.startsWith("X-Goog-Signature=")).sort().join("&");
      const canonical = ["GET", `/${bucket}/${key}`, query, `host:${url.hostname}`, "", "host", "UNSIGNED-PAYLOAD"].join("\n");
      const scope = url.searchParams.get("X-Goog-Credential")!.split("/").slice(1).join("/");
      const stringToSign = ["GOOG4-RSA-SHA256", url.searchParams.get("X-Goog-Date"), scope, createHash("sha256").update(canonical).digest("hex")].join("\n");
      expect(iam.signed[0]!.payload).toBe(stringToSign);
      // The URL carries IAM's signature, and it verifies with the account's public key.
      const signature = Buffer.from(url.searchParams.get("X-Goog-Signature")!, "hex");
      expect(verify("RSA-SHA256", Buffer.from(stringToSign), iam.publicKey, signature)).toBe(true);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('{"b":2}\n');
    } finally {
      await iam.stop();
      if (saved.credentials !== undefined) process.env.GOOGLE_APPLICATION_CREDENTIALS = saved.credentials;
      if (saved.host === undefined) delete process.env.GCE_METADATA_HOST;
      else process.env.GCE_METADATA_HOST = saved.host;
    }
  });

  it("removes every object under a tenant's prefix and nothing else", async () => {
    const [mine, other] = ["00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"];
    for (const t of [mine, other]) for (const table of ["users", "items"]) await store.write(`tenants/${t}/exports/e/${table}.ndjson`, Readable.from(["{}\n"]), "application/x-ndjson");
    await store.deletePrefix(tenantPrefix(mine));
    const [files] = await new Storage({ apiEndpoint: endpoint, projectId: "example-project" }).bucket(bucket).getFiles({ prefix: "tenants/00000000-0000-4000-8000-00000000000" });
    const names = files.map((f) => f.name);
    expect(names.filter((n) => n.includes(mine))).toEqual([]);
    expect(names.filter((n) => n.includes(other)).length).toBe(2);
  });

  describe("through the service and the real worker", () => {
    let stack: Stack;
    let worker: RunningProcess;
    let tenant: TenantFixture;
    const previousCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;

    beforeAll(async () => {
      const env = { EXPORT_STORE: "gcs", EXPORT_BUCKET: bucket, EXPORT_GCS_ENDPOINT: endpoint, EXPORT_URL_TTL_SECONDS: "300" };
      // Application Default Credentials, as on GKE; here a key file, so nothing leaves the machine to sign.
      process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile;
      stack = await startStack({ env: { ...env, TENANT_ERASURE_GRACE_SECONDS: "0" } });
      await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
      tenant = await createTenant(stack, "gcs-tenant", await token({ scope: "platform:admin" }));
      await stack.admin.query("INSERT INTO platform.items (tenant_id, owner_id, title) SELECT $1, $2, 'item ' || g FROM generate_series(1, 500) g", [tenant.id, tenant.userId]);
      const healthPort = await freePort();
      worker = startScript("worker", { DATABASE_URL: stack.config.DATABASE_URL!, HEALTH_PORT: String(healthPort), EXPORT_FETCH_ROWS: "64", GOOGLE_APPLICATION_CREDENTIALS: keyFile, ...env });
      await waitUntilServing(worker, `http://127.0.0.1:${healthPort}/livez`);
    }, 120_000);
    afterAll(async () => {
      await worker?.stop();
      await stack?.close();
      if (previousCredentials === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = previousCredentials;
    });

    it("exports into the bucket; each signed URL expires within EXPORT_URL_TTL_SECONDS and reads exactly the tenant's rows; erasure empties its prefix", async () => {
      const queued = await stack.request({ method: "POST", url: `/v1/tenants/${tenant.id}/exports`, token: tenant.admin });
      expect(queued.statusCode, queued.body).toBe(202);
      type Export = { status: string; files: { table: string; rows: number; url: string; urlExpiresAt: string }[] };
      const done = await waitFor(
        "the export to finish",
        async () => {
          const body = (await stack.request({ method: "GET", url: `/v1/tenants/${tenant.id}/exports/${queued.json().id}`, token: tenant.admin })).json() as Export;
          return !["queued", "running"].includes(body.status) && body;
        },
        { timeoutMs: 40_000, intervalMs: 200, detail: () => `${worker.stdout.slice(-10).join("\n")}\n${worker.stderr.join("\n")}` },
      );
      expect(done.status, JSON.stringify(done)).toBe("done");
      const items = done.files.find((f) => f.table === "items")!;
      expect(items.rows).toBe(501);
      const url = new URL(items.url);
      expect(url.origin).toBe(endpoint);
      expect(Number(url.searchParams.get("X-Goog-Expires"))).toBeLessThanOrEqual(300);
      expect(new Date(items.urlExpiresAt).getTime() - Date.now()).toBeLessThanOrEqual(300_000);
      const lines = (await (await fetch(url)).text()).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { id: string; tenant_id: string; title: string });
      const { rows } = await stack.admin.query("SELECT id, title FROM platform.items WHERE tenant_id = $1 ORDER BY id", [tenant.id]);
      expect(lines.map((l) => ({ id: l.id, title: l.title }))).toEqual(rows);
      expect(new Set(lines.map((l) => l.tenant_id))).toEqual(new Set([tenant.id]));
      // The service's own path for a table sends the client to a fresh signed URL.
      const redirect = await stack.request({ method: "GET", url: `/v1/tenants/${tenant.id}/exports/${queued.json().id}/tables/items`, token: tenant.admin });
      expect(redirect.statusCode).toBe(302);
      expect(new URL(redirect.headers.location as string).pathname).toBe(url.pathname);

      await stack.request({ method: "DELETE", url: `/v1/tenants/${tenant.id}`, token: await token({ scope: "platform:admin" }) });
      const objects = async () => (await new Storage({ apiEndpoint: endpoint, projectId: "example-project" }).bucket(bucket).getFiles({ prefix: tenantPrefix(tenant.id) }))[0].length;
      await waitFor("erasure to empty the tenant's prefix in the bucket", async () => (await objects()) === 0, {
        timeoutMs: 40_000,
        intervalMs: 200,
        detail: async () => `${await objects()} objects left; ${worker.stdout.slice(-5).join("\n")}`,
      });
    }, 120_000);
  });
});

/**
 * What a GKE pod with Workload Identity reaches to sign, played on loopback: the metadata server (the account's email
 * and an access token, as google-auth-library asks for them) and the IAM Credentials API's signBlob, which signs with
 * a key only it holds and checks the token. It records each signBlob call: the path, the token and the payload.
 */
async function startMetadataAndIam(account: string) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const token = randomBytes(16).toString("hex");
  const signed: { path: string; authorization: string | undefined; payload: string }[] = [];
  const metadata: Record<string, string> = {
    "/computeMetadata/v1/instance": "",
    "/computeMetadata/v1/instance/service-accounts/default/email": account,
    "/computeMetadata/v1/instance/service-accounts/default/token": JSON.stringify({ access_token: token, expires_in: 3600, token_type: "Bearer" }),
    "/computeMetadata/v1/project/project-id": "example-project",
    "/computeMetadata/v1/universe/universe-domain": "googleapis.com",
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    if (req.method === "GET" && path in metadata) {
      if (req.headers["metadata-flavor"] !== "Google") return void res.writeHead(403).end("missing Metadata-Flavor");
      res.writeHead(200, { "metadata-flavor": "Google", "content-type": path.endsWith("/token") ? "application/json" : "application/text" });
      return void res.end(metadata[path]);
    }
    if (req.method === "POST" && path.endsWith(":signBlob")) {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const payload = Buffer.from((JSON.parse(body) as { payload: string }).payload, "base64");
        signed.push({ path: decodeURIComponent(path), authorization: req.headers.authorization, payload: payload.toString() });
        if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end();
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ keyId: "test-key", signedBlob: sign("RSA-SHA256", payload, privateKey).toString("base64") }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { account, token, publicKey, signed, host, stop: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())) };
}
