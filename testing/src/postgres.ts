import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const POSTGRES_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";

export interface PostgresServer {
  /** Superuser connection string (user postgres, over the Unix socket directory). */
  readonly url: string;
  readonly port: number;
  readonly socketDir: string;
  /** Connection string for another role and database on the same server. */
  urlFor(user: string, password?: string, database?: string): string;
  stop(): void;
}

/** Why a real PostgreSQL cannot be started here, or undefined when it can. */
export function postgresUnavailable(): string | undefined {
  if (!existsSync(join(POSTGRES_BIN, "postgres"))) {
    return `PostgreSQL 15 server binaries not found in ${POSTGRES_BIN} (apt-get install postgresql-15, or set PG_BIN)`;
  }
  if (process.getuid?.() === 0 && spawnSync("id", ["postgres"]).status !== 0) {
    return "running as root but there is no postgres user to run initdb as";
  }
  return undefined;
}

/** Why Citus cannot be loaded by this PostgreSQL (it is built from its source, in no registry), or undefined. */
export function citusUnavailable(): string | undefined {
  const libdir = join(POSTGRES_BIN, "..", "lib");
  return postgresUnavailable() ?? (existsSync(join(libdir, "citus.so")) ? undefined : `Citus is not installed in ${libdir} (build it from its source against this PostgreSQL)`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * initdb refuses to run as root: run the server binaries as postgres when we are root. `prefix` runs the binary under
 * another command (`ip netns exec <ns>`: a server started so listens in that network namespace).
 */
function run(binary: string, args: string[], prefix: readonly string[] = []): string {
  const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  const [command, ...fullArgs] = [...prefix, ...asPostgres, join(POSTGRES_BIN, binary), ...args];
  return execFileSync(command!, fullArgs, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * Starts a throwaway PostgreSQL 15 on loopback with its own data directory, fsync off (tests only), password
 * authentication over TCP so role passwords are exercised, and returns its connection strings. `standby` starts it
 * in standby mode.
 */
export interface StartPostgresOptions {
  readonly settings?: Record<string, string>;
  readonly standby?: boolean;
  /** pg_hba.conf lines for clients beyond loopback (an isolated host's address, say). */
  readonly hbaRules?: readonly string[];
  /** The server runs under this command: `IsolatedHost.prefix` puts it on that host (set listen_addresses to match). */
  readonly prefix?: readonly string[];
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const unavailable = postgresUnavailable();
  if (unavailable) throw new Error(unavailable);
  const dir = mkdtempSync(join(tmpdir(), "platform-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const port = await freePort();
  const passwordFile = join(dir, "pw");
  writeFileSync(passwordFile, "postgres\n");
  chmodSync(passwordFile, 0o644);
  run("initdb", ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${passwordFile}`, "-E", "UTF8", "--locale=C"]);
  const settings = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${dir}'`,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    max_connections: "200",
    shared_buffers: "128MB",
    // With PLATFORM_TEST_KEEP, the log names every lock wait over deadlock_timeout: what a deadlock hunt needs.
    ...(process.env.PLATFORM_TEST_KEEP ? { log_lock_waits: "on" } : {}),
    ...options.settings,
  };
  const conf = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n");
  execFileSync("bash", ["-c", `cat >> '${join(data, "postgresql.conf")}'`], { input: `\n${conf}\n` });
  if (options.hbaRules?.length) execFileSync("bash", ["-c", `cat >> '${join(data, "pg_hba.conf")}'`], { input: `\n${options.hbaRules.join("\n")}\n` });
  // A standby with no primary to stream from stays in recovery and serves read-only queries: what a streaming
  // standby looks like to a client.
  if (options.standby) writeFileSync(join(data, "standby.signal"), "");
  run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60", "start"], options.prefix);
  const urlFor = (user: string, password?: string, database = "postgres"): string =>
    `postgresql://${encodeURIComponent(user)}${password === undefined ? "" : `:${encodeURIComponent(password)}`}@127.0.0.1:${port}/${database}`;
  return {
    url: urlFor("postgres", "postgres"),
    port,
    socketDir: dir,
    urlFor,
    stop() {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        // PLATFORM_TEST_KEEP: the directory, server.log included, outlives the test for a post-mortem.
        if (process.env.PLATFORM_TEST_KEEP) console.log(`kept PostgreSQL's directory: ${dir}`);
        else rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
