/**
 * The Citus bootstrap's first-boot downloads go through Cloud NAT, which may not pass traffic yet, and a GCE startup
 * script runs once per boot: the downloads must retry rather than leave the VM half installed. Runs the `retry`
 * helper of a real rendered startup script under bash.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hermeticConfigs, renderedStartupScript, resourcesOf, synthesizeAll } from "./helpers.js";

let dir: string;
let script: string;
beforeAll(() => {
  const [dev] = synthesizeAll(hermeticConfigs().filter((c) => c.name === "dev"));
  const coordinator = resourcesOf(dev!.json, "google_compute_instance").find((vm) => String(vm.conf.name).endsWith("-coordinator"))!;
  dir = mkdtempSync(join(tmpdir(), "bootstrap-retry-"));
  script = renderedStartupScript(dev!.json, coordinator.conf);
  writeFileSync(join(dir, "bootstrap.sh"), script);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sources the script (without running main) and runs `body` under the same shell options as the VM. */
const bash = (body: string) =>
  spawnSync("bash", ["-c", `set -euo pipefail; source '${dir}/bootstrap.sh'; ${body}`], {
    encoding: "utf8",
    env: { ...process.env, BOOTSTRAP_SOURCE_ONLY: "1" },
  });

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
    expect(downloads.length).toBe(6);
    expect(downloads.filter((line) => !/^\s*retry \d+ \d+ /.test(line))).toEqual([]);
  });
});
