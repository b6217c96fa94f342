/**
 * shellcheck (Debian's package) over every shell script the project ships, with all its checks: the repository's
 * scripts; the Citus VMs' startup scripts as Terraform renders them (header, then infra/src/citus/bootstrap/'s
 * libraries, programs and main script, which are no scripts on their own); the programs that bootstrap installs on
 * each VM (bootstrap/bin, with the node's settings); and the `sh -c` commands of the
 * Kubernetes manifests. No finding is allowed unless disabled on its line with the reason
 * (`# shellcheck disable=SC2034 # why`). Without shellcheck the tests skip with the reason, except in CI.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAllEnvironments } from "@platform/config";
import type { SynthesizedStack } from "../../infra/src/app.js";
import { renderedStartupScript, resourcesOf, synthesizeAll } from "../../infra/test/helpers.js";
import { bootstrapEnv } from "../../infra/test/vm-fixtures.js";
import { BOOTSTRAP_LIBRARIES, BOOTSTRAP_MAIN, BOOTSTRAP_PROGRAMS, CITUS_PROGRAMS, citusSharedScript } from "../../infra/src/citus/startup-script.js";
import { ETCD_BOOTSTRAP_SOURCES, etcdSharedScript } from "../../infra/src/etcd/startup-script.js";
import { synthesizeEnvironment, type KubernetesObject } from "../../k8s/src/app.js";

const ROOT = join(import.meta.dirname, "..", "..");
/** The bootstrap's sources: checked as they ship (assembled into a startup script, or installed), not one by one. */
const BOOTSTRAP_DIRS = ["infra/src/citus/bootstrap/", "infra/src/etcd/bootstrap/"];
const BOOTSTRAP_SOURCES = [...BOOTSTRAP_LIBRARIES, ...BOOTSTRAP_PROGRAMS, BOOTSTRAP_MAIN, ...ETCD_BOOTSTRAP_SOURCES.filter((s) => s.path.startsWith("infra/src/etcd/"))];
const work = mkdtempSync(join(tmpdir(), "shellcheck-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const available = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
const unavailable = available.status === 0 ? undefined : "shellcheck is not installed (Debian: apt-get install shellcheck)";
if (unavailable && process.env.CI) throw new Error(`shellcheck is required in CI: ${unavailable}`);
const needShellcheck = (ctx: { skip: (note: string) => void }) => {
  if (unavailable) ctx.skip(unavailable);
};

/** A shipped script: where a reader finds it, the text shellcheck reads, and how a line maps back to its source. */
interface Script {
  readonly name: string;
  readonly text: string;
  readonly shell?: "sh" | "bash";
  /** The file itself, for a script of the repository: its `# shellcheck source=SCRIPTDIR/...` directives resolve beside it. */
  readonly path?: string;
  /** Where line `n` of the text comes from, e.g. infra/src/citus/bootstrap/lib/postgres.sh:41. */
  readonly source?: (line: number) => string | undefined;
}

interface Comment {
  line: number;
  column: number;
  level: string;
  code: number;
  message: string;
}

/** shellcheck's findings on a script, one line each: file and line (its source's, where known), SC code, message. */
function shellcheck(script: Script): string[] {
  const file = script.path ?? join(work, `script-${Math.random().toString(36).slice(2)}`);
  if (!script.path) writeFileSync(file, script.text);
  const run = spawnSync("shellcheck", ["--format=json1", "--external-sources", ...(script.shell ? [`--shell=${script.shell}`] : []), file], { encoding: "utf8" });
  // 0: no finding, 1: findings; anything else is shellcheck refusing the input.
  if (run.status !== 0 && run.status !== 1) throw new Error(`shellcheck could not check ${script.name} (exit ${String(run.status)}): ${run.stderr}`);
  const lines = script.text.split("\n");
  return (JSON.parse(run.stdout) as { comments: Comment[] }).comments.map((c) => {
    const at = script.source?.(c.line);
    const where = at ? `${at}:${c.column} (line ${c.line} of ${script.name})` : `${script.name}:${c.line}:${c.column}`;
    return `shellcheck: ${where} SC${c.code} ${c.level}: ${c.message}\n    ${lines[c.line - 1]?.trim()}`;
  });
}

/**
 * Directives that silence shellcheck without a reason after them: `disable=`, and `source=/dev/null` (do not follow).
 * `source=SCRIPTDIR/x.sh` only says where a file is, and shellcheck then checks it.
 */
function unexplainedDirectives(script: Script): string[] {
  return script.text
    .split("\n")
    .map((text, i) => ({ text, line: i + 1 }))
    .filter(({ text }) => /#\s*shellcheck\s+(disable=|source=\/dev\/null)/.test(text) && !/#\s*shellcheck\s+\S+=\S+\s+#\s*\S.{10,}/.test(text))
    .map(({ text, line }) => `${script.source?.(line) ?? `${script.name}:${line}`}: a shellcheck directive without its reason: ${text.trim()}`);
}

/** Tracked files that are shell scripts: a .sh name or a shell shebang. The bootstrap is checked as it ships, below. */
function repositoryScripts(): Script[] {
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  return files
    .filter((f) => !BOOTSTRAP_DIRS.some((d) => f.startsWith(d)))
    .flatMap((f): Script[] => {
      let text: string;
      try {
        text = readFileSync(join(ROOT, f), "utf8");
      } catch {
        return []; // deleted in the work tree
      }
      const shebang = /^#!\s*(?:\/usr\/bin\/env\s+)?\S*?\b(bash|sh|dash)\b/.exec(text);
      return f.endsWith(".sh") || shebang ? [{ name: f, text, path: join(ROOT, f) }] : [];
    });
}

/** Maps a line of a text that embeds the bootstrap's sources (a startup script, an installed program) back to its file and line. */
function inBootstrap(text: string): (line: number) => string | undefined {
  const textLines = text.split("\n");
  const spans = BOOTSTRAP_SOURCES.flatMap((source) => {
    const start = text.indexOf(source.text);
    if (start < 0) return [];
    const first = text.slice(0, start).split("\n").length;
    return [{ path: source.path, first, last: first + source.text.split("\n").length - 1, offset: /^# shellcheck shell=bash\n/.test(readFileSync(join(ROOT, source.path), "utf8")) ? 1 : 0 }];
  });
  return (line) => {
    const span = spans.find((s) => line >= s.first && line <= s.last);
    if (span) return `${span.path}:${line - span.first + 1 + span.offset}`;
    // An installed program: its settings line sits after the shebang; find the line in its file when it is there once.
    const wanted = textLines[line - 1];
    if (!wanted?.trim()) return undefined;
    const hits = BOOTSTRAP_PROGRAMS.flatMap((p) => p.text.split("\n").flatMap((l, i) => (l === wanted ? [`${p.path}:${i + 1}`] : [])));
    return hits.length === 1 ? hits[0] : undefined;
  };
}

const repository = repositoryScripts();

describe("the repository's shell scripts", () => {
  it("are found: the CI entry point, the SRE entry points, the tool installers and the test dependencies", () => {
    const names = repository.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining([".ci/run", "scripts/deploy", "scripts/scale-out", "scripts/ensure-test-deps.sh", "scripts/tools/install-checkov.sh"]));
  });

  it.for(repository.map((s) => [s.name, s] as const))("%s has no finding", ([, script], ctx) => {
    needShellcheck(ctx);
    expect([...shellcheck(script), ...unexplainedDirectives(script)]).toEqual([]);
  });
});

describe("the Citus VMs' scripts", () => {
  let stacks: SynthesizedStack[];
  /** One startup script per environment, role and node kind (the rest differ only in their header's values). */
  const startupScripts: Script[] = [];
  beforeAll(() => {
    stacks = synthesizeAll();
    for (const stack of stacks) {
      const seen = new Set<string>();
      for (const vm of resourcesOf(stack.json, "google_compute_instance")) {
        const text = renderedStartupScript(stack.json, vm.conf);
        const role = /readonly ROLE='(\w+)'/.exec(text)?.[1];
        const kind = role === "etcd" ? "etcd member" : `${role} ${/readonly GENERATES_SECRETS='(\d)'/.exec(text)?.[1] === "1" ? "generating secrets" : "member"}`;
        if (seen.has(kind)) continue;
        seen.add(kind);
        startupScripts.push({ name: `the startup script of ${stack.name}'s ${vm.address} (${kind})`, text, source: inBootstrap(text) });
      }
    }
  }, 300_000);

  it("covers the coordinator member that generates the secrets, the coordinator's other member, a worker member and an etcd member", () => {
    const kinds = startupScripts.map((s) => /\((.*)\)$/.exec(s.name)![1]);
    expect(new Set(kinds)).toEqual(new Set(["coordinator generating secrets", "coordinator member", "worker member", "etcd member"]));
    expect(startupScripts.every((s) => s.text.startsWith("#!/bin/bash\n") && s.text.endsWith(s.name.endsWith("(etcd member)") ? etcdSharedScript() : citusSharedScript()))).toBe(true);
  });

  it("startup scripts, as Terraform renders them into instance metadata, have no finding", (ctx) => {
    needShellcheck(ctx);
    expect(startupScripts.flatMap((s) => [...shellcheck(s), ...unexplainedDirectives(s)])).toEqual([]);
  });

  it("the commands the bootstrap installs on each VM have no finding", (ctx) => {
    needShellcheck(ctx);
    const installed: Script[] = [];
    for (const [i, startup] of startupScripts.entries()) {
      if (startup.name.endsWith("(etcd member)")) continue; // installs no program
      const root = join(work, `vm-${i}`);
      const script = join(work, `startup-${i}.sh`);
      writeFileSync(script, startup.text);
      // The bootstrap's own install functions write them, under a temporary root instead of the VM's paths.
      execFileSync("bash", ["-c", `source "$1"; install_backup_metrics; install_leader_check; install_restore_points; install_restore_command`, "bootstrap", script], {
        env: bootstrapEnv(root),
        stdio: "pipe",
      });
      for (const file of readdirSync(join(root, "sbin"))) {
        const text = readFileSync(join(root, "sbin", file), "utf8");
        installed.push({ name: `${file} as installed by ${startup.name.replace(/^the startup script of /, "")}`, text, source: inBootstrap(text) });
      }
    }
    expect(new Set(installed.map((s) => s.name.split(" ")[0]))).toEqual(new Set(CITUS_PROGRAMS));
    expect(installed.flatMap((s) => [...shellcheck(s), ...unexplainedDirectives(s)])).toEqual([]);
  });
});

describe("the Kubernetes manifests' shell commands", () => {
  /** Containers started as `sh -c <script>` (or bash), across every environment's manifests, each script once. */
  const commands = new Map<string, Script>();
  beforeAll(() => {
    for (const config of loadAllEnvironments()) {
      const { objects } = synthesizeEnvironment(config, join(work, "k8s", config.name));
      for (const object of objects) {
        for (const container of containersOf(object)) {
          const [program, flag, inline] = container.command ?? [];
          const shell = /(?:^|\/)(sh|bash)$/.exec(program ?? "")?.[1] as "sh" | "bash" | undefined;
          if (!shell || flag !== "-c") continue;
          const text = `${inline ?? container.args?.[0] ?? ""}\n`;
          if (!commands.has(text)) commands.set(text, { name: `${object.kind}/${object.metadata.name}, container ${container.name} (${config.name}, k8s/src/charts)`, text, shell });
        }
      }
    }
  }, 300_000);

  it("are found (Hydra's server and migration, Kong)", () => {
    expect(commands.size).toBeGreaterThanOrEqual(3);
  });

  it("have no finding", (ctx) => {
    needShellcheck(ctx);
    expect([...commands.values()].flatMap((s) => shellcheck(s))).toEqual([]);
  });
});

describe("the check itself", () => {
  it("fails a script with an unquoted expansion or a directive without its reason, naming file, line and SC code", (ctx) => {
    needShellcheck(ctx);
    const bad: Script = { name: "example.sh", text: '#!/bin/bash\nrm -rf $1/cache\n# shellcheck disable=SC2034\nUNUSED=1\n' };
    expect(shellcheck(bad)).toEqual([expect.stringMatching(/^shellcheck: example\.sh:2:8 SC2086 info: Double quote to prevent globbing/)]);
    expect(unexplainedDirectives(bad)).toEqual(["example.sh:3: a shellcheck directive without its reason: # shellcheck disable=SC2034"]);
  });
});

interface Container {
  name: string;
  command?: string[];
  args?: string[];
}

function containersOf(object: KubernetesObject): Container[] {
  const o = object as unknown as { spec?: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const pod = o.spec?.jobTemplate?.spec?.template?.spec ?? o.spec?.template?.spec ?? (object.kind === "Pod" ? o.spec : undefined);
  return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])] as Container[];
}
