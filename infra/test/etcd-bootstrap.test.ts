/**
 * The etcd VMs as their startup scripts configure them, run for real: Debian's etcd 3.4, three members on loopback
 * started from the /etc/default/etcd each member's bootstrap writes (write_etcd_config), then authentication turned on
 * by the first member's own enable_etcd_auth. What changes on loopback, and nothing else: each member's DNS name
 * becomes 127.0.0.1 with ports of its own, the data directory and the certificates are this test's (a CA of its own,
 * for 127.0.0.1). Then: Patroni's user can write only under /service/, an anonymous client nothing, a client that does
 * not trust the platform CA cannot connect, and the cluster keeps a quorum when one member (one zone) is gone.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PORTS, platformNames } from "@platform/config";
import { ETCD_BIN, ETCDCTL_BIN, freePort } from "@platform/testing";
import { CITUS_ROLES } from "../src/citus/patroni-vm.js";
import { hermeticConfigs, renderedStartupScript, resourcesOf } from "./helpers.js";
import { synthesizedStack } from "./synthesized.js";
import { bootstrapEnv, loopbackCertificates } from "./vm-fixtures.js";

const unavailable =
  spawnSync(ETCD_BIN, ["--version"]).status !== 0
    ? `etcd not found at ${ETCD_BIN} (apt-get install etcd-server etcd-client)`
    : process.getuid?.() !== 0
      ? "needs root: the bootstrap writes the member's files for the etcd user, as on the VM"
      : undefined;
if (unavailable) console.warn(`skipping the etcd bootstrap tests: ${unavailable}`);

const config = hermeticConfigs().find((c) => c.name === "production")!;
const names = platformNames(config);
const ROOT_PW = "test-root-pw";
const PATRONI_PW = "test-patroni-pw";

describe.skipIf(unavailable !== undefined)("the etcd VMs' configuration, run by real etcd 3.4 (three members, TLS, authentication)", () => {
  let dir: string;
  let tls: { ca: string; cert: string; key: string };
  const scripts: string[] = [];
  const defaults: Record<string, string>[] = [];
  const processes: ChildProcess[] = [];
  const clientUrls: string[] = [];

  const etcdctl = (args: string[], options: { user?: string; endpoints?: string[]; trustCa?: boolean } = {}) =>
    spawnSync(
      ETCDCTL_BIN,
      [
        "--endpoints", (options.endpoints ?? clientUrls).join(","),
        ...(options.trustCa === false ? [] : ["--cacert", tls.ca]),
        ...(options.user ? ["--user", options.user] : []),
        "--dial-timeout", "3s", "--command-timeout", "5s",
        ...args,
      ],
      { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } },
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "etcd-bootstrap-"));
    chmodSync(dir, 0o755);
    tls = loopbackCertificates(join(dir, "tls"));
    execFileSync("chown", ["-R", "etcd:etcd", join(dir, "tls")]);
    const production = synthesizedStack("production");
    for (const member of names.patroni.etcd) {
      const vm = resourcesOf(production!.json, "google_compute_instance").find((i) => i.conf.name === member.instance);
      if (!vm) throw new Error(`the stack has no etcd VM ${member.instance}`);
      scripts.push(renderedStartupScript(production!.json, vm.conf));
    }
    // Each member's file, as its bootstrap writes it on its VM.
    for (const [i, script] of scripts.entries()) {
      const root = join(dir, `vm-${i}`);
      mkdirSync(root);
      const mount = join(root, "mnt");
      mkdirSync(mount);
      writeFileSync(join(root, "startup.sh"), script.replace("readonly DATA_MOUNT='/var/lib/etcd'", `readonly DATA_MOUNT='${mount}'`));
      const run = spawnSync("bash", ["-c", `set -euo pipefail; source '${join(root, "startup.sh")}'; write_etcd_config`], {
        encoding: "utf8",
        env: { ...bootstrapEnv(root), BOOTSTRAP_ETCD_DEFAULTS: join(root, "etcd.defaults") },
      });
      if (run.status !== 0) throw new Error(run.stderr);
      const text = readFileSync(join(root, "etcd.defaults"), "utf8");
      defaults.push(Object.fromEntries([...text.matchAll(/^(ETCD_[A-Z_0-9]+)="([^"]*)"$/gm)].map((m) => [m[1]!, m[2]!])));
    }
    // Loopback: every member's name and the listen address become 127.0.0.1, each member with ports of its own.
    const ports = await Promise.all(names.patroni.etcd.map(async () => ({ client: await freePort(), peer: await freePort() })));
    const local = (value: string) =>
      names.patroni.etcd.reduce(
        (v, member, i) =>
          v.replaceAll(`${member.host}:${PORTS.etcdClient}`, `127.0.0.1:${ports[i]!.client}`).replaceAll(`${member.host}:${PORTS.etcdPeer}`, `127.0.0.1:${ports[i]!.peer}`),
        value,
      );
    for (const [i, d] of defaults.entries()) {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(d)) env[key] = local(value);
      env.ETCD_LISTEN_CLIENT_URLS = `https://127.0.0.1:${ports[i]!.client}`;
      env.ETCD_LISTEN_PEER_URLS = `https://127.0.0.1:${ports[i]!.peer}`;
      for (const key of ["ETCD_CERT_FILE", "ETCD_PEER_CERT_FILE"]) env[key] = tls.cert;
      for (const key of ["ETCD_KEY_FILE", "ETCD_PEER_KEY_FILE"]) env[key] = tls.key;
      env.ETCD_PEER_TRUSTED_CA_FILE = tls.ca;
      clientUrls.push(env.ETCD_ADVERTISE_CLIENT_URLS!);
      // As Debian's etcd.service runs it: the etcd user, its settings from the environment only.
      processes.push(spawn("runuser", ["-u", "etcd", "--", ETCD_BIN], { env: { PATH: process.env.PATH!, ...env }, stdio: "ignore", detached: true }));
    }
    for (let attempt = 0; etcdctl(["endpoint", "health"]).status !== 0; attempt++) {
      if (attempt > 60) throw new Error(`the three members never formed a cluster: ${etcdctl(["endpoint", "health"]).stderr}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // The first member's bootstrap turns authentication on, with its own etcdctl pointed at this cluster.
    const first = join(dir, "vm-0", "startup.sh");
    const auth = spawnSync("bash", ["-c", `set -euo pipefail; source '${first}'; ETCDCTL=(etcdctl --endpoints '${clientUrls.join(",")}' --cacert '${tls.ca}'); enable_etcd_auth '${ROOT_PW}' '${PATRONI_PW}'; enable_etcd_auth '${ROOT_PW}' '${PATRONI_PW}'`], {
      encoding: "utf8",
      env: { ...bootstrapEnv(join(dir, "vm-0")), ETCDCTL_API: "3" },
    });
    if (auth.status !== 0) throw new Error(`enable_etcd_auth failed: ${auth.stderr}`);
  }, 180_000);

  afterAll(() => {
    for (const p of processes) {
      try {
        process.kill(-p.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("renders one cluster of the three members, TLS on every URL, peers authenticated by the platform CA, no client CA", () => {
    for (const [i, d] of defaults.entries()) {
      expect(d.ETCD_NAME).toBe(names.patroni.etcd[i]!.instance);
      expect(d.ETCD_INITIAL_CLUSTER).toBe(names.patroni.etcd.map((m) => `${m.instance}=https://${m.host}:${PORTS.etcdPeer}`).join(","));
      expect(d.ETCD_ADVERTISE_CLIENT_URLS).toBe(`https://${names.patroni.etcd[i]!.host}:${PORTS.etcdClient}`);
      expect(d.ETCD_PEER_CLIENT_CERT_AUTH).toBe("true");
      expect(d.ETCD_TRUSTED_CA_FILE).toBeUndefined();
      expect(d.ETCD_DATA_DIR).toContain("member-data");
      expect(Object.values(d).every((v) => !v.startsWith("http://"))).toBe(true);
    }
    // Only the first member turns authentication on.
    expect(scripts.map((s) => /^readonly ENABLES_AUTH='(\d)'$/m.exec(s)![1])).toEqual(["1", "0", "0"]);
  });

  it("turns authentication on (idempotently): Patroni's user writes under /service/ only; anonymous clients get nothing", () => {
    expect(etcdctl(["user", "list"], { user: `root:${ROOT_PW}` }).stdout.split("\n").sort()).toEqual(["", CITUS_ROLES.etcdUser, "root"].sort());
    expect(etcdctl(["role", "get", "patroni"], { user: `root:${ROOT_PW}` }).stdout).toMatch(/KV Read:\s+\[\/service\/, \/service0\) \(prefix \/service\/\)/);
    const patroni = `${CITUS_ROLES.etcdUser}:${PATRONI_PW}`;
    const own = etcdctl(["put", "/service/probe", "1"], { user: patroni });
    expect(own.status, own.stderr).toBe(0);
    const other = etcdctl(["put", "/elsewhere", "1"], { user: patroni });
    expect(other.status).not.toBe(0);
    expect(other.stderr).toContain("permission denied");
    const anonymous = etcdctl(["get", "/service/probe"]);
    expect(anonymous.status).not.toBe(0);
    expect(anonymous.stderr).toMatch(/user name is empty|permission denied/);
    const wrong = etcdctl(["get", "/service/probe"], { user: `${CITUS_ROLES.etcdUser}:not-the-password` });
    expect(wrong.stderr).toContain("authentication failed");
  });

  it("refuses a client that does not trust the platform CA (TLS, not plain HTTP)", () => {
    const untrusted = etcdctl(["get", "/service/probe"], { user: `${CITUS_ROLES.etcdUser}:${PATRONI_PW}`, trustCa: false });
    expect(untrusted.status).not.toBe(0);
    const plain = etcdctl(["get", "/service/probe"], { user: `${CITUS_ROLES.etcdUser}:${PATRONI_PW}`, endpoints: clientUrls.map((u) => u.replace("https://", "http://")) });
    expect(plain.status).not.toBe(0);
  });

  it("keeps a quorum with one member (one zone) gone: Patroni's writes still commit", () => {
    process.kill(-processes[2]!.pid!, "SIGKILL");
    const write = etcdctl(["put", "/service/after-a-zone", "1"], { user: `${CITUS_ROLES.etcdUser}:${PATRONI_PW}`, endpoints: clientUrls.slice(0, 2) });
    expect(write.status, write.stderr).toBe(0);
  });
});
