/**
 * A test host behind a router, each in a network namespace this test made, and a switch that cuts the link without
 * a word: packets are dropped at the router, so neither end's kernel learns anything (no reset, no local error), as
 * when a GKE node is lost or a zone's network fails. The sender's TCP retransmits and probes into the void, which
 * is exactly what keepalives and TCP_USER_TIMEOUT are for.
 *
 *   this namespace (the server, `serverAddress`) <-> router namespace <-> host namespace (`hostAddress`)
 *
 * Why a router and not the two ends' own queues: a packet dropped by the sender's own queue is local congestion to
 * its kernel, which then neither counts a keepalive probe as lost nor gives up (tried: the session lived on).
 * The cut is a zero-length queue on both of the router's links, since this kernel has no netem and no tc filters.
 * That queue drops ARP too, so every neighbour entry on the links is made permanent: otherwise the server's entry
 * for the router fails some seconds into the cut, and its retransmissions then fail locally ("No route to host"),
 * which moves the start of TCP_USER_TIMEOUT's clock by up to about 20 s (tried: a session sent bytes 13 s into the
 * cut went 81.6 s after them instead of 60). A cloud network (a GCP VPC answers ARP itself) has no such entry to lose.
 * Needs root (CAP_NET_ADMIN) and iproute2.
 */
import { execFileSync, spawnSync } from "node:child_process";

