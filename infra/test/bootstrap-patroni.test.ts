/**
 * The Patroni configuration a Citus VM receives, started for real: production's two coordinator members, their
 * config.yml written by the bootstrap's own write_patroni_config from the synthesized startup script (the passwords
 * from a scripted Secret Manager), run by Debian's Patroni 3.0 with Citus 13 and PostgreSQL 15 against etcd 3.4 with
 * TLS and authentication on, as the etcd VMs run it.
 *
 * What changes between the VM and loopback, and nothing else: addresses and ports (127.0.0.1 and free ports instead
 * of the members' DNS names), paths (this test's directories instead of /var/lib/postgresql, /etc/postgresql/tls), the
 * certificates (a CA of this test's, for 127.0.0.1), the database subnet in pg_hba.conf (127.0.0.1/32 stands for it),
 * the watchdog (no /dev/watchdog here; production requires softdog), archive_command (no pgBackRest repository here:
 * bootstrap-backups.test.ts runs that one) and shared_buffers (this machine's memory is shared). Every other setting
 * is loaded as rendered.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CITUS_OUTPUT_PLUGIN_LIBRARIES, CITUS_SETTINGS, DATABASE_ROLES, DEAD_PEER_CONNINFO, DEAD_PEER_SETTINGS, platformNames } from "@platform/config";
import { EXPORTER_QUERIES, POSTGRES_EXPORTER_PORT, postgresExporterQueries } from "@platform/monitoring/exporter-queries";
import { citusUnavailable, patroniUnavailable, reserveMember, waitFor, startEtcd, startPatroniMember, type Etcd, type PatroniMember } from "@platform/testing";
import { CITUS_ROLES, CITUS_VM_PATHS, citusPgHba } from "../src/citus/patroni-vm.js";
import { hermeticConfigs } from "./helpers.js";
import { synthesizedStack } from "./synthesized.js";
import { bootstrapEnv, fakeSecretManager, loopbackCertificates, startupScriptOf } from "./vm-fixtures.js";

const unavailable =
  patroniUnavailable() ??
  (process.getuid?.() !== 0 ? "needs root: the bootstrap writes Patroni's files as the postgres user, as on the VM" : undefined) ??
  citusUnavailable();
if (unavailable) console.warn(`skipping the Patroni bootstrap tests: ${unavailable}`);

const config = hermeticConfigs().find((c) => c.name === "production")!;
const names = platformNames(config);
const secrets: Record<string, string> = {
  [names.secrets.dbSuperuser]: "test-superuser-pw",
  [names.secrets.dbReplication]: "test-replication-pw",
  [names.secrets.dbMigrator]: "test-migrator-pw",
  [names.secrets.dbApp]: "test-app-pw",
  [names.secrets.hydraDbPassword]: "test-hydra-pw",
  [names.secrets.patroniRestApiPassword]: "test-api-pw",
  [names.secrets.etcdPatroniPassword]: "test-etcd-pw",
};
const ETCD_ROOT = "test-etcd-root";

interface Rendered {
  script: string;
  /** config.yml as write_patroni_config wrote it. */
  written: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  sizing: string;
}

