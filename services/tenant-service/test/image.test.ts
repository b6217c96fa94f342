/**
 * The image's build, replayed without a container engine (there is none here): the Dockerfile's build stage step by
 * step (its COPYs from the repository with .dockerignore applied, its RUNs as written), then the result started as
 * the final stage starts it (its ENV, ENTRYPOINT and CMD; for the worker, src/worker.ts as the chart gives it), with
 * production's NODE_ENV, against a real PostgreSQL and Redis. Until this test, the image had never been built: its build stage
 * left out three workspace packages the service reaches, and `pnpm deploy` refused to run.
 *
 * Not replayed: the base images themselves (node:20.19-bookworm-slim, distroless's nodejs20), the user, the copy
 * between stages. The node that runs the result is this machine's (Node 20, as in both base images).
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@platform/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installQueue } from "../src/worker/queue.js";
import { AUDIENCE, ISSUER, startStack, unavailable, type Stack } from "./harness.js";
import { startNode, waitUntilServing, type RunningProcess } from "./processes.js";

const SERVICE_DIR = fileURLToPath(new URL("..", import.meta.url));
const CONTEXT = resolve(SERVICE_DIR, "../..");
const DOCKERFILE = join(SERVICE_DIR, "Dockerfile");

export interface Instruction {
  readonly op: string;
  readonly args: string;
}
export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: Instruction[];
}

/** The Dockerfile's stages, continuation lines joined and comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = "";
  }
  const stages: Stage[] = [];
  for (const line of logical.filter(Boolean)) {
    const [, op, args] = /^(\w+)\s+(.*)$/s.exec(line) ?? [];
    if (!op) throw new Error(`Dockerfile: cannot read the line "${line}"`);
    if (op.toUpperCase() === "FROM") {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args!) ?? [];
      stages.push({ from: from!, ...(name ? { name } : {}), instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile: ${op} before the first FROM`);
      stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args: args! });
    }
  }
  return stages;
}

/** .dockerignore as this repository writes it: `**\/name` (any depth) or a bare name (the root only). */
export function dockerIgnore(text: string): (path: string) => boolean {
  const anyDepth = new Set<string>();
  const atRoot = new Set<string>();
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (line === "" || line.startsWith("#")) continue;
    const deep = /^\*\*\/([^/*?[\]!]+)$/.exec(line);
    if (deep) anyDepth.add(deep[1]!);
    else if (/^[^/*?[\]!]+$/.test(line)) atRoot.add(line);
    else throw new Error(`.dockerignore: "${line}" is a pattern this test does not replay; write **/name or a bare name, or teach image.test.ts`);
  }
  return (path) => {
    const parts = path.split("/");
    return atRoot.has(parts[0]!) || parts.some((p) => anyDepth.has(p));
  };
}

const jsonArray = (args: string): string[] => {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) throw new Error(`Dockerfile: expected the exec form (a JSON array), got ${args}`);
  return parsed as string[];
};

const unavailableHere = unavailable ?? (existsSync(DOCKERFILE) ? undefined : "no Dockerfile");
if (unavailableHere) console.warn(`skipping the image replay: ${unavailableHere}`);

describe.skipIf(unavailableHere !== undefined)("the tenant-service image, its build replayed and its result started", () => {
  let stack: Stack;
  let scratch: string;
  let appDir: string;
  let entrypoint: string[];
  let cmd: string[];
  let imageEnv: Record<string, string>;
  const running: RunningProcess[] = [];

  beforeAll(async () => {
    const stages = parseDockerfile(readFileSync(DOCKERFILE, "utf8"));
    expect(stages.map((s) => s.name ?? null)).toEqual(["build", null]);
    const [build, final] = stages as [Stage, Stage];
    // Where the final stage takes its files from, in the build stage: the path the replay maps to a scratch directory.
    const fromBuild = final.instructions.find((i) => i.op === "COPY" && i.args.includes("--from=build"));
    const [builtPath, finalPath] = fromBuild!.args.split(/\s+/).filter((a) => !a.startsWith("--"));
    expect(finalPath, "the final stage runs from the directory it copies the build into").toBe(final.instructions.find((i) => i.op === "WORKDIR")?.args);

    scratch = mkdtempSync(join(tmpdir(), "image-replay-"));
    appDir = join(scratch, "app");
    const ignored = dockerIgnore(readFileSync(join(CONTEXT, ".dockerignore"), "utf8"));
    let workdir = scratch;
    for (const { op, args } of build.instructions) {
      if (op === "WORKDIR") {
        workdir = join(scratch, args);
      } else if (op === "COPY") {
        const paths = args.split(/\s+/);
        const dest = resolve(workdir, paths.pop()!);
        for (const source of paths) {
          const from = join(CONTEXT, source);
          const target = paths.length > 1 || statSync(from).isFile() ? join(dest, source.split("/").pop()!) : dest;
          cpSync(from, target, { recursive: true, filter: (p) => !ignored(relative(CONTEXT, p)) });
        }
      } else if (op === "RUN") {
        const pnpm = /^npm install -g pnpm@(\S+)$/.exec(args);
        if (pnpm) {
          // Not installed here: the machine's pnpm must be the one the image installs.
          expect(execFileSync("pnpm", ["--version"], { encoding: "utf8" }).trim(), "this machine's pnpm is not the image's").toBe(pnpm[1]);
          continue;
        }
        const command = args.replace(new RegExp(`(^|\\s)${builtPath}(?=\\s|$)`, "g"), `$1${appDir}`);
        try {
          execFileSync("bash", ["-c", command], { cwd: workdir, encoding: "utf8", stdio: "pipe", env: { ...process.env, CI: "true" }, timeout: 600_000 });
        } catch (error) {
          const { stdout, stderr } = error as { stdout?: string; stderr?: string };
          throw new Error(`the build stage's RUN failed, as docker build would: ${args}\n${stderr ?? ""}${stdout ?? ""}`);
        }
      } else {
        throw new Error(`the replay does not know the build stage's ${op}: teach image.test.ts`);
      }
    }
    entrypoint = jsonArray(final.instructions.find((i) => i.op === "ENTRYPOINT")!.args);
    cmd = jsonArray(final.instructions.find((i) => i.op === "CMD")!.args);
    imageEnv = Object.fromEntries(final.instructions.filter((i) => i.op === "ENV").map((i) => i.args.split("=", 2) as [string, string]));

    stack = await startStack();
    await installQueue(stack.pg.urlFor("platform_migrator", "migrator"));
  }, 900_000);
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await stack?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** The image's command (its node replaced by this machine's) with `args` in place of CMD, as the chart gives them. */
  const startImage = (args: readonly string[], env: Record<string, string>) => {
    expect(entrypoint[0]).toMatch(/\/node$/);
    const started = startNode([...entrypoint.slice(1), ...args], { ...imageEnv, ...env }, { cwd: appDir });
    running.push(started);
    return started;
  };
  const production = () => ({
    DATABASE_URL: stack.config.DATABASE_URL!,
    REDIS_URL: stack.config.REDIS_URL!,
    // Read on a token's first use only: nothing here asks for one.
    AUTH_JWKS_URL: "http://127.0.0.1:9/.well-known/jwks.json",
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    HYDRA_ADMIN_URL: "http://127.0.0.1:9",
    EXPORT_STORE: "gcs",
    EXPORT_BUCKET: "image-replay-exports",
  });

  it("holds only what it needs: the service's sources and production dependencies, no tests' packages, nothing of the build machine", () => {
    // The build context leaves out what the building machine installed or generated.
    const ignored = dockerIgnore(readFileSync(join(CONTEXT, ".dockerignore"), "utf8"));
    for (const path of ["node_modules/zod/package.json", "citus/node_modules/pg/package.json", ".git/HEAD", "infra/cdktf.out/manifest.json"]) expect(ignored(path), path).toBe(true);
    expect(ignored("services/tenant-service/src/server.ts")).toBe(false);
    expect(existsSync(join(appDir, "src/server.ts"))).toBe(true);
    expect(existsSync(join(appDir, "node_modules/@platform/citus/src/index.ts"))).toBe(true);
    // Development dependencies stay out (--prod).
    expect(existsSync(join(appDir, "node_modules/vitest"))).toBe(false);
    expect(existsSync(join(appDir, "node_modules/@platform/testing"))).toBe(false);
  });

  it("the service starts with the image's command and production's NODE_ENV, and is ready against a real database and Redis", async () => {
    expect(cmd).toEqual(["src/server.ts"]);
    expect(imageEnv.NODE_ENV).toBe("production");
    const port = await freePort();
    const service = startImage(cmd, { ...production(), HOST: "127.0.0.1", PORT: String(port) });
    await waitUntilServing(service, `http://127.0.0.1:${port}/health`, 120_000);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    expect(ready.status, await ready.text()).toBe(200);
    const unauthenticated = await fetch(`http://127.0.0.1:${port}/v1/tenants`);
    expect(unauthenticated.status).toBe(401);
    expect(await service.stop()).toBe(0);
  }, 180_000);

  it("the worker starts with the chart's command and answers its liveness probe", async () => {
    const healthPort = await freePort();
    const worker = startImage(["src/worker.ts"], { ...production(), HEALTH_PORT: String(healthPort) });
    await waitUntilServing(worker, `http://127.0.0.1:${healthPort}/livez`, 120_000);
    expect(await worker.stop()).toBe(0);
  }, 180_000);
});
