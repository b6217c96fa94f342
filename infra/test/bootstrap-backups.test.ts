/**
 * The backups of a Citus primary and what node_exporter reports of them, with real components: a PostgreSQL server
 * of the VMs' major version archiving WAL through the rendered archive_command, Debian's pgBackRest taking real
 * backups, jq, and Debian's node_exporter reading the textfile the bootstrap's metrics script writes.
 *
 * The rendered pgbackrest.conf points at the GCS bucket and the VM's paths; pgBackRest's own environment variables
 * (which override its configuration file) send the repository to a local directory and point it at this server's
 * data directory, port and socket. The stanza, the retention, the compression and the archive settings are the
 * generated ones.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformNames } from "@platform/config";
import { SCRAPE_JOBS } from "@platform/monitoring/catalog";
import { hermeticConfigs } from "./helpers.js";
import { synthesizedStack } from "./synthesized.js";
import { bootstrapEnv, exposedSamples, startupScriptOf, throwawayServerCertificate } from "./vm-fixtures.js";

const config = hermeticConfigs().find((c) => c.name === "production")!;
const names = platformNames(config);
const worker = names.citus.workers[0]!;
const major = String(config.citus.postgresMajor);
const PG_BIN = `/usr/lib/postgresql/${major}/bin`;
const have = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const requirements: [met: boolean, reason: string][] = [
  [existsSync(join(PG_BIN, "postgres")), `PostgreSQL ${major} server binaries not found in ${PG_BIN} (apt-get install postgresql-${major})`],
  [have("pgbackrest"), "pgbackrest not found (apt-get install pgbackrest)"],
  [have("jq"), "jq not found (apt-get install jq)"],
  [have("prometheus-node-exporter"), "prometheus-node-exporter not found (apt-get install prometheus-node-exporter)"],
  [have("systemd-analyze"), "systemd-analyze not found (apt-get install systemd): it checks the backup units"],
  [process.getuid?.() === 0, "needs root: the bootstrap runs pgBackRest as the postgres user, as it does on the VM"],
];
const skipReason = requirements.find(([met]) => !met)?.[1];
if (skipReason) console.warn(`skipping bootstrap-backups tests: ${skipReason}`);

const port = 28000 + (process.pid % 1000);
let dir: string;
let env: NodeJS.ProcessEnv;
let stanza: string;
const textfile = () => join(dir, "textfile", "pgbackrest.prom");

const asPostgres = (cmd: string, args: string[]) =>
  execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] });
const pgbackrest = (...args: string[]) => asPostgres("pgbackrest", [`--stanza=${stanza}`, ...args]);
const backups = () => (JSON.parse(pgbackrest("--output=json", "info")) as { backup: { type: string; label: string }[] }[])[0]!.backup;
const bootstrap = (body: string, extraEnv: NodeJS.ProcessEnv = {}) =>
  spawnSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "bootstrap.sh")}'; ${body}`], { encoding: "utf8", env: { ...env, ...extraEnv }, timeout: 120_000 });
const metricsScript = () => join(dir, "sbin", "citus-backup-metrics");

/** The unit's command lines, as systemd would run them. */
function unitCommands(kind: "full" | "diff"): { start: string[]; stopPost: string } {
  const unit = readFileSync(join(dir, "systemd", `pgbackrest-${kind}.service`), "utf8");
  return { start: /^ExecStart=(.+)$/m.exec(unit)![1]!.split(" "), stopPost: /^ExecStopPost=(.+)$/m.exec(unit)![1]! };
}

/** Samples of the textfile as node_exporter exposes them, by metric name with labels. */
async function scrapeNodeExporter(): Promise<{ samples: Map<string, number>; body: string }> {
  const listen = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port: p } = srv.address() as { port: number };
      srv.close(() => resolve(p));
    });
  });
  const exporter: ChildProcess = spawn("prometheus-node-exporter", [
    "--collector.disable-defaults", "--collector.textfile", `--collector.textfile.directory=${join(dir, "textfile")}`, `--web.listen-address=127.0.0.1:${listen}`,
  ], { stdio: "ignore" });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const body = await (await fetch(`http://127.0.0.1:${listen}/metrics`)).text();
        return { samples: exposedSamples(body), body };
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    exporter.kill();
  }
}