describe.skipIf(unavailable !== undefined)("a Citus VM's Patroni configuration, run by real Patroni, etcd (TLS + auth) and Citus", () => {
  let dir: string;
  let etcd: Etcd;
  const members: PatroniMember[] = [];
  const rendered: Rendered[] = [];
  let tls: { ca: string; cert: string; key: string };
  const hosts = [names.citus.coordinator.member.host, names.citus.coordinator.standby!.host];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "citus-patroni-"));
    chmodSync(dir, 0o755);
    const production = synthesizedStack("production");
    tls = loopbackCertificates(join(dir, "tls"));
    // The bootstrap's own functions write each member's files, as on its VM.
    for (const [i, host] of hosts.entries()) {
      const root = join(dir, `vm-${i}`);
      const script = startupScriptOf(production!.json, "coordinator", host);
      writeFileSync(join(dir, `startup-${i}.sh`), script);
      const env = { ...bootstrapEnv(root), ...fakeSecretManager(root, secrets) };
      const run = spawnSync("bash", ["-c", `set -euo pipefail; source '${join(dir, `startup-${i}.sh`)}'; write_sizing_conf; write_patroni_config`], { encoding: "utf8", env });
      if (run.status !== 0) throw new Error(run.stderr);
      rendered.push({
        script,
        written: JSON.parse(readFileSync(join(root, "patroni", "config.yml"), "utf8")),
        sizing: readFileSync(join(root, "patroni", "platform.conf"), "utf8"),
      });
    }

    // etcd as the etcd VMs run it: TLS with client certificates, authentication on, Patroni's user limited to its prefix.
    etcd = await startEtcd({
      tls,
      auth: {
        rootPassword: ETCD_ROOT,
        setup: (etcdctl) => {
          etcdctl("role", "add", "patroni");
          etcdctl("role", "grant-permission", "patroni", "--prefix=true", "readwrite", "/service/");
          etcdctl("user", "add", `${CITUS_ROLES.etcdUser}:${secrets[names.secrets.etcdPatroniPassword]}`);
          etcdctl("user", "grant-role", CITUS_ROLES.etcdUser, "patroni");
        },
      },
    });
    for (const [i, r] of rendered.entries()) {
      const ports = await reserveMember();
      const c = structuredClone(r.written);
      c.etcd3.hosts = [etcd.url.replace(/^https:\/\//, "")];
      c.etcd3.cacert = tls.ca;
      c.restapi.listen = c.restapi.connect_address = `127.0.0.1:${ports.restPort}`;
      c.postgresql.listen = c.postgresql.connect_address = `127.0.0.1:${ports.pgPort}`;
      c.postgresql.data_dir = join(ports.dir, "data");
      c.postgresql.pgpass = join(ports.dir, "pgpass");
      c.postgresql.custom_conf = join(ports.dir, "platform.conf");
      writeFileSync(c.postgresql.custom_conf, r.sizing.replace(/^shared_buffers = .*$/m, "shared_buffers = 64MB"));
      for (const auth of Object.values(c.postgresql.authentication) as Record<string, string>[]) auth.sslrootcert = tls.ca;
      const p = c.postgresql.parameters;
      Object.assign(p, { ssl_cert_file: tls.cert, ssl_key_file: tls.key, ssl_ca_file: tls.ca, unix_socket_directories: ports.dir, archive_command: "/bin/true" });
      p["citus.node_conninfo"] = String(p["citus.node_conninfo"]).replace(/sslrootcert=\S+/, `sslrootcert=${tls.ca}`);
      c.postgresql.pg_hba = c.postgresql.pg_hba.map((line: string) => line.replace(config.network.dataCidr, "127.0.0.1/32"));
      c.watchdog.mode = "off";
      members.push(await startPatroniMember(`member-${i}`, ports, JSON.stringify(c), { username: "postgres", password: secrets[names.secrets.dbSuperuser]! }));
      // The first member initialises the group; the second clones it.
      if (i === 0) await waitStatus(members[0]!, "/primary", 180_000);
    }
    await waitStatus(members[1]!, "/sync", 180_000);
  }, 420_000);

  afterAll(async () => {
    for (const m of members) await m.stop();
    await etcd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const sql = (m: PatroniMember, query: string, db = "postgres") =>
    execFileSync("runuser", ["-u", "postgres", "--", "psql", "-X", "-At", "-h", m.dataDir.replace(/\/data$/, ""), "-p", String(m.pgPort), "-d", db, "-c", query], { encoding: "utf8" }).trim();

  it("carries no password in the instance metadata; the bootstrap adds each from Secret Manager", () => {
    for (const r of rendered) {
      expect(r.script).toContain("readonly PATRONI_CONFIG=");
      for (const value of Object.values(secrets)) expect(r.script).not.toContain(value);
      expect(r.written.postgresql.authentication.superuser).toMatchObject({ username: "postgres", password: secrets[names.secrets.dbSuperuser], sslmode: "verify-full" });
      expect(r.written.postgresql.authentication.replication.password).toBe(secrets[names.secrets.dbReplication]);
      expect(r.written.restapi.authentication).toEqual({ username: CITUS_ROLES.patroniRestApi, password: secrets[names.secrets.patroniRestApiPassword] });
      expect(r.written.etcd3).toMatchObject({ username: CITUS_ROLES.etcdUser, password: secrets[names.secrets.etcdPatroniPassword], protocol: "https" });
    }
  });

  it("renders production's group 0: Citus mode, synchronous, watchdog required, the etcd members over TLS, its own DNS name", () => {
    const [a, b] = rendered.map((r) => r.written);
    expect(a!.citus).toEqual({ group: 0, database: names.citusDatabase });
    expect(a!.scope).toBe(names.patroni.scope);
    expect(a!.name).toBe(names.citus.coordinator.member.instance);
    expect(b!.name).toBe(names.citus.coordinator.standby!.instance);
    expect(a!.bootstrap.dcs.synchronous_mode).toBe(true);
    expect(a!.watchdog.mode).toBe("required");
    expect(a!.etcd3.hosts).toEqual(names.patroni.etcd.map((e) => `${e.host}:2379`));
    expect(a!.postgresql.connect_address).toBe(`${names.citus.coordinator.member.host}:${names.postgresPort}`);
    expect(a!.postgresql.data_dir).toBe(`${CITUS_VM_PATHS.dataMount}/15/main`);
    expect(a!.postgresql.pg_hba).toEqual(citusPgHba(names.citusDatabase, config.network.dataCidr, [config.network.gkeNodesCidr, config.network.podsCidr, config.network.dataCidr]));
    // The paths the bootstrap writes are the ones the configuration names (bootstrap/lib/paths.sh's defaults).
    expect(a!.postgresql.custom_conf).toBe(`${CITUS_VM_PATHS.patroniDir}/platform.conf`);
    const common = readFileSync(new URL("../src/citus/bootstrap/lib/paths.sh", import.meta.url), "utf8");
    expect(common).toContain(`PATRONI_DIR="\${BOOTSTRAP_PATRONI_DIR:-${CITUS_VM_PATHS.patroniDir}}"`);
    expect(common).toContain(`TLS_DIR="\${BOOTSTRAP_TLS_DIR:-${CITUS_VM_PATHS.tlsDir}}"`);
  });

  it("runs: one leader whose /primary answers 200 (the load balancer's health check), a synchronous replica answering 503 there", async () => {
    expect(await members[0]!.status("/primary")).toBe(200);
    expect(await members[1]!.status("/primary")).toBe(503);
    expect(await members[1]!.status("/sync")).toBe(200);
    expect(sql(members[0]!, "SHOW synchronous_standby_names")).toContain(rendered[1]!.written.name);
  });

  it("loads the rendered settings: TLS, SCRAM, logical WAL, Citus isolation settings, the VM's sizing file; Citus mode made the database", () => {
    const leader = members[0]!;
    expect(sql(leader, "SHOW ssl")).toBe("on");
    expect(sql(leader, "SHOW password_encryption")).toBe("scram-sha-256");
    expect(sql(leader, "SHOW wal_level")).toBe("logical");
    expect(sql(leader, "SHOW max_connections")).toBe(String(config.citus.coordinatorMaxConnections));
    // Every Citus setting written once (config/src/citus-settings.ts), and the shard split's output plugin where this
    // server has the setting: the boot writes that line from shell, so this holds it to the same value.
    for (const [name, value] of Object.entries(CITUS_SETTINGS)) expect(sql(leader, `SELECT current_setting('${name}')`), name).toBe(String(value));
    const plugins = sql(leader, "SELECT coalesce(current_setting('output_plugin_libraries', true), 'not known to this server')");
    if (plugins !== "not known to this server") expect(plugins).toBe(CITUS_OUTPUT_PLUGIN_LIBRARIES);
    expect(sql(leader, "SELECT current_setting('citus.shard_count')")).toBe(String(config.citus.shardCount));
    expect(sql(leader, "SHOW effective_cache_size")).toMatch(/MB|GB/);
    expect(sql(leader, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL")).toBe("0");
    // A client gone silent is let go within a minute (config/src/dead-peers.ts). Read from the files the server
    // applied: over this test's Unix socket the keepalive settings always read 0.
    for (const [name, value] of Object.entries(DEAD_PEER_SETTINGS)) {
      expect(sql(leader, `SELECT setting || ' ' || applied FROM pg_file_settings WHERE name = '${name}' ORDER BY seqno DESC LIMIT 1`), name).toBe(`${value} true`);
    }
    expect(sql(leader, "SHOW client_connection_check_interval")).toBe(`${DEAD_PEER_SETTINGS.client_connection_check_interval! / 1000}s`);
    expect(sql(leader, "SELECT current_setting('citus.node_conninfo')")).toContain(DEAD_PEER_CONNINFO);
    expect(sql(leader, "SELECT extversion FROM pg_extension WHERE extname = 'citus'", names.citusDatabase)).toMatch(/^13\./);
    expect(sql(leader, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")).toBe("0");
    // The replica streams over TLS, verifying the leader's certificate, as the replication role.
    expect(sql(leader, "SELECT ssl::text || ' ' || usename FROM pg_stat_replication JOIN pg_stat_ssl USING (pid)")).toBe("true replicator");
  });

  it("rejects over TCP what no rule admits: any database but the application's and Hydra's, for any role but the superuser", () => {
    const leader = members[0]!;
    const connect = (user: string, db: string) =>
      spawnSync("runuser", ["-u", "postgres", "--", "psql", "-X", "-h", "127.0.0.1", "-p", String(leader.pgPort), "-U", user, "-d", db, "-c", "SELECT 1"], {
        encoding: "utf8",
        env: { ...process.env, PGCONNECT_TIMEOUT: "5", PGSSLMODE: "verify-full", PGSSLROOTCERT: tls.ca, PGPASSWORD: secrets[names.secrets.dbSuperuser] },
      });
    const refused = connect("platform_app", "postgres");
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "platform_app", database "postgres", SSL encryption/);
    // The superuser from the database subnet (127.0.0.1 stands for it), over TLS verified against the CA, with SCRAM.
    const superuser = connect("postgres", "postgres");
    expect(superuser.stderr).toBe("");
    expect(superuser.status).toBe(0);
  });

  it("makes on the leader what Patroni does not (idempotently): postgres_exporter's role with pg_monitor only, pg_stat_statements; and the exporter's config", () => {
    const leader = members[0]!;
    const socket = leader.dataDir.replace(/\/data$/, "");
    const psql = `PSQL=(runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only -h '${socket}' -p ${leader.pgPort})`;
    const root = join(dir, "exporter-vm");
    // What the leader does at boot (twice: every boot), then the exporter's configuration.
    execFileSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "startup-0.sh")}'; ${psql}; configure_leader; configure_leader; configure_exporters`], {
      env: { ...bootstrapEnv(root), ...fakeSecretManager(root, secrets) },
      stdio: "pipe",
    });
    expect(sql(leader, "SELECT rolsuper::text || rolcreaterole::text || rolbypassrls::text || rolcanlogin::text FROM pg_roles WHERE rolname = 'prometheus'")).toBe("falsefalsefalsetrue");
    expect(sql(leader, "SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'prometheus'")).toBe("pg_monitor");
    for (const [name, q] of Object.entries(EXPORTER_QUERIES).filter(([, q]) => !q.coordinatorOnly && !q.query.includes("pg_replication_slots"))) {
      expect(() => sql(leader, `SET ROLE prometheus; ${q.query}`, names.citusDatabase), name).not.toThrow();
    }
    expect(readFileSync(join(root, "exporter", "queries.yaml"), "utf8").trim()).toBe(postgresExporterQueries().trim());
    expect(readFileSync(join(root, "exporter.defaults"), "utf8")).toContain(`--web.listen-address=:${POSTGRES_EXPORTER_PORT}`);
  });

  it("creates every database role of the config's table by its name (twice, as every boot does), and Hydra's database", () => {
    const leader = members[0]!;
    const socket = leader.dataDir.replace(/\/data$/, "");
    const psql = `PSQL=(runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only -h '${socket}' -p ${leader.pgPort})`;
    const root = join(dir, "roles-vm");
    execFileSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "startup-0.sh")}'; ${psql}; configure_leader; create_application_roles; create_hydra_database; create_application_roles; create_hydra_database`], {
      env: { ...bootstrapEnv(root), ...fakeSecretManager(root, secrets) },
      stdio: "pipe",
    });
    const roles = Object.values(DATABASE_ROLES);
    expect(sql(leader, `SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN (${roles.map((r) => `'${r}'`).join(",")})`).split(","))
      .toEqual(roles.map((r) => `${r}:${r !== DATABASE_ROLES.queue}`).sort());
    const membersOfQueue = sql(leader, `SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_auth_members m JOIN pg_roles q ON q.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE q.rolname = '${DATABASE_ROLES.queue}'`);
    expect(membersOfQueue.split(",")).toEqual([DATABASE_ROLES.app, DATABASE_ROLES.migrator].sort());
    expect(sql(leader, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${names.hydraDatabase}'`)).toBe(DATABASE_ROLES.hydra);
  });

  it("the bootstrap's wait sees this member's role on its REST API", () => {
    const role = (i: number) => {
      const m = members[i]!;
      const script = rendered[i]!.script.replace(/^readonly PATRONI_REST_PORT='\d+'$/m, `readonly PATRONI_REST_PORT='${m.restUrl.split(":").pop()}'`);
      writeFileSync(join(dir, "probe.sh"), script);
      return spawnSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "probe.sh")}'; wait_for_member`], { encoding: "utf8", env: bootstrapEnv(join(dir, "probe")) }).stdout.trim();
    };
    expect(role(0)).toBe("primary");
    expect(role(1)).toBe("replica");
  });

  it("waits for a majority of etcd over TLS before it stops anything (wait_for_dcs), and says which members did not answer", () => {
    const etcdHost = etcd.url.replace(/^https:\/\//, "");
    const probe = (hosts: string[]) => {
      const config = JSON.stringify({ ...rendered[0]!.written, etcd3: { hosts } }).replace(/'/g, "'\\''");
      const script = rendered[0]!.script.replace(/^readonly PATRONI_CONFIG='.*'$/m, `readonly PATRONI_CONFIG='${config}'`);
      writeFileSync(join(dir, "dcs.sh"), script);
      return spawnSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "dcs.sh")}'; wait_for_dcs`], {
        encoding: "utf8",
        env: { ...bootstrapEnv(join(dir, "dcs")), BOOTSTRAP_TLS_DIR: join(dir, "tls"), DCS_WAIT_ATTEMPTS: "1" },
      });
    };
    expect(probe([etcdHost, etcdHost, "127.0.0.1:1"]).status).toBe(0);
    const minority = probe([etcdHost, "127.0.0.1:1", "127.0.0.1:2"]);
    expect(minority.status).toBe(1);
    expect(minority.stderr).toContain(`etcd has no majority answering after 30 minutes (${etcdHost} 127.0.0.1:1 127.0.0.1:2); PostgreSQL was left as it is`);
  });

  it("a switchover with the REST API's password moves the leader (and /primary with it); without it Patroni refuses", async () => {
    const body = JSON.stringify({ leader: rendered[0]!.written.name, candidate: rendered[1]!.written.name });
    const refused = await fetch(`${members[0]!.restUrl}/switchover`, { method: "POST", body, headers: { "content-type": "application/json" } });
    expect(refused.status).toBe(401);
    const auth = `Basic ${Buffer.from(`${CITUS_ROLES.patroniRestApi}:${secrets[names.secrets.patroniRestApiPassword]}`).toString("base64")}`;
    const accepted = await fetch(`${members[0]!.restUrl}/switchover`, { method: "POST", body, headers: { "content-type": "application/json", authorization: auth } });
    expect(accepted.status, await accepted.text()).toBe(200);
    await waitStatus(members[1]!, "/primary", 60_000);
    expect(await members[0]!.status("/primary")).toBe(503);
    await waitStatus(members[0]!, "/sync", 120_000);
  }, 200_000);
});

async function waitStatus(member: PatroniMember, endpoint: string, timeoutMs: number): Promise<void> {
  await waitFor(`${member.name} ${endpoint} to answer 200`, async () => (await member.status(endpoint)) === 200, {
    timeoutMs,
    intervalMs: 500,
    detail: () => `\n${member.log().slice(-4000)}`,
  });
}
