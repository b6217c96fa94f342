/**
 * What the Citus bootstrap does when the network or Secret Manager fails for a while. A GCE startup script runs once
 * per boot, so first-boot downloads (through Cloud NAT) retry rather than leave a VM half installed; and a Secret
 * Manager error is never taken for "this secret has no version", which would make the coordinator generate a second
 * password or CA over the one in use. Runs a real rendered startup script under bash, with a scripted `gcloud`.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderedStartupScript, resourcesOf } from "./helpers.js";
import { synthesizedStack } from "./synthesized.js";

let dir: string;
let script: string;
beforeAll(() => {
  const dev = synthesizedStack("dev");
  const coordinator = resourcesOf(dev!.json, "google_compute_instance").find((vm) => String(vm.conf.name).endsWith("-coordinator"))!;
  dir = mkdtempSync(join(tmpdir(), "bootstrap-retry-"));
  script = renderedStartupScript(dev!.json, coordinator.conf);
  writeFileSync(join(dir, "bootstrap.sh"), script);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sources the script (without running main) and runs `body` under the same shell options as the VM. */
const bash = (body: string, env: NodeJS.ProcessEnv = {}) =>
  spawnSync("bash", ["-c", `set -euo pipefail; source '${dir}/bootstrap.sh'; ${body}`], {
    encoding: "utf8",
    env: { ...process.env, BOOTSTRAP_SOURCE_ONLY: "1", ...env },
  });

/**
 * A `gcloud` that answers `secrets versions access` and `secrets versions add` from scripted lists (one answer per
 * call, the last one repeating) and records every call.
 */
function fakeGcloud(answers: { access: string[]; add?: string[] }): { env: NodeJS.ProcessEnv; calls: () => string[] } {
  const fake = mkdtempSync(join(dir, "gcloud-"));
  mkdirSync(join(fake, "bin"));
  writeFileSync(join(fake, "access"), answers.access.join("\n") + "\n");
  writeFileSync(join(fake, "add"), (answers.add ?? ["ok"]).join("\n") + "\n");
  writeFileSync(join(fake, "calls"), "");
  writeFileSync(
    join(fake, "bin", "gcloud"),
    `#!/bin/bash
echo "$1 $2 $3 $4" >>'${fake}/calls'
next() { local line; line="$(head -n1 "$1")"; if (( $(wc -l <"$1") > 1 )); then sed -i 1d "$1"; fi; printf '%s' "$line"; }
case "$1 $2 $3" in
  "secrets versions access")
    answer="$(next '${fake}/access')"
    case "$answer" in
      ok:*) printf '%s' "\${answer#ok:}" ;;
      notfound) echo "ERROR: (gcloud.secrets.versions.access) NOT_FOUND: Secret [x] not found or has no versions." >&2; exit 1 ;;
      *) echo "ERROR: (gcloud.secrets.versions.access) PERMISSION_DENIED: Permission 'secretmanager.versions.access' denied" >&2; exit 1 ;;
    esac ;;
  "secrets versions add")
    cat >/dev/null
    [[ "$(next '${fake}/add')" == ok ]] || { echo "ERROR: (gcloud.secrets.versions.add) PERMISSION_DENIED" >&2; exit 1; } ;;
esac
`,
  );
  chmodSync(join(fake, "bin", "gcloud"), 0o755);
  return {
    env: { PATH: `${join(fake, "bin")}:${process.env.PATH}`, BOOTSTRAP_SECRET_RETRY_DELAY: "0" },
    calls: () => readFileSync(join(fake, "calls"), "utf8").trim().split("\n").filter(Boolean),
  };
}

describe("first-boot downloads retry", () => {
  it("retries a failing command until it succeeds, saying which attempt failed", () => {
    const counter = join(dir, "count");
    writeFileSync(counter, "0");
    const flaky = `flaky() { local n; n=$(( $(cat '${counter}') + 1 )); echo "$n" >'${counter}'; (( n >= 3 )); }`;
    const result = bash(`${flaky}; retry 5 0 flaky; echo "done after $(cat '${counter}')"`);
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe("done after 3");
    expect(result.stderr).toContain("'flaky' failed (attempt 1/5); retrying in 0s");
    expect(result.stderr).toContain("'flaky' failed (attempt 2/5)");
    expect(result.stderr).not.toContain("attempt 3/5");
  });

  it("gives up after the last attempt, and the bootstrap stops there (set -e)", () => {
    const result = bash("retry 3 0 false; echo 'not reached'");
    expect(result.status).not.toBe(0);
    expect(result.stdout).not.toContain("not reached");
    expect(result.stderr).toContain("'false' failed (attempt 2/3)");
    expect(result.stderr).toContain("'false' failed 3 times");
  });

  it("sends every apt-get and key download of the package installation through retry", () => {
    const install = /install_packages\(\) \{\n([\s\S]*?)\n\}/.exec(script)![1]!;
    const downloads = install.split("\n").filter((line) => /apt-get (update|install)|fetch_key|curl /.test(line));
    expect(downloads.length).toBe(8);
    expect(downloads.filter((line) => !/^\s*retry \d+ \d+ /.test(line))).toEqual([]);
  });
});