export interface IsolatedHost {
  /** The namespace a process runs in: `ip netns exec <namespace> <command>` (see `prefix`). */
  readonly namespace: string;
  /** The command prefix that runs a program on the host. */
  readonly prefix: readonly string[];
  /** This namespace's address on the link: what a server here listens on, for the host to reach it. */
  readonly serverAddress: string;
  /** The host's address, as the server sees its connections (pg_stat_activity.client_addr). */
  readonly hostAddress: string;
  /** Drops every packet between the host and this namespace, both ways, from now on. */
  cut(): void;
  /** Lets packets through again. */
  heal(): void;
  /** Removes the namespaces and links (routes through them go with them). */
  remove(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
const inNamespace = (ns: string, ...args: string[]) => ip("netns", "exec", ns, ...args);
/** A link's hardware address, in this namespace (undefined) or another. */
const macOf = (dev: string, ns?: string): string => {
  const out = execFileSync("ip", [...(ns ? ["-n", ns] : []), "-j", "link", "show", "dev", dev], { encoding: "utf8" });
  return (JSON.parse(out) as { address: string }[])[0]!.address;
};

/** Why an isolated host cannot be made here, or undefined. */
export function isolatedHostUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to make network namespaces";
  if (spawnSync("ip", ["-V"]).status !== 0) return "iproute2's ip is not installed (apt-get install iproute2)";
  if (spawnSync("tc", ["-V"]).status !== 0) return "iproute2's tc is not installed (apt-get install iproute2)";
  // Everything the host needs, tried in a namespace of its own: a namespace, a veth pair, the cut's queue.
  const probe = `pltprobe${process.pid}`;
  const made = spawnSync("ip", ["netns", "add", probe]);
  if (made.status !== 0) return `cannot make a network namespace: ${made.stderr.toString().trim()}`;
  try {
    for (const [what, args] of [
      ["a veth pair", ["ip", "link", "add", "pa", "type", "veth", "peer", "name", "pb"]],
      ["a link up", ["ip", "link", "set", "pa", "up"]],
      ["a zero-length queue (tc pfifo)", ["tc", "qdisc", "add", "dev", "pa", "root", "pfifo", "limit", "0"]],
    ] as const) {
      const tried = spawnSync("ip", ["netns", "exec", probe, ...args]);
      if (tried.status !== 0) return `cannot make ${what} in a network namespace: ${tried.stderr.toString().trim()}`;
    }
    return undefined;
  } finally {
    spawnSync("ip", ["netns", "del", probe]);
  }
}

/** Picks two /30 link networks in 10.213.0.0/16 that no route of this namespace uses yet. */
function freeSubnets(): [number, number] {
  const routes = execFileSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8" });
  const used = new Set([...routes.matchAll(/\b10\.213\.(\d+)\./g)].map((m) => Number(m[1])));
  const free: number[] = [];
  for (let n = 1 + (process.pid % 200); free.length < 2; n = (n % 250) + 1) if (!used.has(n)) free.push(n);
  return [free[0]!, free[1]!];
}

export function startIsolatedHost(): IsolatedHost {
  const unavailable = isolatedHostUnavailable();
  if (unavailable) throw new Error(unavailable);
  const id = `${process.pid % 100_000}${Math.floor(Math.random() * 100)}`;
  const router = `plt-router-${id}`;
  const host = `plt-host-${id}`;
  // Interface names stay within the kernel's 15 characters.
  const [serverSide, routerToServer, routerToHost, hostSide] = ["pls", "plr", "plq", "plh"].map((p) => `${p}${id}`) as [string, string, string, string];
  const [a, b] = freeSubnets();
  const serverAddress = `10.213.${a}.1`;
  const routerServerAddress = `10.213.${a}.2`;
  const routerHostAddress = `10.213.${b}.1`;
  const hostAddress = `10.213.${b}.2`;
  const remove = () => {
    spawnSync("ip", ["link", "del", serverSide]);
    for (const ns of [router, host]) spawnSync("ip", ["netns", "del", ns]);
  };
  try {
    ip("netns", "add", router);
    ip("netns", "add", host);
    ip("link", "add", serverSide, "type", "veth", "peer", "name", routerToServer, "netns", router);
    ip("link", "add", hostSide, "netns", host, "type", "veth", "peer", "name", routerToHost, "netns", router);
    ip("addr", "add", `${serverAddress}/30`, "dev", serverSide);
    ip("link", "set", serverSide, "up");
    ip("route", "add", `10.213.${b}.0/30`, "via", routerServerAddress);
    inNamespace(router, "ip", "addr", "add", `${routerServerAddress}/30`, "dev", routerToServer);
    inNamespace(router, "ip", "addr", "add", `${routerHostAddress}/30`, "dev", routerToHost);
    for (const dev of [routerToServer, routerToHost, "lo"]) inNamespace(router, "ip", "link", "set", dev, "up");
    inNamespace(router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    inNamespace(host, "ip", "addr", "add", `${hostAddress}/30`, "dev", hostSide);
    for (const dev of [hostSide, "lo"]) inNamespace(host, "ip", "link", "set", dev, "up");
    inNamespace(host, "ip", "route", "add", "default", "via", routerHostAddress);
    // Permanent neighbours, so the cut drops IP packets only and no end learns of it through ARP (header).
    const neighbour = (ns: string | undefined, address: string, dev: string, mac: string) =>
      ip(...(ns ? ["-n", ns] : []), "neigh", "replace", address, "lladdr", mac, "dev", dev, "nud", "permanent");
    neighbour(undefined, routerServerAddress, serverSide, macOf(routerToServer, router));
    neighbour(router, serverAddress, routerToServer, macOf(serverSide));
    neighbour(router, hostAddress, routerToHost, macOf(hostSide, host));
    neighbour(host, routerHostAddress, hostSide, macOf(routerToHost, router));
  } catch (error) {
    remove();
    throw new Error(`making the isolated host failed: ${(error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message}`);
  }
  return {
    namespace: host,
    prefix: ["ip", "netns", "exec", host],
    serverAddress,
    hostAddress,
    cut() {
      for (const dev of [routerToServer, routerToHost]) inNamespace(router, "tc", "qdisc", "replace", "dev", dev, "root", "pfifo", "limit", "0");
    },
    heal() {
      for (const dev of [routerToServer, routerToHost]) spawnSync("ip", ["netns", "exec", router, "tc", "qdisc", "del", "dev", dev, "root"]);
    },
    remove,
  };
}
