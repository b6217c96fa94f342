/**
 * Real etcd and Patroni processes on loopback for failover tests: Debian's etcd-server (3.4) and patroni (3.0)
 * packages. Each Patroni member runs as the postgres user (initdb refuses root) in a process group of its own, so a
 * test can stop it, or kill -9 only its PostgreSQL.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { POSTGRES_BIN, freePort, postgresUnavailable } from "./postgres.js";
import { waitFor as poll } from "./wait.js";

export const PATRONI_BIN = process.env.PATRONI_BIN ?? "/usr/bin/patroni";
export const ETCD_BIN = process.env.ETCD_BIN ?? "/usr/bin/etcd";

/** Why Patroni and etcd cannot run here, or undefined when they can. */
export function patroniUnavailable(): string | undefined {
  const pg = postgresUnavailable();
  if (pg) return pg;
  if (!existsSync(PATRONI_BIN)) return `Patroni not found at ${PATRONI_BIN} (apt-get install patroni)`;
  if (!existsSync(ETCD_BIN)) return `etcd not found at ${ETCD_BIN} (apt-get install etcd-server)`;
  return undefined;
}

/** `poll`, where a probe that throws is one more try (etcd and Patroni refuse connections while they start). */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  const attempt = () =>
    probe().catch((error: unknown) => {
      last = error;
      return undefined;
    });
  return poll(what, attempt, {
    timeoutMs,
    intervalMs: 250,
    detail: () => (last ? `the last attempt: ${String((last as { stderr?: string }).stderr ?? last)}` : "no attempt failed, none succeeded"),
  });
}

function stopGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? "/usr/bin/etcdctl";

export interface Etcd {
  /** The client URL (http://127.0.0.1:port, or https:// with TLS). */
  readonly url: string;
  /** Runs etcdctl against it (v3 API, with the client certificate when TLS is on, as root when auth is on). */
  etcdctl(...args: string[]): string;
  stop(): Promise<void>;
}

export interface EtcdOptions {
  /**
   * TLS on the client and peer ports; peers always present certificates, clients only with
   * `requireClientCertificates` (--client-cert-auth). `cert`/`key` serve both as etcd's own and as etcdctl's client
   * certificate: one signed by `ca` with serverAuth and clientAuth and 127.0.0.1 among its names.
   */
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string; readonly requireClientCertificates?: boolean };
  /**
   * Turns authentication on after start: the root user with this password, then `enable(etcdctl)` creates the users
   * and roles (e.g. the etcd VMs' own setup, run against this server) before `auth enable`.
   */
  readonly auth?: { readonly rootPassword: string; readonly setup: (etcdctl: (...args: string[]) => string) => void };
}