describe.skipIf(skipReason !== undefined)("a primary's backups and their metrics, with real pgBackRest and node_exporter", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "citus-backups-"));
    chmodSync(dir, 0o755);
    const production = synthesizedStack("production");
    writeFileSync(join(dir, "bootstrap.sh"), startupScriptOf(production!.json, "worker", worker.host));
    stanza = /^readonly STANZA='([^']+)'$/m.exec(readFileSync(join(dir, "bootstrap.sh"), "utf8"))![1]!;
    const data = join(dir, "data");
    env = {
      ...bootstrapEnv(dir),
      // pgBackRest reads the generated configuration; only the repository, the server's socket and data directory,
      // and its lock and log files move into this directory.
      PGBACKREST_CONFIG_PATH: join(dir, "pgbackrest"),
      PGBACKREST_REPO1_TYPE: "posix",
      PGBACKREST_REPO1_PATH: join(dir, "repo"),
      PGBACKREST_PG1_PATH: data,
      PGBACKREST_PG1_SOCKET_PATH: dir,
      PGBACKREST_PG1_PORT: String(port),
      PGBACKREST_LOCK_PATH: join(dir, "lock"),
      PGBACKREST_LOG_PATH: join(dir, "log"),
      // citus-is-leader asks this server, not the VM's default socket.
      PGHOST: dir,
      PGPORT: String(port),
    };
    const rendered = spawnSync("bash", ["-c", `set -euo pipefail; source '${join(dir, "bootstrap.sh")}'; write_pgbackrest_config`], { encoding: "utf8", env });
    if (rendered.status !== 0) throw new Error(rendered.stderr);
    throwawayServerCertificate(join(dir, "tls"));
    execFileSync("mkdir", ["-p", join(dir, "repo"), join(dir, "lock"), join(dir, "log")]);
    execFileSync("chown", ["-R", "postgres:postgres", dir]);

    // The cluster as the bootstrap creates it (data checksums on, which pgBackRest verifies page by page), on the
    // generated settings with archive_mode and archive_command as written; Citus is not installed here.
    asPostgres(join(PG_BIN, "initdb"), ["-D", data, "--data-checksums", "--auth-local=trust", "-U", "postgres"]);
    // The WAL settings Patroni gives the member, from its rendered configuration (bootstrap-patroni.test.ts runs
    // Patroni itself on it).
    const patroni = JSON.parse(/^readonly PATRONI_CONFIG='(.*)'$/m.exec(readFileSync(join(dir, "bootstrap.sh"), "utf8"))![1]!.replace(/'\\''/g, "'"));
    const parameters = { ...patroni.bootstrap.dcs.postgresql.parameters, ...patroni.postgresql.parameters } as Record<string, string | number>;
    appendFileSync(join(data, "postgresql.conf"), [
      ...["wal_level", "archive_mode", "archive_command", "archive_timeout", "wal_compression"].map((name) => `${name} = '${String(parameters[name]).replace(/'/g, "''")}'`),
      "shared_preload_libraries = 'pg_stat_statements'",
      `port = ${port}`,
      "listen_addresses = ''",
      `unix_socket_directories = '${dir}'`,
      "shared_buffers = 32MB",
      "",
    ].join("\n"));
    // The server inherits the pgBackRest variables, so its archive_command pushes WAL to the local repository.
    asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data, "-l", join(dir, "server.log"), "-w", "start"]);
  }, 180_000);

  afterAll(() => {
    if (!dir) return;
    spawnSync("runuser", ["-u", "postgres", "--", join(PG_BIN, "pg_ctl"), "-D", join(dir, "data"), "-m", "immediate", "stop"], { env });
    rmSync(dir, { recursive: true, force: true });
  });

  it("archives WAL with the generated archive_command (the server loaded it as written)", () => {
    const psql = ["-X", "-At", "-h", dir, "-p", String(port), "-d", "postgres", "-c"];
    expect(asPostgres("psql", [...psql, "SHOW archive_command"]).trim()).toBe(`pgbackrest --stanza=${stanza} archive-push %p`);
  });

  it("creates the stanza and takes a full backup on the first boot, and writes what node_exporter exposes", async () => {
    const before = Math.floor(Date.now() / 1000);
    const first = bootstrap("configure_backups");
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain(`creating pgBackRest stanza ${stanza}`);
    expect(backups().map((b) => b.type)).toEqual(["full"]);

    const { samples } = await scrapeNodeExporter();
    // node_exporter parsed the file (a malformed one sets this to 1 and exposes none of it).
    expect(samples.get("node_textfile_scrape_error")).toBe(0);
    expect(samples.get(`pgbackrest_stanza_status_code{stanza="${stanza}"}`)).toBe(0);
    const full = samples.get(`pgbackrest_backup_last_completion_timestamp_seconds{stanza="${stanza}",type="full"}`)!;
    expect(full).toBeGreaterThanOrEqual(before);
    expect(full).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(samples.get(`pgbackrest_backup_error{stanza="${stanza}",type="full"}`)).toBe(0);
    // No diff exists yet, so no diff series: an absent type is not reported as finished at time 0.
    expect([...samples.keys()].filter((k) => k.includes('type="diff"'))).toEqual([]);
  });

  it("exports exactly the pgbackrest_* metrics the monitoring catalog lists for the citus-node job", async () => {
    const { body } = await scrapeNodeExporter();
    const exported = [...new Set([...body.matchAll(/^(pgbackrest_[a-z_]+)[{ ]/gm)].map((m) => m[1]!))].sort();
    const catalogued = SCRAPE_JOBS["citus-node"].filter((m) => m.startsWith("pgbackrest_")).sort();
    expect(exported).toEqual(catalogued);
  });

  it("installs units that take the backup and then rewrite the metrics, whether the backup succeeded or not", () => {
    const diff = unitCommands("diff");
    expect(diff.start).toEqual(["/usr/bin/pgbackrest", `--stanza=${stanza}`, "--type=diff", "backup"]);
    // "+": run as root, which may write node_exporter's directory, although the unit's User= is postgres.
    expect(diff.stopPost).toBe(`+${metricsScript()}`);
    // Installed on every member of the group; it runs only where the leader is (a replica skips it, not fails it).
    const leaderCheck = join(dir, "sbin", "citus-is-leader");
    expect(readFileSync(join(dir, "systemd", "pgbackrest-diff.service"), "utf8")).toContain(`ExecCondition=${leaderCheck}`);
    const onLeader = spawnSync("runuser", ["-u", "postgres", "--", leaderCheck], { encoding: "utf8", env });
    expect(onLeader.status, onLeader.stdout + onLeader.stderr).toBe(0);
    const elsewhere = spawnSync("runuser", ["-u", "postgres", "--", leaderCheck], { encoding: "utf8", env: { ...env, PGPORT: "1" } });
    expect(elsewhere.status).toBe(1);
    expect(elsewhere.stdout).toContain("not this group's leader (pg_is_in_recovery: no answer); skipped");
    expect(readFileSync(join(dir, "systemd", "pgbackrest-diff.timer"), "utf8")).toContain("OnCalendar=Mon..Sat *-*-* 01:00:00");
    expect(readFileSync(join(dir, "systemd", "pgbackrest-full.timer"), "utf8")).toContain("OnCalendar=Sun *-*-* 01:00:00");
    const verify = spawnSync("systemd-analyze", ["verify", join(dir, "systemd", "pgbackrest-diff.service"), join(dir, "systemd", "pgbackrest-diff.timer")], { encoding: "utf8" });
    // systemd-analyze reports the unit's problems; an After= on a unit this machine lacks is not one of ours.
    expect(verify.stderr.split("\n").filter((l) => l && !l.includes("postgresql@"))).toEqual([]);
  });

  it("reports the diff backup the timer's unit takes, next to the full one", async () => {
    const { start, stopPost } = unitCommands("diff");
    asPostgres(start[0]!.replace("/usr/bin/", ""), start.slice(1));
    execFileSync(stopPost.slice(1), { env, stdio: "pipe" });
    const { samples } = await scrapeNodeExporter();
    const full = samples.get(`pgbackrest_backup_last_completion_timestamp_seconds{stanza="${stanza}",type="full"}`)!;
    const diff = samples.get(`pgbackrest_backup_last_completion_timestamp_seconds{stanza="${stanza}",type="diff"}`)!;
    expect(diff).toBeGreaterThanOrEqual(full);
    expect(samples.get(`pgbackrest_backup_error{stanza="${stanza}",type="diff"}`)).toBe(0);
  });

  it("takes no new full backup on a later boot: the stanza is there and healthy", () => {
    const count = backups().length;
    const again = bootstrap("configure_backups");
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("creating pgBackRest stanza");
    expect(backups().length).toBe(count);
  });

  it("reports a repository without the stanza by its status code, with no backup timestamps", async () => {
    const empty = join(dir, "empty-repo");
    execFileSync("install", ["-d", "-o", "postgres", empty]);
    const run = spawnSync(metricsScript(), { encoding: "utf8", env: { ...env, PGBACKREST_REPO1_PATH: empty } });
    expect(run.status, run.stderr).toBe(0);
    const { samples } = await scrapeNodeExporter();
    expect(samples.get(`pgbackrest_stanza_status_code{stanza="${stanza}"}`)).toBe(1);
    expect([...samples.keys()].filter((k) => k.startsWith("pgbackrest_backup_"))).toEqual([]);
    // Back to the real repository for the tests after this one.
    execFileSync(metricsScript(), { env, stdio: "pipe" });
  });

  it("keeps the last file, whole, when pgBackRest cannot answer, so its timestamps age into the alert", () => {
    const before = readFileSync(textfile(), "utf8");
    const run = spawnSync(metricsScript(), { encoding: "utf8", env: { ...env, PGBACKREST_REPO1_TYPE: "nonsense" } });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/repo1-type/);
    expect(readFileSync(textfile(), "utf8")).toBe(before);
    // No half-written temporary file is left for node_exporter (it reads *.prom only, but litter is litter).
    expect(readdirSync(join(dir, "textfile"))).toEqual(["pgbackrest.prom"]);
  });

  it("does not fail the boot when the metrics cannot be written, and says so", () => {
    const fakeBin = join(dir, "fake-bin");
    execFileSync("mkdir", ["-p", fakeBin]);
    writeFileSync(join(fakeBin, "jq"), "#!/bin/sh\necho 'jq: simulated failure' >&2\nexit 5\n");
    chmodSync(join(fakeBin, "jq"), 0o755);
    const before = readFileSync(textfile(), "utf8");
    const boot = bootstrap("configure_backups", { PATH: `${fakeBin}:${process.env.PATH}` });
    expect(boot.status, boot.stderr).toBe(0);
    expect(boot.stderr).toContain(`could not write the backup metrics to ${join(dir, "textfile")}`);
    expect(readFileSync(textfile(), "utf8")).toBe(before);
  });

  // Last: it rewinds this server. Citus writes a cluster-wide restore point with pg_create_restore_point on every
  // node (citus_create_restore_point.c); on one node the restore is this, run on each with the same name.
  describe("restoring the node to a cluster-wide restore point (citus-restore-to)", () => {
    const data = () => join(dir, "data");
    const restoreCommand = () => join(dir, "sbin", "citus-restore-to");
    const sql = (query: string) => asPostgres("psql", ["-X", "-At", "-h", dir, "-p", String(port), "-d", "postgres", "-c", query]).trim();
    const pgCtl = (...args: string[]) => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", data(), ...args]);
    const restore = (name: string) => spawnSync(restoreCommand(), [name], { encoding: "utf8", env, timeout: 120_000 });
    const utcName = (d: Date) => `citus-${d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}`;

    beforeAll(() => {
      // The command finds the data directory where the VM has it, under the header's data mount; here the mount
      // holds a link to this server's directory.
      const mount = join(dir, "mnt");
      execFileSync("mkdir", ["-p", join(mount, major)]);
      symlinkSync(data(), join(mount, major, "main"));
      const script = join(dir, "restore-bootstrap.sh");
      const rendered = readFileSync(join(dir, "bootstrap.sh"), "utf8");
      const vmMount = "readonly DATA_MOUNT='/var/lib/postgresql'";
      expect(rendered).toContain(vmMount);
      writeFileSync(script, rendered.replace(vmMount, `readonly DATA_MOUNT='${mount}'`));
      const installed = spawnSync("bash", ["-c", `set -euo pipefail; source '${script}'; install_restore_command`], { encoding: "utf8", env });
      if (installed.status !== 0) throw new Error(installed.stderr);
    });

    it("refuses a name that is not a restore point's, and a running server, changing nothing", () => {
      expect(restore("yesterday").stderr).toContain("usage: citus-restore-to citus-YYYYMMDDTHHMMSSZ");
      expect(restore("citus-20261399T000000Z").stderr).toContain("does not name a real time");
      const running = restore(utcName(new Date()));
      expect(running.status).toBe(2);
      expect(running.stderr).toContain(`PostgreSQL is running on ${join(dir, "mnt", major, "main")}: stop Patroni first`);
      expect(sql("SELECT 1")).toBe("1");
    });

    it("brings the node back to the point: what committed before it is there, what committed after it is not", async () => {
      sql("CREATE TABLE restore_probe (v text)");
      sql("INSERT INTO restore_probe VALUES ('before')");
      // Restore point names carry their time to the second; the newest backup finished at least a second earlier.
      await new Promise((r) => setTimeout(r, 1_100));
      const name = utcName(new Date());
      sql(`SELECT pg_create_restore_point('${name}')`);
      sql("INSERT INTO restore_probe VALUES ('after')");
      // Switches WAL and waits until the repository has it, as archive_timeout does within a minute on the VMs.
      pgbackrest("check");
      // A backup that finished after the point: pgBackRest would restore the newest one unless told otherwise, and
      // from it the point cannot be reached.
      const beforePoint = backups().at(-1)!.label;
      pgbackrest("--type=diff", "backup");
      expect(backups().at(-1)!.label).not.toBe(beforePoint);
      pgCtl("-m", "fast", "-w", "stop");

      const tooEarly = restore("citus-20000101T000000Z");
      expect(tooEarly.status).toBe(2);
      expect(tooEarly.stderr).toContain(`no backup of ${stanza} finished before citus-20000101T000000Z`);

      const run = restore(name);
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(`restoring ${stanza} from backup ${beforePoint}, then replaying WAL to restore point ${name}`);

      pgCtl("-l", join(dir, "server.log"), "-w", "start");
      for (let i = 0; sql("SELECT pg_is_in_recovery()") !== "f"; i++) {
        if (i > 300) throw new Error("the restored server never left recovery");
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(sql("SELECT string_agg(v, ',') FROM restore_probe")).toBe("before");
      expect(readFileSync(join(dir, "server.log"), "utf8")).toContain(`recovery stopping at restore point "${name}"`);
    }, 180_000);
  });
});
