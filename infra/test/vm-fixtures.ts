/**
 * What the bootstrap tests need of a Citus VM that a test machine lacks: the server certificate the platform CA would
 * have issued, and the startup script a given VM of a synthesized stack receives.
 */
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { TerraformJson } from "../src/app.js";
import type { CitusBootstrapRole } from "../src/citus/startup-script.js";
import { renderedStartupScript, resourcesOf } from "./helpers.js";

/**
 * The environment that runs the bootstrap's functions outside a VM: BOOTSTRAP_SOURCE_ONLY (source, do not run main)
 * and every VM path the bootstrap lets a test redirect (the BOOTSTRAP_* variables of bootstrap/lib/common.sh and paths.sh), each
 * under `root`. `paths` moves single ones elsewhere.
 */
export function bootstrapEnv(root: string, paths: Partial<Record<VmPath, string>> = {}): NodeJS.ProcessEnv {
  const under: Record<VmPath, string> = {
    STATE_DIR: join(root, "state"),
    TLS_DIR: join(root, "tls"),
    PATRONI_DIR: join(root, "patroni"),
    PGUSER_HOME: join(root, "home"),
    PGBACKREST_DIR: join(root, "pgbackrest"),
    PGBACKREST_SPOOL_DIR: join(root, "spool"),
    EXPORTER_DIR: join(root, "exporter"),
    EXPORTER_DEFAULTS: join(root, "exporter.defaults"),
    SYSTEMD_DIR: join(root, "systemd"),
    TEXTFILE_DIR: join(root, "textfile"),
    BACKUP_METRICS_BIN: join(root, "sbin", "citus-backup-metrics"),
    IS_LEADER_BIN: join(root, "sbin", "citus-is-leader"),
    RESTORE_POINT_BIN: join(root, "sbin", "citus-restore-point"),
    RESTORE_BIN: join(root, "sbin", "citus-restore-to"),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, BOOTSTRAP_SOURCE_ONLY: "1" };
  for (const [name, path] of Object.entries({ ...under, ...paths })) env[`BOOTSTRAP_${name}`] = path;
  return env;
}

export type VmPath =
  | "STATE_DIR" | "TLS_DIR" | "PATRONI_DIR" | "PGUSER_HOME" | "PGBACKREST_DIR" | "PGBACKREST_SPOOL_DIR" | "EXPORTER_DIR" | "EXPORTER_DEFAULTS"
  | "SYSTEMD_DIR" | "TEXTFILE_DIR" | "BACKUP_METRICS_BIN" | "IS_LEADER_BIN" | "RESTORE_POINT_BIN" | "RESTORE_BIN";

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
 * The rendered startup script of the stack's VM in a group of this role whose own DNS name is `host` (a member's:
 * names.citus.coordinator.member.host, a worker's host or standby.host). Throws when the stack has none, so a renamed
 * header variable fails the test that relies on it.
 */
export function startupScriptOf(json: TerraformJson, role: CitusBootstrapRole, host: string): string {
  for (const vm of resourcesOf(json, "google_compute_instance")) {
    const script = renderedStartupScript(json, vm.conf);
    if (script.includes(`readonly ROLE='${role}'`) && script.includes(`readonly NODE_HOST='${host}'`)) return script;
  }
  throw new Error(`the stack has no ${role} VM named ${host}`);
}

/**
 * A `gcloud` on PATH that answers `secrets versions access latest --secret=<id>` from `secrets` (NOT_FOUND for any
 * other id), as Secret Manager would once the coordinator has generated them.
 */
export function fakeSecretManager(dir: string, secrets: Record<string, string>): NodeJS.ProcessEnv {
  const bin = join(dir, "fake-gcloud");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "secrets.json"), JSON.stringify(secrets));
  writeFileSync(
    join(bin, "gcloud"),
    `#!/bin/bash
[[ "$1 $2 $3 $4" == "secrets versions access latest" ]] || { echo "fake gcloud: unexpected $*" >&2; exit 2; }
id="\${5#--secret=}"
jq -e -j --arg id "$id" '.[$id] // error("NOT_FOUND")' '${join(bin, "secrets.json")}' 2>/dev/null || { echo "ERROR: NOT_FOUND: Secret [$id] not found or has no versions." >&2; exit 1; }
`,
  );
  chmodSync(join(bin, "gcloud"), 0o755);
  return { PATH: `${bin}:${process.env.PATH}` };
}

/**
 * A CA and one certificate it signed for 127.0.0.1 and localhost, with serverAuth and clientAuth like the
 * certificates the bootstrap issues (issue_server_certificate): verify-full works on loopback. ca.crt, server.crt and
 * server.key in `tls`, readable by postgres.
 */
export function loopbackCertificates(tls: string): { ca: string; cert: string; key: string } {
  mkdirSync(tls, { recursive: true });
  const run = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe", cwd: tls });
  run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt");
  run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr");
  writeFileSync(join(tls, "ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext", "-out", "server.crt");
  chmodSync(join(tls, "server.key"), 0o600);
  execFileSync("chown", ["-R", "postgres:postgres", tls]);
  return { ca: join(tls, "ca.crt"), cert: join(tls, "server.crt"), key: join(tls, "server.key") };
}
