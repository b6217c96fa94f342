/**
 * Where a webhook may send (server-side request forgery): HTTPS only, and only to global unicast addresses. A tenant
 * must not make the platform's worker reach the cluster's own services, the metadata server (169.254.169.254) or
 * anything else inside. Checked twice: when the webhook is subscribed (routes/webhooks.ts), and at each delivery on
 * the very address the connection is opened to (checkedLookup, worker/webhooks.ts), so a name that resolved to a
 * public address at subscription and to 127.0.0.1 since (DNS rebinding) is refused at delivery.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** Ranges a deployment still lets webhooks reach, although private or loopback (WEBHOOK_ALLOWED_PRIVATE_CIDRS). */
export type AllowedRanges = readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];

/** Parses "127.0.0.1/32, 10.1.0.0/16" (empty: none); throws a message naming the bad entry. */
export function parseAllowedRanges(text: string): AllowedRanges {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((cidr) => {
      try {
        return ipaddr.parseCIDR(cidr);
      } catch {
        throw new Error(`"${cidr}" is not a CIDR range such as 127.0.0.1/32 or fd00::/8`);
      }
    });
}

export class TargetRefused extends Error {
  override readonly name = "TargetRefused";
}

/**
 * Why `address` may not be reached, or undefined when it may. Only ipaddr.js's `unicast` (no special-purpose range:
 * not private, loopback, link-local, unique-local, carrier-grade NAT, multicast, reserved, documentation, 6to4,
 * Teredo, NAT64...) passes, unless an allowed range holds it. An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is judged
 * as the IPv4 address it is.
 */
export function refusalOf(address: string, allowed: AllowedRanges): string | undefined {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(address);
  } catch {
    return `${address} is not an IP address`;
  }
  if (allowed.some(([range, bits]) => range.kind() === ip.kind() && ip.match(range, bits))) return undefined;
  const range = ip.range();
  return range === "unicast" ? undefined : `${address} is a ${range} address`;
}

export type Resolver = (hostname: string) => Promise<string[]>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses.map((a) => a.address)))));

/** The URL's host as an address when it is one (brackets of an IPv6 literal removed), else undefined. */
function literalAddress(url: URL): string | undefined {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) ? host : undefined;
}

/**
 * Checks a target URL as given by a tenant: HTTPS, no credentials in it, and every address its host resolves to
 * allowed. Throws TargetRefused with what was wrong and what to do.
 */
export async function checkTarget(text: string, allowed: AllowedRanges, resolve: Resolver = systemResolver): Promise<URL> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TargetRefused("is not a URL: send an absolute https:// URL");
  }
  if (url.protocol !== "https:") throw new TargetRefused(`must be an https:// URL (got ${url.protocol}//): deliveries are only sent over TLS`);
  if (url.username || url.password) throw new TargetRefused("must not carry credentials: deliveries are authenticated by their signature");
  if (url.hash) throw new TargetRefused("must not have a #fragment");
  const literal = literalAddress(url);
  const addresses = literal ? [literal] : await resolve(url.hostname).catch((error: NodeJS.ErrnoException) => {
    throw new TargetRefused(`host ${url.hostname} does not resolve (${error.code ?? error.message}): use a name with public DNS`);
  });
  if (addresses.length === 0) throw new TargetRefused(`host ${url.hostname} does not resolve: use a name with public DNS`);
  for (const address of addresses) {
    const why = refusalOf(address, allowed);
    if (why) throw new TargetRefused(`host ${url.hostname} is not a public address (${why}): webhooks reach only the public internet`);
  }
  return url;
}

/** Refuses an IP-literal target at delivery: a connection to an address skips the lookup below. */
export function checkLiteralTarget(url: URL, allowed: AllowedRanges): void {
  const literal = literalAddress(url);
  const why = literal && refusalOf(literal, allowed);
  if (why) throw new TargetRefused(why);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/tls.connect (undici's connect options pass it through): resolves once, refuses the connection
 * unless every address is allowed, and hands the checked addresses to the socket, which connects to one of them. No
 * second resolution happens between the check and the connection.
 */
export function checkedLookup(allowed: AllowedRanges, resolve: Resolver = systemResolver) {
  return (hostname: string, options: { all?: boolean; family?: number | string } | number | undefined, callback: LookupCallback): void => {
    resolve(hostname).then(
      (addresses) => {
        const refused = addresses.length === 0 ? `${hostname} does not resolve` : addresses.map((a) => refusalOf(a, allowed)).find((why) => why !== undefined);
        if (refused) {
          const error: NodeJS.ErrnoException = new TargetRefused(`refused to connect to ${hostname}: ${refused}`);
          error.code = "EWEBHOOKTARGET";
          return callback(error, "");
        }
        // Every address was judged above; the socket gets those of the family it asked for.
        const asked = typeof options === "number" ? options : options?.family;
        const family = asked === "IPv4" ? 4 : asked === "IPv6" ? 6 : Number(asked ?? 0) || 0;
        const list = addresses.map((address) => ({ address, family: isIP(address) })).filter((a) => family === 0 || a.family === family);
        if (list.length === 0) return callback(Object.assign(new Error(`${hostname} has no IPv${family} address`), { code: "ENOTFOUND" }), "");
        if (typeof options === "object" && options?.all) return callback(null, list);
        return callback(null, list[0]!.address, list[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ""),
    );
  };
}
