/**
 * A real Ory Hydra for tests: the binary scripts/tools/install-hydra.sh builds from the Go module proxy (the version
 * config/src/images.ts pins for the charts), its store a SQLite file in a temporary directory, migrated with
 * `hydra migrate sql up`, then `hydra serve all --dev` on two loopback ports picked here.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./postgres.js";
import { waitFor } from "./wait.js";

const INSTALL_HYDRA = fileURLToPath(new URL("../../scripts/tools/install-hydra.sh", import.meta.url));

/** The binary's path, or why Hydra cannot be had here (the installer's exit 3: no Go, no C compiler, the proxy refused). */
export function installHydra(): { path: string; unavailable?: undefined } | { path?: undefined; unavailable: string } {
  const run = spawnSync("bash", [INSTALL_HYDRA], { encoding: "utf8" });
  if (run.status === 0) return { path: run.stdout.trim().split("\n").pop()! };
  if (run.status === 3) return { unavailable: run.stderr.trim().split("\n").pop() ?? "install-hydra.sh: exit 3" };
  throw new Error(`scripts/tools/install-hydra.sh failed (exit ${String(run.status)}):\n${run.stderr}`);
}

export interface HydraServer {
  /** The admin API, e.g. http://127.0.0.1:40123 (clients: /admin/clients). */
  readonly adminUrl: string;
  /** The public API: /oauth2/token, /.well-known/jwks.json. */
  readonly publicUrl: string;
  /** URLS_SELF_ISSUER: the `iss` of the tokens it signs. */
  readonly issuer: string;
  /** What the server wrote (JSON lines), to check that nothing secret is in it. */
  readonly output: string[];
  stop(): Promise<void>;
}

export async function startHydra(binary: string): Promise<HydraServer> {
  const dir = mkdtempSync(join(tmpdir(), "hydra-"));
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const publicUrl = `http://127.0.0.1:${publicPort}`;
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    DSN: `sqlite://${join(dir, "hydra.sqlite")}?_fk=true`,
    SERVE_PUBLIC_HOST: "127.0.0.1",
    SERVE_PUBLIC_PORT: String(publicPort),
    SERVE_ADMIN_HOST: "127.0.0.1",
    SERVE_ADMIN_PORT: String(adminPort),
    URLS_SELF_ISSUER: `${publicUrl}/`,
    // As the chart (k8s/src/charts/auth.ts): JWT access tokens, which the service verifies against the JWKS.
    STRATEGIES_ACCESS_TOKEN: "jwt",
    SECRETS_SYSTEM: "test-system-secret-test-system-secret",
    LOG_LEVEL: "info",
    LOG_FORMAT: "json",
  };
  const migrate = spawnSync(binary, ["migrate", "sql", "up", "--read-from-env", "--yes"], { env, encoding: "utf8", timeout: 120_000 });
  if (migrate.status !== 0) throw new Error(`hydra migrate sql up failed (exit ${String(migrate.status)}):\n${migrate.stderr}\n${migrate.stdout}`);

  const output: string[] = [];
  const child: ChildProcess = spawn(binary, ["serve", "all", "--dev"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter(Boolean));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitFor(
    "hydra to get ready",
    async () => {
      if (child.exitCode !== null) throw new Error(`hydra serve exited with ${child.exitCode}:\n${output.join("\n")}`);
      const ready = await Promise.all([`${adminUrl}/health/ready`, `${publicUrl}/health/ready`].map((url) => fetch(url).then((r) => r.ok, () => false)));
      return ready.every(Boolean);
    },
    { timeoutMs: 60_000, intervalMs: 200, detail: () => `\n${output.join("\n")}` },
  );
  return {
    adminUrl,
    publicUrl,
    issuer: `${publicUrl}/`,
    output,
    stop: () =>
      new Promise((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once("exit", done);
        child.kill("SIGTERM");
      }),
  };
}