export async function startEtcd(options: EtcdOptions = {}): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), "platform-etcd-"));
  const [client, peer] = [await freePort(), await freePort()];
  const scheme = options.tls ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${client}`;
  const tlsArgs = options.tls
    ? [
        "--cert-file", options.tls.cert, "--key-file", options.tls.key,
        // etcd turns client certificate authentication on whenever it has a client CA (--trusted-ca-file).
        ...(options.tls.requireClientCertificates ? ["--trusted-ca-file", options.tls.ca, "--client-cert-auth"] : []),
        "--peer-cert-file", options.tls.cert, "--peer-key-file", options.tls.key, "--peer-trusted-ca-file", options.tls.ca, "--peer-client-cert-auth",
      ]
    : [];
  const child = spawn(
    ETCD_BIN,
    [
      "--name", "test", "--data-dir", join(dir, "data"),
      "--listen-client-urls", url, "--advertise-client-urls", url,
      "--listen-peer-urls", `${scheme}://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `${scheme}://127.0.0.1:${peer}`,
      "--initial-cluster", `test=${scheme}://127.0.0.1:${peer}`,
      // Patroni 3.0 speaks etcd's v3 API through its JSON gateway.
      "--enable-v2=false",
      ...tlsArgs,
    ],
    { detached: true, stdio: ["ignore", "ignore", "ignore"] },
  );
  const clientTls = options.tls ? ["--cacert", options.tls.ca, "--cert", options.tls.cert, "--key", options.tls.key] : [];
  let user: string[] = [];
  const etcdctl = (...args: string[]) =>
    execFileSync(ETCDCTL_BIN, ["--endpoints", url, ...clientTls, ...user, ...args], { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" }, stdio: ["ignore", "pipe", "pipe"] });
  // endpoint health prints its verdict on stderr and exits non-zero when unhealthy.
  await waitFor("etcd to answer", 30_000, async () => (etcdctl("endpoint", "health"), true));
  if (options.auth) {
    etcdctl("user", "add", `root:${options.auth.rootPassword}`);
    options.auth.setup(etcdctl);
    etcdctl("auth", "enable");
    user = ["--user", `root:${options.auth.rootPassword}`];
  }
  return {
    url,
    etcdctl,
    async stop() {
      stopGroup(child, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PatroniMember {
  readonly name: string;
  /** http://127.0.0.1:port of its REST API. */
  readonly restUrl: string;
  readonly pgPort: number;
  readonly dataDir: string;
  /** Connection string as the superuser. */
  readonly url: string;
  /** GET an endpoint of its REST API (/primary, /replica, /sync, ...): the status code, 0 when it does not answer. */
  status(endpoint: string): Promise<number>;
  /** kill -9 its PostgreSQL postmaster, leaving Patroni running (a crashed database, not a lost VM). */
  killPostmaster(): void;
  /** Patroni's log so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface MemberPorts {
  readonly pgPort: number;
  readonly restPort: number;
  readonly dir: string;
}

/** Ports and a directory the postgres user can write, for one member, before its configuration is written. */
export async function reserveMember(): Promise<MemberPorts> {
  const dir = mkdtempSync(join(tmpdir(), "platform-patroni-"));
  chmodSync(dir, 0o777);
  return { pgPort: await freePort(), restPort: await freePort(), dir };
}

/** Starts Patroni with `configText` (written to the member's directory), as the postgres user. */
export async function startPatroniMember(name: string, ports: MemberPorts, configText: string, superuser: { username: string; password: string }): Promise<PatroniMember> {
  const config = join(ports.dir, "patroni.yml");
  writeFileSync(config, configText);
  chmodSync(config, 0o644);
  mkdirSync(join(ports.dir, "data"), { recursive: true, mode: 0o700 });
  const logFile = join(ports.dir, "patroni.log");
  writeFileSync(logFile, "");
  chmodSync(logFile, 0o666);
  if (process.getuid?.() === 0) execFileSync("chown", ["-R", "postgres:postgres", ports.dir]);
  const asPostgres = process.getuid?.() === 0;
  const command = asPostgres ? "runuser" : PATRONI_BIN;
  const args = asPostgres ? ["-u", "postgres", "--", "bash", "-c", `exec '${PATRONI_BIN}' '${config}' >>'${logFile}' 2>&1`] : [config];
  const child = spawn(command, args, { detached: true, stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, PATH: `${POSTGRES_BIN}:${process.env.PATH}` } });
  const restUrl = `http://127.0.0.1:${ports.restPort}`;
  const dataDir = join(ports.dir, "data");
  const member: PatroniMember = {
    name,
    restUrl,
    pgPort: ports.pgPort,
    dataDir,
    url: `postgresql://${superuser.username}:${encodeURIComponent(superuser.password)}@127.0.0.1:${ports.pgPort}/postgres`,
    async status(endpoint) {
      try {
        return (await fetch(`${restUrl}${endpoint}`, { signal: AbortSignal.timeout(2000) })).status;
      } catch {
        return 0;
      }
    },
    killPostmaster() {
      const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      process.kill(pid, "SIGKILL");
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    async stop() {
      stopGroup(child, "SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 1500));
      stopGroup(child, "SIGKILL");
      // Patroni's PostgreSQL is its own process group's child: stop it too, however Patroni ended.
      if (existsSync(join(dataDir, "postmaster.pid"))) {
        const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      rmSync(ports.dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`Patroni ${name}'s REST API`, 60_000, async () => ((await member.status("/health")) !== 0 ? true : undefined));
  } catch (error) {
    // Leave nothing running behind a member that never came up; its log says why.
    const log = member.log().slice(-3000);
    await member.stop();
    throw new Error(`${(error as Error).message}; Patroni's log ends:\n${log}`);
  }
  return member;
}
