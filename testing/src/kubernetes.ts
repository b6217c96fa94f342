/**
 * A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver and kube-controller-manager, built from
 * the Go module proxy by scripts/tools/install-kubernetes.sh. No kubelet and no scheduler: pods are created and pass
 * admission (Pod Security, quotas, limit ranges, priority classes, service accounts), then stay Pending, which is all
 * the manifests' tests need to know.
 *
 * The API server authenticates one static token in system:masters, as a cluster admin's kubeconfig would; its
 * serving certificate is the self-signed one it makes for itself, so the kubeconfig skips verification (loopback).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./postgres.js";
import { waitFor as poll } from "./wait.js";

export interface ControlPlane {
  /** A kubeconfig for the cluster admin. */
  readonly kubeconfig: string;
  /** Environment for a child process: KUBECONFIG, and PATH starting with the directory of this kubectl. */
  readonly env: NodeJS.ProcessEnv;
  /** Runs kubectl against this cluster: exit code and both streams, never throws on a non-zero exit. */
  kubectl(args: readonly string[], options?: { input?: string }): { status: number; stdout: string; stderr: string };
  /** kubectl that must succeed: its stdout, or an error with what it said. */
  kubectlOk(args: readonly string[], options?: { input?: string }): string;
  /** Stops the controllers, so nothing but the test writes to the API any more. */
  stopControllers(): Promise<void>;
  stop(): Promise<void>;
}

interface Process {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
}

function startProcess(dir: string, name: string, binary: string, args: string[]): Process {
  const log = join(dir, `${name}.log`);
  writeFileSync(log, "");
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const append = (chunk: Buffer) => writeFileSync(log, chunk, { flag: "a" });
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  return { name, child, log };
}

function tail(p: Process, lines = 30): string {
  return readFileSync(p.log, "utf8").trim().split("\n").slice(-lines).join("\n");
}

async function stopProcess(p: Process): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null || p.child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => p.child.once("exit", () => resolve()));
  try {
    process.kill(-p.child.pid, "SIGTERM");
  } catch {
    return;
  }
  const killed = setTimeout(() => {
    try {
      process.kill(-p.child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }, 10_000);
  await exited;
  clearTimeout(killed);
}

/** `poll`, ended early when one of the watched processes exits, and failing with each one's last lines. */
async function waitFor(what: string, timeoutMs: number, watched: readonly Process[], probe: () => boolean): Promise<void> {
  await poll(
    what,
    () => {
      if (probe()) return true;
      const dead = watched.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited (code ${String(dead.child.exitCode)}) while waiting for ${what}:\n${tail(dead)}`);
      return false;
    },
    { timeoutMs, intervalMs: 300, detail: () => `\n${watched.map((p) => `--- ${p.name}\n${tail(p, 15)}`).join("\n")}` },
  );
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager from `binDir` (install-kubernetes.sh's output) and waits
 * until the API server is ready and the controllers hold their lease-free loops.
 */
export async function startControlPlane(binDir: string): Promise<ControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), "platform-kube-"));
  const processes: Process[] = [];
  const stopAll = async () => {
    for (const p of [...processes].reverse()) await stopProcess(p);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    processes.push(
      startProcess(dir, "etcd", join(binDir, "etcd"), [
        "--name", "kube", "--data-dir", join(dir, "etcd"),
        "--listen-client-urls", etcdUrl, "--advertise-client-urls", etcdUrl,
        "--listen-peer-urls", `http://127.0.0.1:${etcdPeer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeer}`,
        "--initial-cluster", `kube=http://127.0.0.1:${etcdPeer}`,
        // A test's data: durability is not the point, and fsync on a shared CI disk is what makes etcd slow.
        "--unsafe-no-fsync",
        "--log-level", "warn",
      ]),
    );

    // The service-account token signer: the API server verifies with the public half, the controllers sign with the
    // private one (tokens for pods' projected volumes).
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const saPublic = join(dir, "sa.pub");
    const saPrivate = join(dir, "sa.key");
    writeFileSync(saPublic, publicKey.export({ type: "spki", format: "pem" }));
    writeFileSync(saPrivate, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    const token = randomBytes(24).toString("hex");
    writeFileSync(join(dir, "tokens.csv"), `${token},admin,admin,system:masters\n`, { mode: 0o600 });
    const certDir = join(dir, "certs");
    mkdirSync(certDir);

    const apiserver = startProcess(dir, "kube-apiserver", join(binDir, "kube-apiserver"), [
      "--etcd-servers", etcdUrl,
      "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", String(apiPort),
      "--cert-dir", certDir,
      "--token-auth-file", join(dir, "tokens.csv"),
      "--authorization-mode", "RBAC",
      "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
      "--service-account-key-file", saPublic,
      "--service-account-signing-key-file", saPrivate,
      "--service-cluster-ip-range", "10.96.0.0/16",
      // Admission is the default plugin set (PodSecurity, LimitRanger, ResourceQuota, Priority, ServiceAccount, ...),
      // as on GKE: nothing is added or taken away for the test.
    ]);
    processes.push(apiserver);

    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        `- name: test\n  cluster:\n    server: https://127.0.0.1:${apiPort}\n    insecure-skip-tls-verify: true`,
        "users:",
        `- name: admin\n  user:\n    token: ${token}`,
        "contexts:",
        "- name: test\n  context:\n    cluster: test\n    user: admin",
        "current-context: test",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH ?? ""}` };
    const kubectl = (args: readonly string[], options: { input?: string } = {}) => {
      const run = spawnSync(join(binDir, "kubectl"), args, { env, encoding: "utf8", input: options.input, maxBuffer: 256 * 1024 * 1024, timeout: 300_000 });
      if (run.error) throw new Error(`kubectl ${args.join(" ")}: ${run.error.message}`);
      return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
    };
    const kubectlOk = (args: readonly string[], options: { input?: string } = {}) => {
      const run = kubectl(args, options);
      if (run.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (exit ${run.status}):\n${run.stderr}${run.stdout}`);
      return run.stdout;
    };

    await waitFor("the API server to be ready", 120_000, processes, () => kubectl(["get", "--raw", "/readyz"]).stdout.trim() === "ok");

    const controllers = startProcess(dir, "kube-controller-manager", join(binDir, "kube-controller-manager"), [
      "--kubeconfig", kubeconfig,
      "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
      "--bind-address", "127.0.0.1", "--secure-port", String(await freePort()),
      "--leader-elect=false",
      "--service-account-private-key-file", saPrivate,
      "--root-ca-file", join(certDir, "apiserver.crt"),
      "--cluster-name", "test",
      // Quotas are recalculated often, so a pod refused for "status unknown" is retried within seconds.
      "--resource-quota-sync-period", "5s",
    ]);
    processes.push(controllers);
    // The service-account controller makes every namespace's "default" account: its presence in kube-system says the
    // controllers run.
    await waitFor("the controllers to start", 120_000, processes, () => kubectl(["-n", "kube-system", "get", "serviceaccount", "default", "-o", "name"]).status === 0);

    return {
      kubeconfig,
      env,
      kubectl,
      kubectlOk,
      stopControllers: () => stopProcess(controllers),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
