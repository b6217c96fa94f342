/**
 * What the Citus bootstrap does with the data disk of a standby VM, and with a data disk that outlived its VM's boot
 * disk, on real PostgreSQL clusters of the VMs' major version: a real primary, real pg_basebackup clones, a real promotion, and
 * postgresql-common's own pg_createcluster / pg_ctlcluster (pointed at a temporary /etc by PG_CLUSTER_CONF_ROOT).
 *
 * The bootstrap runs on every boot. After a failover (docs/runbooks/citus-failover.md) the promoted standby still has
 * the standby role in its metadata, so its next boot must keep its data and serve it as the primary, never clone
 * over it. Only the steps that need a VM (disk, packages, certificate, systemd, Secret Manager) are stubbed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformNames } from "@platform/config";
import type { CitusBootstrapRole } from "../src/citus/startup-script.js";
import { hermeticConfigs, synthesizeAll } from "./helpers.js";
import { bootstrapEnv, startupScriptOf, throwawayServerCertificate } from "./vm-fixtures.js";

const config = hermeticConfigs().find((c) => c.name === "production")!;
const names = platformNames(config);
// The major version the VMs run: the bootstrap's paths (/etc/postgresql/<major>/main, <mount>/<major>/main) and this
// machine's server binaries follow it.
const major = String(config.citus.postgresMajor);
const PG_BIN = `/usr/lib/postgresql/${major}/bin`;
const skipReason = !existsSync(join(PG_BIN, "postgres"))
  ? `PostgreSQL ${major} server binaries not found in ${PG_BIN} (apt-get install postgresql-${major})`
  : !existsSync("/usr/bin/pg_createcluster")
    ? "postgresql-common's pg_createcluster not found (apt-get install postgresql-common)"
    : process.getuid?.() !== 0
      ? "needs root: the bootstrap chowns files to the postgres user, as it does on the VM"
      : undefined;
if (skipReason) console.warn(`skipping bootstrap-standby tests: ${skipReason}`);

const basePort = 27000 + (process.pid % 1000) * 3;
const primaryPort = basePort;
let dir: string;
let primaryData: string;

const asPostgres = (cmd: string, args: string[]) =>
  execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const pg = (tool: string, args: string[]) => asPostgres(join(PG_BIN, tool), args);
const sql = (port: number, query: string) => asPostgres("psql", ["-X", "-At", "-h", dir, "-p", String(port), "-d", "postgres", "-c", query]).trim();
const controlData = (data: string) => {
  const out = execFileSync(join(PG_BIN, "pg_controldata"), [data], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  return {
    state: /^Database cluster state:\s*(.+)$/m.exec(out)![1],
    timeline: Number(/^Latest checkpoint's TimeLineID:\s*(\d+)$/m.exec(out)![1]),
    checksums: Number(/^Data page checksum version:\s*(\d+)$/m.exec(out)![1]),
  };
};

/** Every path under `root` with its size: what "the bootstrap deleted nothing" is checked against. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${relative(root, p)} ${statSync(p).size}`);
    }
  };
  walk(root);
  return out.sort();
}

/** A data disk mount point of its own for one scenario, with the PGDATA path the bootstrap derives from it. */
function newMount(name: string): { mount: string; pgdata: string } {
  const mount = join(dir, name);
  mkdirSync(join(mount, major), { recursive: true });
  execFileSync("chown", ["-R", "postgres:postgres", mount]);
  return { mount, pgdata: join(mount, major, "main") };
}

/** postgresql-common's configuration directory of the cluster on `mount` (its private /etc/postgresql). */
const confDir = (mount: string) => join(mount, "etc", major, "main");

/** A pg_basebackup clone of the primary (or of the server on `from`), as the bootstrap makes one (no -R). */
function cloneInto(pgdata: string, { standbySignal, from = primaryPort }: { standbySignal: boolean; from?: number }): void {
  pg("pg_basebackup", ["-h", dir, "-p", String(from), "-D", pgdata, "-X", "stream", "--checkpoint=fast"]);
  if (standbySignal) writeFileSync(join(pgdata, "standby.signal"), "");
  execFileSync("chown", ["-R", "postgres:postgres", pgdata]);
}