describe("packages added to the list after a node was installed", () => {
  /** A node installed before: its marker is there, and dpkg knows every package but those in `absent`. */
  function installedNode(absent: string[]) {
    const node = mkdtempSync(join(dir, "node-"));
    mkdirSync(join(node, "bin"));
    mkdirSync(join(node, "state"));
    const pgMajor = /^readonly PG_MAJOR='?(\d+)'?$/m.exec(script)![1]!;
    const citus = /^readonly CITUS_PACKAGE='([^']+)'$/m.exec(script)![1]!;
    writeFileSync(join(node, "state", `packages-${pgMajor}-${citus}`), "");
    writeFileSync(join(node, "bin", "dpkg-query"), `#!/bin/bash
case " ${absent.join(" ")} " in *" \${@: -1} "*) echo "dpkg-query: no packages found matching \${@: -1}" >&2; exit 1 ;; esac
printf 'install ok installed'
`);
    writeFileSync(join(node, "bin", "apt-get"), `#!/bin/bash\necho "apt-get $*" >>'${node}/apt'\n`);
    chmodSync(join(node, "bin", "dpkg-query"), 0o755);
    chmodSync(join(node, "bin", "apt-get"), 0o755);
    return {
      run: () => bash("install_packages", { PATH: `${join(node, "bin")}:${process.env.PATH}`, BOOTSTRAP_STATE_DIR: join(node, "state") }),
      apt: () => { try { return readFileSync(join(node, "apt"), "utf8").trim().split("\n"); } catch { return []; } },
    };
  }

  it("installs only the missing ones on the next boot, never naming the installed (held) packages", () => {
    const node = installedNode(["jq"]);
    const result = node.run();
    expect(result.status, result.stderr).toBe(0);
    expect(node.apt()).toEqual(["apt-get update -q", "apt-get install -y -q jq"]);
    expect(result.stderr).toContain("installing jq: added to the node's packages after it was installed");
  });

  it("does nothing on a node that has every package", () => {
    const node = installedNode([]);
    const result = node.run();
    expect(result.status, result.stderr).toBe(0);
    expect(node.apt()).toEqual([]);
    expect(result.stderr).toBe("");
  });
});

describe("Secret Manager errors never regenerate a secret", () => {
  it("keeps the existing password when reads fail for a while (permission still propagating)", () => {
    const gcloud = fakeGcloud({ access: ["denied", "denied", "ok:the-password"] });
    const result = bash("ensure_password saas-dev-db-app && echo kept", gcloud.env);
    expect(result.stdout.trim()).toBe("kept");
    expect(gcloud.calls().filter((c) => c.startsWith("secrets versions add"))).toEqual([]);
    expect(result.stderr).toContain("cannot tell whether secret saas-dev-db-app has a version (attempt 2/30)");
  });

  it("stops without generating anything when Secret Manager keeps failing", () => {
    const gcloud = fakeGcloud({ access: ["denied"] });
    const result = bash("ensure_password saas-dev-db-app; echo 'not reached'", gcloud.env);
    expect(result.status).not.toBe(0);
    expect(result.stdout).not.toContain("not reached");
    expect(gcloud.calls().filter((c) => c.startsWith("secrets versions access")).length).toBe(30);
    expect(gcloud.calls().filter((c) => c.startsWith("secrets versions add"))).toEqual([]);
    expect(result.stderr).toContain("FATAL: Secret Manager did not answer for secret saas-dev-db-app; nothing was generated");
  });

  it("does not create a second CA when the certificate cannot be read for a while", () => {
    const gcloud = fakeGcloud({ access: ["denied", "ok:-----BEGIN CERTIFICATE-----"] });
    const result = bash("ensure_ca && echo kept", gcloud.env);
    expect(result.stdout.trim()).toBe("kept");
    expect(gcloud.calls().filter((c) => c.startsWith("secrets versions add"))).toEqual([]);
    expect(result.stderr).not.toContain("creating the database CA");
  });

  it("generates a password only on NOT_FOUND, and retries adding it until the grant has propagated", () => {
    const gcloud = fakeGcloud({ access: ["notfound"], add: ["denied", "denied", "ok"] });
    const result = bash("ensure_password saas-dev-db-app && echo generated", gcloud.env);
    expect(result.stdout.trim()).toBe("generated");
    expect(gcloud.calls().filter((c) => c.startsWith("secrets versions add")).length).toBe(3);
    expect(result.stderr).toContain("adding a version to secret saas-dev-db-app failed (attempt 2/30)");
  });
});

