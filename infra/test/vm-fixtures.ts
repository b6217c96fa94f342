/**
 * What the bootstrap tests need of a Citus VM that a test machine lacks: the server certificate the platform CA would
 * have issued, and the startup script a given VM of a synthesized stack receives.
 */
import { chmodSync, copyFileSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { TerraformJson } from "../src/app.js";
import type { CitusBootstrapRole } from "../src/citus/startup-script.js";
import { renderedStartupScript, resourcesOf } from "./helpers.js";

/**
 * The environment that runs the bootstrap's functions outside a VM: BOOTSTRAP_SOURCE_ONLY (source, do not run main)
 * and every VM path the bootstrap lets a test redirect (the BOOTSTRAP_* variables at the top of bootstrap/lib/common.sh), each
 * under `root`. `paths` moves single ones elsewhere.
 */
export function bootstrapEnv(root: string, paths: Partial<Record<VmPath, string>> = {}): NodeJS.ProcessEnv {
  const under: Record<VmPath, string> = {
    STATE_DIR: join(root, "state"),
    TLS_DIR: join(root, "tls"),
    PGCONF_DIR: join(root, "conf"),
    PGBACKREST_DIR: join(root, "pgbackrest"),
    PGBACKREST_SPOOL_DIR: join(root, "spool"),
    EXPORTER_DIR: join(root, "exporter"),
    EXPORTER_DEFAULTS: join(root, "exporter.defaults"),
    SYSTEMD_DIR: join(root, "systemd"),
    TEXTFILE_DIR: join(root, "textfile"),
    BACKUP_METRICS_BIN: join(root, "sbin", "citus-backup-metrics"),
    JOIN_WORKERS_BIN: join(root, "sbin", "citus-join-workers"),
    REBUILD_BIN: join(root, "sbin", "citus-rebuild-standby"),
    RESTORE_POINT_BIN: join(root, "sbin", "citus-restore-point"),
    RESTORE_BIN: join(root, "sbin", "citus-restore-to"),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, BOOTSTRAP_SOURCE_ONLY: "1" };
  for (const [name, path] of Object.entries({ ...under, ...paths })) env[`BOOTSTRAP_${name}`] = path;
  return env;
}

export type VmPath =
  | "STATE_DIR" | "TLS_DIR" | "PGCONF_DIR" | "PGBACKREST_DIR" | "PGBACKREST_SPOOL_DIR" | "EXPORTER_DIR" | "EXPORTER_DEFAULTS"
  | "SYSTEMD_DIR" | "TEXTFILE_DIR" | "BACKUP_METRICS_BIN" | "JOIN_WORKERS_BIN" | "REBUILD_BIN" | "RESTORE_POINT_BIN" | "RESTORE_BIN";

/** The samples of a Prometheus text exposition (a textfile, or node_exporter's answer), by metric name with labels. */
export function exposedSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

/** A self-signed server.crt / server.key / ca.crt in `tls`, where the bootstrap would have issued one from the CA. */
export function throwawayServerCertificate(tls: string): void {
  mkdirSync(tls, { recursive: true });
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=test", "-keyout", join(tls, "server.key"), "-out", join(tls, "server.crt")], { stdio: "pipe" });
  copyFileSync(join(tls, "server.crt"), join(tls, "ca.crt"));
  chmodSync(join(tls, "server.key"), 0o600);
}

/**
 * The rendered startup script of the stack's VM with this role that serves `host` (a standby: that streams from it).
 * Throws when the stack has none, so a renamed header variable fails the test that relies on it.
 */
export function startupScriptOf(json: TerraformJson, role: CitusBootstrapRole, host: string): string {
  const served = role === "standby" ? `readonly PRIMARY_HOST='${host}'` : `readonly NODE_HOST='${host}'`;
  for (const vm of resourcesOf(json, "google_compute_instance")) {
    const script = renderedStartupScript(json, vm.conf);
    if (script.includes(`readonly ROLE='${role}'`) && script.includes(served)) return script;
  }
  throw new Error(`the stack has no ${role} VM for ${host}`);
}
