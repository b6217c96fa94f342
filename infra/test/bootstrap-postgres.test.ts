/**
 * Renders a Citus node's postgresql.conf, pg_hba.conf and pgbackrest.conf with the real bootstrap functions and
 * starts a real PostgreSQL 15 on them. Citus itself is not installed here, so the test replaces only
 * shared_preload_libraries after including the generated file; every other generated setting is loaded as written.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformNames } from "@platform/config";
import { EXPORTER_QUERIES, POSTGRES_EXPORTER_PORT, postgresExporterQueries } from "@platform/monitoring/exporter-queries";
import { citusStartupScript } from "../src/citus/startup-script.js";
import { hermeticConfigs } from "./helpers.js";
import { bootstrapEnv as vmBootstrapEnv, throwawayServerCertificate } from "./vm-fixtures.js";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const skipReason = !existsSync(join(PG_BIN, "postgres"))
  ? `PostgreSQL 15 server binaries not found in ${PG_BIN} (apt-get install postgresql-15)`
  : process.getuid?.() !== 0
    ? "needs root: the bootstrap chowns files to the postgres user, as it does on the VM"
    : undefined;
if (skipReason) console.warn(`skipping bootstrap-postgres tests: ${skipReason}`);

const config = hermeticConfigs().find((c) => c.name === "staging")!;
const names = platformNames(config);
const port = 25432 + (process.pid % 1000);
let dir: string;
let bootstrapEnv: NodeJS.ProcessEnv;

const asPostgres = (cmd: string, args: string[], input?: string) =>
  execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
const sql = (query: string) => asPostgres("psql", ["-X", "-At", "-h", dir, "-p", String(port), "-d", "postgres", "-c", query]).trim();

describe.skipIf(skipReason !== undefined)("bootstrap configuration on a real PostgreSQL 15", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "citus-bootstrap-"));
    chmodSync(dir, 0o755);
    const script = citusStartupScript({
      role: "worker",
      nodeKind: "worker",
      nodeHost: names.citus.workers[0]!.host,
      certificateHosts: [names.citus.workers[0]!.host],
      prefix: config.prefix,
      projectId: config.gcp.projectId,
      postgresMajor: 15,
      citusVersion: config.citus.citusVersion,
      port,
      database: names.citusDatabase,
      shardCount: config.citus.shardCount,
      maxConnections: 50,
      stanza: `${config.prefix}-worker-0`,
      backupBucket: names.backupsBucket,
      fullBackupRetention: config.citus.fullBackupRetention,
      restorePointIntervalMinutes: config.citus.restorePointIntervalMinutes,
      maxSlotWalKeepSize: "10GB",
      clientCidrs: [config.network.gkeNodesCidr, config.network.podsCidr, config.network.dataCidr],
      dataCidr: config.network.dataCidr,
      coordinatorHost: names.citus.coordinator.host,
      secrets: { superuser: "s", replication: "r", migrator: "m", app: "a", caKey: "k", caCert: "c", hydraDbPassword: "h", hydraSystemSecret: "hs", grafanaAdminPassword: "g" },
    });
    writeFileSync(join(dir, "bootstrap.sh"), script);
    bootstrapEnv = vmBootstrapEnv(dir);
    execFileSync("bash", ["-c", `set -euo pipefail; source '${dir}/bootstrap.sh'; write_postgres_config`], { env: bootstrapEnv, stdio: "pipe" });

    // A throwaway certificate where the bootstrap would have issued one from the platform CA.
    throwawayServerCertificate(join(dir, "tls"));
    execFileSync("chown", ["-R", "postgres:postgres", dir]);

    const data = join(dir, "data");
    asPostgres(join(PG_BIN, "initdb"), ["-D", data, "--auth-local=peer", "-U", "postgres"]);
    appendFileSync(
      join(data, "postgresql.conf"),
      [
        `include '${join(dir, "conf", "conf.d", "50-platform.conf")}'`,
        `hba_file = '${join(dir, "conf", "pg_hba.conf")}'`,
        "shared_preload_libraries = 'pg_stat_statements'",
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        "shared_buffers = 32MB",
        "effective_cache_size = 128MB",
        "max_connections = 50",
        "archive_mode = off",
        "",
      ].join("\n"),
    );
    asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-l", join(dir, "server.log"), "-w", "start"]);
  }, 120_000);

  afterAll(() => {
    if (!dir) return;
    spawnSync("runuser", ["-u", "postgres", "--", join(PG_BIN, "pg_ctl"), "-D", join(dir, "data"), "-m", "immediate", "stop"]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("accepts the generated settings: logical WAL, TLS, SCRAM, Citus set-command propagation", () => {
    expect(sql("SHOW wal_level")).toBe("logical");
    expect(sql("SHOW ssl")).toBe("on");
    expect(sql("SHOW password_encryption")).toBe("scram-sha-256");
    expect(sql("SHOW max_slot_wal_keep_size")).toBe("10GB");
    expect(sql("SELECT current_setting('citus.propagate_set_commands')")).toBe("local");
    expect(sql("SELECT current_setting('citus.shard_count')")).toBe(String(config.citus.shardCount));
    expect(sql("SELECT current_setting('citus.node_conninfo')")).toContain("sslmode=verify-full");
    const errors = sql("SELECT sourcefile || ':' || sourceline || ' ' || error FROM pg_file_settings WHERE error IS NOT NULL");
    expect(errors).toBe("");
  });

  it("lets Citus split shards with its own output plugin where the server restricts output plugins, and only then", () => {
    const knows = (setting: string) =>
      spawnSync("bash", ["-c", `set -euo pipefail; source '${dir}/bootstrap.sh'; postgres_knows_setting ${setting}`], { env: bootstrapEnv }).status;
    expect(knows("wal_level")).toBe(0);
    expect(knows("no_such_setting")).toBe(1);
    const generated = readFileSync(join(dir, "conf", "conf.d", "50-platform.conf"), "utf8");
    if (knows("output_plugin_libraries") !== 0) {
      // PostgreSQL before 15.19 decodes with any plugin and would not start with the line.
      expect(generated).not.toContain("output_plugin_libraries");
      return;
    }
    expect(sql("SHOW output_plugin_libraries")).toBe("pgoutput, citus");
    // In effect, not only written: logical decoding with a plugin left off the list is refused, pgoutput is allowed.
    expect(() => sql("SELECT pg_create_logical_replication_slot('probe_test_decoding', 'test_decoding', true)")).toThrow(
      /may not be used as an output plugin/,
    );
    expect(sql("SELECT slot_name FROM pg_create_logical_replication_slot('probe_pgoutput', 'pgoutput', true)")).toBe("probe_pgoutput");
  });

  it("parses pg_hba.conf without errors, superuser first restricted to the database subnet, everything else rejected last", () => {
    expect(sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")).toBe("0");
    const rules = sql("SELECT type || ' ' || array_to_string(database, ',') || ' ' || array_to_string(user_name, ',') || ' ' || coalesce(address, '-') || ' ' || auth_method FROM pg_hba_file_rules ORDER BY line_number").split("\n");
    expect(rules[0]).toBe("local all postgres - peer");
    // The exporter's role, by peer over the socket only: before the password rule for everyone else.
    expect(rules[1]).toBe("local all prometheus - peer");
    expect(rules[2]).toBe("local all all - scram-sha-256");
    expect(rules).toContain(`hostssl all postgres ${config.network.dataCidr.split("/")[0]} scram-sha-256`);
    expect(rules).toContain(`hostssl ${names.citusDatabase} all ${config.network.podsCidr.split("/")[0]} scram-sha-256`);
    expect(rules.at(-2)).toBe("host all all 0.0.0.0 reject");
    // No rule lets the superuser in over the network from outside the database subnet.
    const superuserIndex = rules.findIndex((r) => r.startsWith("hostssl all postgres 0.0.0.0 reject"));
    const clientIndex = rules.findIndex((r) => r.startsWith(`hostssl ${names.citusDatabase} all`));
    expect(superuserIndex).toBeGreaterThan(0);
    expect(superuserIndex).toBeLessThan(clientIndex);
  });

  it("gives postgres_exporter a role with pg_monitor and nothing more, which runs the platform's queries, and its config", () => {
    // The bootstrap's own psql, pointed at this server's socket.
    const psql = `PSQL=(runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 --quiet --no-align --tuples-only -h '${dir}' -p ${port})`;
    execFileSync("bash", ["-c", `set -euo pipefail; source '${dir}/bootstrap.sh'; ${psql}; create_monitoring_role; create_monitoring_role; configure_exporters`], { env: bootstrapEnv, stdio: "pipe" });
    expect(sql("SELECT rolsuper::text || rolcreaterole::text || rolbypassrls::text || rolcanlogin::text FROM pg_roles WHERE rolname = 'prometheus'")).toBe("falsefalsefalsetrue");
    expect(sql("SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'prometheus'")).toBe("pg_monitor");
    for (const [name, q] of Object.entries(EXPORTER_QUERIES).filter(([, q]) => !q.coordinatorOnly)) {
      expect(() => sql(`SET ROLE prometheus; ${q.query}`), name).not.toThrow();
    }
    expect(readFileSync(join(dir, "exporter", "queries.yaml"), "utf8").trim()).toBe(postgresExporterQueries().trim());
    const defaults = readFileSync(join(dir, "exporter.defaults"), "utf8");
    expect(defaults).toContain(`DATA_SOURCE_NAME='host=/var/run/postgresql port=${port} dbname=${names.citusDatabase} user=prometheus sslmode=disable'`);
    expect(defaults).toContain(`--web.listen-address=:${POSTGRES_EXPORTER_PORT} --extend.query-path=${join(dir, "exporter")}/queries.yaml`);
  });

  it("reports the standby slot's reserve as postgres_exporter reads it: shrinking with WAL, 0 once the slot is lost", () => {
    // The query postgres_exporter runs (as the prometheus role), against a real slot. The cap is lowered from the
    // generated 10GB so that a few seconds of WAL use it up.
    const reserve = () => {
      // psql prints SET's command tag first; the row is the last line.
      const out = sql(`SET ROLE prometheus; ${EXPORTER_QUERIES.standby_slot!.query}`).split("\n").at(-1)!;
      const [active, ratio] = out.split("|").map(Number);
      if (ratio === undefined || Number.isNaN(ratio)) throw new Error(`unexpected output of the exporter query: ${JSON.stringify(out)}`);
      return { active, ratio: ratio! };
    };
    const fill = () => sql("INSERT INTO slot_filler SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g; SELECT pg_switch_wal()");
    sql("ALTER SYSTEM SET max_slot_wal_keep_size = '96MB'");
    sql("SELECT pg_reload_conf()");
    sql("CREATE TABLE slot_filler (g int, pad text)");
    try {
      sql("SELECT pg_create_physical_replication_slot('standby', true)");
      const fresh = reserve();
      expect(fresh.active).toBe(0);
      expect(fresh.ratio).toBeGreaterThan(0.7);
      fill();
      const behind = reserve();
      expect(behind.ratio).toBeLessThan(fresh.ratio);
      expect(behind.ratio).toBeGreaterThan(0);
      for (let i = 0; i < 4; i++) fill();
      sql("CHECKPOINT");
      expect(sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'standby'")).toBe("lost");
      expect(reserve().ratio).toBe(0);
    } finally {
      sql("SELECT pg_drop_replication_slot('standby') FROM pg_replication_slots WHERE slot_name = 'standby'");
      sql("DROP TABLE slot_filler");
      sql("ALTER SYSTEM RESET max_slot_wal_keep_size");
      sql("SELECT pg_reload_conf()");
    }
  });

  it("rejects a TCP connection from an address outside the configured ranges", () => {
    const result = spawnSync("runuser", ["-u", "postgres", "--", "psql", "-X", "-h", "127.0.0.1", "-p", String(port), "-d", "postgres", "-c", "SELECT 1"], {
      encoding: "utf8",
      env: { ...process.env, PGCONNECT_TIMEOUT: "5", PGSSLMODE: "prefer" },
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/pg_hba\.conf rejects connection/);
  });

  it("points pgBackRest at the backups bucket with count-based full retention", () => {
    const conf = readFileSync(join(dir, "pgbackrest", "pgbackrest.conf"), "utf8");
    expect(conf).toContain("repo1-type=gcs");
    expect(conf).toContain(`repo1-gcs-bucket=${names.backupsBucket}`);
    expect(conf).toContain(`repo1-retention-full=${config.citus.fullBackupRetention}`);
    expect(conf).toContain(`[${config.prefix}-worker-0]`);
  });
});