/** The clone's own config files let the test start it with pg_ctl; a Debian primary's clone carries none. */
function dropDataDirConfig(pgdata: string): void {
  for (const f of ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"]) rmSync(join(pgdata, f), { force: true });
}

function startClone(pgdata: string, port: number): void {
  pg("pg_ctl", ["-D", pgdata, "-l", join(pgdata, "..", "server.log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=''`, "start"]);
}

/** A standby that has been promoted (failover step 3), then stopped cleanly or lost with the VM. */
function promotedNode(name: string, port: number, stop: "fast" | "immediate"): { mount: string; pgdata: string } {
  const node = newMount(name);
  cloneInto(node.pgdata, { standbySignal: true });
  startClone(node.pgdata, port);
  pg("pg_ctl", ["-D", node.pgdata, "-w", "promote"]);
  sql(port, "INSERT INTO failover_marker VALUES ('written after promotion')");
  pg("pg_ctl", ["-D", node.pgdata, "-m", stop, "-w", "stop"]);
  dropDataDirConfig(node.pgdata);
  return node;
}

/**
 * The startup script a production VM receives, as Terraform renders it: the test runs exactly what that VM runs. By
 * default the first worker's pair; `host` names another node's (its primary's DNS name).
 */
let production: ReturnType<typeof synthesizeAll>[number] | undefined;
function renderScript(role: CitusBootstrapRole, host = names.citus.workers[0]!.host): string {
  production ??= synthesizeAll([config])[0]!;
  return startupScriptOf(production.json, role, host);
}

/**
 * Sources the rendered script with `mount` as its data disk (the header's DATA_MOUNT, from which the body derives
 * PGDATA) and a private /etc/postgresql for postgresql-common, and runs `body` under the VM's shell options.
 */
function bootstrap(role: CitusBootstrapRole, mount: string, body: string, host?: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const script = join(mount, `bootstrap-${role}.sh`);
  const rendered = renderScript(role, host);
  const vmMount = "readonly DATA_MOUNT='/var/lib/postgresql'";
  if (!rendered.includes(vmMount)) throw new Error(`the rendered header no longer has ${vmMount}: update this test`);
  writeFileSync(script, rendered.replace(vmMount, `readonly DATA_MOUNT='${mount}'`));
  return spawnSync("bash", ["-c", `set -euo pipefail; source '${script}'; ${body}`], {
    encoding: "utf8",
    // A clone's retry loop runs for 30 minutes on a VM; here a run that reaches it has already gone wrong.
    timeout: 60_000,
    env: { ...vmEnv(mount), ...extraEnv },
  });
}

/** The VM's paths for a scenario: its own under `mount`, the certificate shared, postgresql-common's /etc its own. */
const vmEnv = (mount: string): NodeJS.ProcessEnv => ({
  ...bootstrapEnv(mount, { PGCONF_DIR: confDir(mount), TLS_DIR: join(dir, "tls") }),
  PG_CLUSTER_CONF_ROOT: join(mount, "etc"),
  TMPDIR: mount,
});

/**
 * `main` with the VM-only steps replaced by stubs that record their calls. PostgreSQL is started through
 * postgresql-common as on the VM (pg_ctlcluster reads the registration and the generated conf.d); a last conf.d
 * file overrides only what this machine needs: no Citus library (not installed here), a private port and socket.
 */
function runMain(role: CitusBootstrapRole, mount: string, port: number, host?: string) {
  const stubs = ["exit_if_fenced", "mount_data_disk", "install_packages", "issue_server_certificate", "write_pgpass", "configure_backups", "configure_exporters", "clone_from_primary"];
  return runStubbed(role, mount, port, "main", { stubs, host });
}

/** start_postgres as on the VM, through postgresql-common, with a last conf.d file for this machine; records its call. */
function testStartPostgres(calls: string, port: number): string {
  const overrides = [`port = ${port}`, `unix_socket_directories = '${dir}'`, "listen_addresses = ''", "shared_preload_libraries = 'pg_stat_statements'", "shared_buffers = 32MB", "archive_mode = off"];
  return `start_postgres() { echo start_postgres >>'${calls}'; printf '%s\n' ${overrides.map((v) => `"${v}"`).join(" ")} >"$PGCONF/conf.d/99-test.conf"; pg_ctlcluster ${major} main start; }`;
}

/** `body` with the functions in `stubs` (and any `definitions`) replaced, and start_postgres as runMain has it. */
function runStubbed(role: CitusBootstrapRole, mount: string, port: number, body: string, o: { stubs: string[]; definitions?: string; host?: string; env?: NodeJS.ProcessEnv }) {
  const calls = join(mount, "calls");
  rmSync(calls, { force: true });
  const stubs = o.stubs.map((fn) => `${fn}() { echo ${fn} >>'${calls}'; }`).join("; ");
  const result = bootstrap(role, mount, [stubs, testStartPostgres(calls, port), o.definitions ?? "", body].filter(Boolean).join("; "), o.host, o.env);
  return { ...result, calls: existsSync(calls) ? readFileSync(calls, "utf8").trim().split("\n") : [] };
}

const stopCluster = (mount: string) =>
  spawnSync("pg_ctlcluster", [major, "main", "stop", "-m", "immediate"], { env: { ...process.env, PG_CLUSTER_CONF_ROOT: join(mount, "etc") } });

describe.skipIf(skipReason !== undefined)("a standby's data disk across reboots and failover, on real PostgreSQL 15", () => {
  const started: string[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "citus-standby-"));
    chmodSync(dir, 0o755);
    // The server certificate the bootstrap would have issued from the platform CA; a throwaway here.
    throwawayServerCertificate(join(dir, "tls"));
    execFileSync("chown", ["-R", "postgres:postgres", dir]);

    primaryData = join(dir, "primary");
    pg("initdb", ["-D", primaryData, "--auth-local=trust", "-U", "postgres"]);
    pg("pg_ctl", ["-D", primaryData, "-l", join(dir, "primary.log"), "-w", "-o", `-p ${primaryPort} -k ${dir} -c listen_addresses=''`, "start"]);
    sql(primaryPort, "CREATE TABLE failover_marker (note text); INSERT INTO failover_marker VALUES ('written on the old primary')");
  }, 120_000);

  afterAll(() => {
    if (!dir) return;
    for (const mount of started) stopCluster(mount);
    spawnSync("runuser", ["-u", "postgres", "--", join(PG_BIN, "pg_ctl"), "-D", primaryData, "-m", "immediate", "stop"]);
    rmSync(dir, { recursive: true, force: true });
  });

  describe("reading the data disk", () => {
    const state = (mount: string) => bootstrap("standby", mount, "standby_data_state");

    it("reads a new disk and a clone cut short as empty, a streaming standby's clone as a standby", () => {
      const fresh = newMount("fresh");
      expect(state(fresh.mount).stdout.trim()).toBe("empty");

      const cut = newMount("cut-short");
      cloneInto(cut.pgdata, { standbySignal: false });
      expect(existsSync(join(cut.pgdata, "backup_label"))).toBe(true);
      expect(state(cut.mount).stdout.trim()).toBe("empty");
      // pg_basebackup sends pg_control last: a clone interrupted before it has none.
      unlinkSync(join(cut.pgdata, "global", "pg_control"));
      expect(state(cut.mount).stdout.trim()).toBe("empty");

      const standby = newMount("standby");
      cloneInto(standby.pgdata, { standbySignal: true });
      expect(state(standby.mount).stdout.trim()).toBe("standby");
    });

    it("reads a promoted standby as promoted, stopped cleanly or lost with its VM", () => {
      const clean = promotedNode("promoted-clean", basePort + 1, "fast");
      expect(controlData(clean.pgdata)).toMatchObject({ state: "shut down", timeline: 2 });
      expect(state(clean.mount).stdout.trim()).toBe("promoted");

      const crashed = promotedNode("promoted-crashed", basePort + 1, "immediate");
      expect(controlData(crashed.pgdata).state).toBe("in production");
      expect(state(crashed.mount).stdout.trim()).toBe("promoted");
    });

    it("stops, deleting nothing, on a cluster it cannot place", () => {
      // A standby lost mid-recovery whose standby.signal is gone: neither a standby nor a promoted node.
      const odd = newMount("odd");
      cloneInto(odd.pgdata, { standbySignal: true });
      startClone(odd.pgdata, basePort + 1);
      pg("pg_ctl", ["-D", odd.pgdata, "-m", "immediate", "-w", "stop"]);
      unlinkSync(join(odd.pgdata, "standby.signal"));
      expect(controlData(odd.pgdata).state).toBe("in archive recovery");
      const before = snapshot(odd.pgdata);

      const result = bootstrap("standby", odd.mount, "clone_from_primary");
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("in state 'in archive recovery' on timeline 1 without standby.signal; left as it is");
      expect(snapshot(odd.pgdata)).toEqual(before);
    });
  });

  it("never clones over a promoted node: the live data stays", () => {
    const node = promotedNode("no-clone", basePort + 1, "fast");
    // The boot disk is the one the standby booted from before: its configuration directory is there.
    mkdirSync(join(confDir(node.mount), "conf.d"), { recursive: true });
    const before = snapshot(node.pgdata);
    const result = bootstrap("standby", node.mount, "clone_from_primary");
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`refusing to clone ${names.citus.workers[0]!.host} over ${node.pgdata}: this node has been promoted`);
    expect(snapshot(node.pgdata)).toEqual(before);
  });

  it("boots a promoted standby as the primary: registered, started on its own data, backed up, never cloned", () => {
    const node = promotedNode("promoted-boot", basePort + 1, "fast");
    const result = runMain("standby", node.mount, basePort + 2);
    started.push(node.mount);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls).toEqual(["exit_if_fenced", "mount_data_disk", "install_packages", "issue_server_certificate", "write_pgpass", "start_postgres", "configure_backups", "configure_exporters"]);
    expect(result.stderr).toContain("promoted: serving as the primary");

    // postgresql-common knows the cluster (the boot disk was new) and it runs on the data that was promoted.
    const conf = readFileSync(join(confDir(node.mount), "postgresql.conf"), "utf8");
    expect(conf).toContain(`data_directory = '${node.pgdata}'`);
    expect(conf).toContain("include_dir = 'conf.d'");
    expect(sql(basePort + 2, "SELECT pg_is_in_recovery()")).toBe("f");
    expect(sql(basePort + 2, "SELECT string_agg(note, ', ' ORDER BY note) FROM failover_marker")).toBe("written after promotion, written on the old primary");
    // The generated settings are loaded, without a primary_conninfo pointing at the DNS name it now answers to.
    expect(sql(basePort + 2, "SHOW wal_level")).toBe("logical");
    expect(readFileSync(join(confDir(node.mount), "conf.d", "50-platform.conf"), "utf8")).not.toContain("primary_conninfo");
    expect(sql(basePort + 2, "SHOW primary_conninfo")).toBe("");
    // The throwaway cluster used for the registration is gone.
    expect(readdirSync(node.mount).filter((f) => f.startsWith("citus-register."))).toEqual([]);
    // A worker adds no workers and writes no cluster-wide restore points; every node can be restored to one.
    expect(existsSync(join(node.mount, "sbin", "citus-join-workers"))).toBe(false);
    expect(existsSync(join(node.mount, "systemd", "citus-restore-point.timer"))).toBe(false);
    expect(readFileSync(join(node.mount, "sbin", "citus-restore-to"), "utf8")).toContain(`readonly STANZA=${config.prefix}-worker-`);
    // Every boot installs the rebuild command, which runs this VM's own startup script from the metadata.
    const rebuildCommand = join(node.mount, "sbin", "citus-rebuild-standby");
    expect(spawnSync("bash", ["-n", rebuildCommand]).status).toBe(0);
    expect(readFileSync(rebuildCommand, "utf8")).toMatch(/instance\/attributes\/startup-script\n[\s\S]*source "\$script"\nrebuild_as_standby "\$@"\n$/);
    stopCluster(node.mount);
  });

  it("boots a promoted coordinator standby as the coordinator, which keeps adding the configured workers", () => {
    const node = promotedNode("promoted-coordinator", basePort + 1, "fast");
    const result = runMain("standby", node.mount, basePort + 2, names.citus.coordinator.host);
    started.push(node.mount);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain(`promoted: serving as the primary for ${names.citus.coordinator.host}`);
    // The join script and its unit, as the coordinator has them: every configured worker, by DNS name.
    const joinScript = readFileSync(join(node.mount, "sbin", "citus-join-workers"), "utf8");
    expect(joinScript).toContain(`readonly WORKER_HOSTS=( ${names.citus.workers.map((w) => w.host).join(" ")} )`);
    expect(joinScript).toContain(`COORDINATOR_HOST=${names.citus.coordinator.host} PG_PORT=${names.postgresPort}`);
    expect(readFileSync(join(node.mount, "systemd", "citus-join-workers.service"), "utf8")).toContain(`ExecStart=${join(node.mount, "sbin", "citus-join-workers")}`);
    expect(spawnSync("bash", ["-n", join(node.mount, "sbin", "citus-join-workers")]).status).toBe(0);
    // And it writes the cluster-wide restore points its old primary wrote.
    expect(readFileSync(join(node.mount, "systemd", "citus-restore-point.timer"), "utf8")).toContain(`OnUnitActiveSec=${config.citus.restorePointIntervalMinutes}min`);
    expect(spawnSync("bash", ["-n", join(node.mount, "sbin", "citus-restore-point")]).status).toBe(0);
    stopCluster(node.mount);
  });

  it("boots a streaming standby after its boot disk was replaced: registered and streaming settings, no clone, no backups", () => {
    const node = newMount("standby-boot");
    cloneInto(node.pgdata, { standbySignal: true });
    dropDataDirConfig(node.pgdata);
    const result = runMain("standby", node.mount, basePort + 2);
    started.push(node.mount);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls).toEqual(["exit_if_fenced", "mount_data_disk", "install_packages", "issue_server_certificate", "write_pgpass", "start_postgres", "configure_exporters"]);
    expect(readFileSync(join(confDir(node.mount), "conf.d", "50-platform.conf"), "utf8")).toContain(
      `primary_conninfo = 'host=${names.citus.workers[0]!.host} port=${names.postgresPort} user=replicator`,
    );
    expect(sql(basePort + 2, "SELECT pg_is_in_recovery()")).toBe("t");
    stopCluster(node.mount);
  });

  it("clones a standby's new disk before registering it, and never initdb's a standby", () => {
    const node = newMount("standby-new");
    const result = runMain("standby", node.mount, basePort + 2);
    // clone_from_primary is stubbed, so nothing is there to register: the bootstrap stops rather than make data.
    expect(result.calls).toContain("clone_from_primary");
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("no cluster in");
    expect(existsSync(join(node.pgdata, "PG_VERSION"))).toBe(false);
  });

  describe("citus-rebuild-standby: the fenced former primary becomes the promoted node's standby", () => {
    const oldPort = basePort + 1;
    const newPort = basePort + 2;
    let promoted: { mount: string; pgdata: string };

    /**
     * A pair after a failover: the old primary (its own data on timeline 1, registered and configured by the
     * bootstrap as a worker), and its standby promoted to timeline 2, running, with a write the old one never saw.
     */
    function failedOverPair(name: string): { mount: string; pgdata: string } {
      const old = newMount(`${name}-old`);
      cloneInto(old.pgdata, { standbySignal: false });
      startClone(old.pgdata, oldPort);
      sql(oldPort, "INSERT INTO failover_marker VALUES ('written on the old primary before the failover')");
      promoted = newMount(`${name}-promoted`);
      cloneInto(promoted.pgdata, { standbySignal: true, from: oldPort });
      startClone(promoted.pgdata, newPort);
      pg("pg_ctl", ["-D", promoted.pgdata, "-w", "promote"]);
      sql(newPort, "INSERT INTO failover_marker VALUES ('written on the promoted node')");
      pg("pg_ctl", ["-D", old.pgdata, "-m", "fast", "-w", "stop"]);
      dropDataDirConfig(old.pgdata);
      const configured = bootstrap("worker", old.mount, "register_cluster && write_postgres_config");
      if (configured.status !== 0) throw new Error(configured.stderr);
      return old;
    }

    const rebuild = (mount: string, fenced: string, source = newPort, args = "") =>
      runStubbed("worker", mount, oldPort, `rebuild_as_standby ${args}`, {
        stubs: ["mount_data_disk"],
        definitions: `fence_flag() { printf '%s' '${fenced}'; }`,
        env: { BOOTSTRAP_REBUILD_SOURCE: `host=${dir} port=${source} user=postgres sslmode=disable` },
      });
    const stopPromoted = () => pg("pg_ctl", ["-D", promoted.pgdata, "-m", "immediate", "-w", "stop"]);

    it("clones the promoted node over the superseded cluster, with a new slot, and streams from it", () => {
      const old = failedOverPair("rebuild");
      expect(controlData(old.pgdata)).toMatchObject({ state: "shut down", timeline: 1 });
      const result = rebuild(old.mount, "true");
      started.push(old.mount);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain("discarding the superseded cluster");
      expect(result.stderr).toContain("(timeline 1;");
      expect(sql(oldPort, "SELECT pg_is_in_recovery()")).toBe("t");
      expect(sql(oldPort, "SELECT string_agg(note, ', ' ORDER BY note) FROM failover_marker")).toContain("written on the promoted node");
      // The promoted node had no slot for a standby (it was one); the rebuild created it and streams through it.
      expect(sql(newPort, "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby'")).toBe("t");
      expect(readFileSync(join(old.pgdata, "postgresql.auto.conf"), "utf8")).toContain("primary_slot_name = 'standby'");
      // Rerun on the standby it made: nothing to rebuild, it is started as it is.
      stopCluster(old.mount);
      const again = rebuild(old.mount, "true");
      expect(again.status, again.stderr).toBe(0);
      expect(again.stderr).toContain("already holds a standby copy");
      expect(sql(oldPort, "SELECT pg_is_in_recovery()")).toBe("t");
      stopCluster(old.mount);
      stopPromoted();
    });

    it("runs as the command an SRE types: citus-rebuild-standby fetches the VM's startup script and rebuilds", () => {
      const old = failedOverPair("command");
      expect(bootstrap("worker", old.mount, "install_rebuild_command").status).toBe(0);
      // The metadata server, scripted: this VM's startup script (with the disk and start steps this machine cannot
      // run replaced, appended after the body), and the fencing flag.
      const served = join(old.mount, "served-startup-script");
      writeFileSync(served, `${readFileSync(join(old.mount, "bootstrap-worker.sh"), "utf8")}\nmount_data_disk() { :; }\n${testStartPostgres(join(old.mount, "calls"), oldPort)}\n`);
      const fakeBin = join(old.mount, "fake-bin");
      mkdirSync(fakeBin);
      writeFileSync(join(fakeBin, "curl"), `#!/bin/bash
out=""; for ((i = 1; i <= $#; i++)); do if [[ "\${!i}" == -o ]]; then j=$((i + 1)); out="\${!j}"; fi; done
case "\${@: -1}" in
  */instance/attributes/startup-script) cp '${served}' "$out" ;;
  */instance/attributes/citus-fenced) printf 'true\n200' ;;
  *) exit 22 ;;
esac
`);
      chmodSync(join(fakeBin, "curl"), 0o755);
      // Without BOOTSTRAP_SOURCE_ONLY from the test: the command itself must keep the script from running main.
      const { BOOTSTRAP_SOURCE_ONLY: _, ...env } = vmEnv(old.mount);
      const result = spawnSync(join(old.mount, "sbin", "citus-rebuild-standby"), {
        encoding: "utf8",
        timeout: 60_000,
        env: { ...env, BOOTSTRAP_REBUILD_SOURCE: `host=${dir} port=${newPort} user=postgres sslmode=disable`, PATH: `${fakeBin}:${process.env.PATH}` },
      });
      started.push(old.mount);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain(`streaming from ${names.citus.workers[0]!.host} as its standby`);
      expect(sql(oldPort, "SELECT pg_is_in_recovery()")).toBe("t");
      stopCluster(old.mount);
      stopPromoted();
    });

    it("--reclone clones a standby copy again, fenced or not, as after a whole-cluster restore; it refuses anything else", () => {
      const old = failedOverPair("reclone");
      // A standby copy of the promoted node, then a write it never received: the copy is out of date, as a standby is
      // once its primary was restored to an earlier point.
      const standby = newMount("reclone-standby");
      cloneInto(standby.pgdata, { standbySignal: true, from: newPort });
      sql(newPort, "INSERT INTO failover_marker VALUES ('written after the copy was taken')");

      // Not a standby copy (the old primary's cluster has no standby.signal): refused, fenced or not, nothing deleted.
      const before = snapshot(old.pgdata);
      const notStandby = rebuild(old.mount, "true", newPort, "--reclone");
      expect(notStandby.status).not.toBe(0);
      expect(notStandby.stderr).toContain(`--reclone: ${old.pgdata} holds no standby copy`);
      expect(snapshot(old.pgdata)).toEqual(before);
      const typo = rebuild(standby.mount, "", newPort, "--re-clone");
      expect(typo.status).not.toBe(0);
      expect(typo.stderr).toContain("usage: citus-rebuild-standby [--reclone]");

      // Unfenced, as a standby VM is.
      const result = rebuild(standby.mount, "", newPort, "--reclone");
      started.push(standby.mount);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain(`discarding the standby copy in ${standby.pgdata} (timeline 2)`);
      expect(sql(oldPort, "SELECT pg_is_in_recovery()")).toBe("t");
      expect(sql(oldPort, "SELECT count(*) FROM failover_marker WHERE note = 'written after the copy was taken'")).toBe("1");
      expect(sql(newPort, "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby'")).toBe("t");
      stopCluster(standby.mount);
      stopPromoted();
    });

    it("deletes nothing when the VM is not fenced, the server runs, or the disk is not behind the primary", () => {
      const old = failedOverPair("refuse");
      const before = snapshot(old.pgdata);

      const unfenced = rebuild(old.mount, "");
      expect(unfenced.status).not.toBe(0);
      expect(unfenced.stderr).toContain("not fenced: only a fenced former primary is rebuilt");

      // The promoted node's own copy is on its timeline, not behind it: it may hold the newest data.
      const notBehind = newMount("refuse-not-behind");
      cloneInto(notBehind.pgdata, { standbySignal: false, from: newPort });
      const notBehindBefore = snapshot(notBehind.pgdata);
      const sameTimeline = rebuild(notBehind.mount, "true");
      expect(sameTimeline.status).not.toBe(0);
      expect(sameTimeline.stderr).toContain("is on timeline 2 and");
      expect(sameTimeline.stderr).toContain("this disk is not behind it and may hold the newest data; left as it is");
      expect(snapshot(notBehind.pgdata)).toEqual(notBehindBefore);

      // Another cluster altogether (another system identifier).
      const other = newMount("refuse-other");
      pg("initdb", ["-D", other.pgdata, "-U", "postgres"]);
      const otherBefore = snapshot(other.pgdata);
      const foreign = rebuild(other.mount, "true");
      expect(foreign.status).not.toBe(0);
      expect(foreign.stderr).toContain("holds another cluster (system identifier");
      expect(snapshot(other.pgdata)).toEqual(otherBefore);

      // The promoted node unreachable: nothing can be checked, so nothing is deleted.
      const unreachable = rebuild(old.mount, "true", basePort + 999);
      expect(unreachable.status).not.toBe(0);
      expect(unreachable.stderr).toContain("cannot reach");
      expect(snapshot(old.pgdata)).toEqual(before);

      // PostgreSQL running on the disk: refused, and the server keeps serving its data.
      const start = runStubbed("worker", old.mount, oldPort, "start_postgres", { stubs: [] });
      expect(start.status, start.stderr).toBe(0);
      started.push(old.mount);
      const running = rebuild(old.mount, "true");
      expect(running.status).not.toBe(0);
      expect(running.stderr).toContain("PostgreSQL is running on");
      expect(sql(oldPort, "SELECT count(*) FROM failover_marker WHERE note LIKE 'written on the old primary%'")).toBe("2");
      stopCluster(old.mount);
      stopPromoted();
    });
  });

  describe("a fenced VM at boot", () => {
    // systemctl is recorded, not run: the VM's units are not this machine's.
    const fencedBoot = (mount: string, role: CitusBootstrapRole = "worker") =>
      runStubbed(role, mount, basePort + 1, "exit_if_fenced; echo 'not reached'", {
        stubs: ["mount_data_disk"],
        definitions: `fence_flag() { printf true; }; systemctl() { echo "systemctl $*" >>'${join(mount, "calls")}'; }`,
        host: role === "coordinator" ? names.citus.coordinator.host : undefined,
      });
    // The schedules a boot as a primary (or a promoted standby, or a coordinator) left installed.
    const installedSchedules = (mount: string, timers: string[]) => {
      const systemd = vmEnv(mount).BOOTSTRAP_SYSTEMD_DIR!;
      mkdirSync(systemd, { recursive: true });
      for (const timer of timers) writeFileSync(join(systemd, timer), "[Timer]\n");
    };

    it("starts a standby copy on its disk, so a reboot does not leave the pair without its standby", () => {
      const node = newMount("fenced-standby");
      cloneInto(node.pgdata, { standbySignal: true });
      dropDataDirConfig(node.pgdata);
      expect(bootstrap("worker", node.mount, "register_cluster && write_postgres_config").status).toBe(0);
      installedSchedules(node.mount, ["pgbackrest-full.timer", "pgbackrest-diff.timer"]);
      const result = fencedBoot(node.mount);
      started.push(node.mount);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).not.toContain("not reached");
      // A former primary rebuilt as the standby no longer takes the pair's backups; its new primary does.
      expect(result.calls).toEqual([
        "systemctl disable --now pgbackrest-full.timer",
        "systemctl disable --now pgbackrest-diff.timer",
        "mount_data_disk",
        "start_postgres",
      ]);
      expect(sql(basePort + 1, "SELECT pg_is_in_recovery()")).toBe("t");
      stopCluster(node.mount);
    });

    it("keeps anything else down: a former primary's cluster is never started", () => {
      const node = newMount("fenced-primary");
      cloneInto(node.pgdata, { standbySignal: false });
      dropDataDirConfig(node.pgdata);
      expect(bootstrap("worker", node.mount, "register_cluster && write_postgres_config").status).toBe(0);
      // A fenced coordinator: its hourly restore points stop with its backups.
      installedSchedules(node.mount, ["pgbackrest-full.timer", "pgbackrest-diff.timer", "citus-restore-point.timer"]);
      const result = fencedBoot(node.mount, "coordinator");
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).not.toContain("not reached");
      expect(result.calls).toEqual([
        "systemctl disable --now pgbackrest-full.timer",
        "systemctl disable --now pgbackrest-diff.timer",
        "systemctl disable --now citus-restore-point.timer",
        "mount_data_disk",
        `systemctl stop postgresql@${major}-main`,
      ]);
      expect(result.stderr).toContain("PostgreSQL stays down");
    });
  });

  it("registers a primary's kept data disk under a new boot disk, and creates a new primary's cluster with checksums", () => {
    // A worker VM recreated (a new image replaces the boot disk) around its data disk.
    const kept = newMount("primary-kept");
    cloneInto(kept.pgdata, { standbySignal: false });
    startClone(kept.pgdata, basePort + 1); // a clone started without standby.signal: a primary of its own
    pg("pg_ctl", ["-D", kept.pgdata, "-m", "fast", "-w", "stop"]);
    dropDataDirConfig(kept.pgdata);
    const before = snapshot(kept.pgdata).filter((f) => !f.startsWith("postmaster"));
    const registered = bootstrap("worker", kept.mount, "register_cluster");
    expect(registered.status, registered.stderr).toBe(0);
    expect(registered.stderr).toContain("registering the existing cluster");
    expect(readFileSync(join(confDir(kept.mount), "postgresql.conf"), "utf8")).toContain(`data_directory = '${kept.pgdata}'`);
    expect(snapshot(kept.pgdata).filter((f) => !f.startsWith("postmaster"))).toEqual(before);

    const fresh = newMount("primary-new");
    const created = bootstrap("worker", fresh.mount, "register_cluster");
    expect(created.status, created.stderr).toBe(0);
    expect(controlData(fresh.pgdata).checksums).toBe(1);
    expect(readFileSync(join(confDir(fresh.mount), "postgresql.conf"), "utf8")).toContain(`data_directory = '${fresh.pgdata}'`);
    // A second boot finds the registration and leaves it alone.
    const again = bootstrap("worker", fresh.mount, "register_cluster");
    expect(again.status).toBe(0);
    expect(again.stderr).toBe("");
  });
});
