/**
 * What Kong 3.9 (the pinned image, config/src/images.ts) does with a request's address and headers when it
 * rate-limits: the scenario tests in edge.test.ts run attackers' requests through it against the generated
 * configuration. Kong itself cannot run here (no package registry this machine reaches has it), so this follows its
 * source at tag 3.9.1, rule by rule; each function names the code it follows. It is a model, not Kong: the
 * decK check in edge.test.ts and a request against a real Kong (docs/DEPLOYMENT.md) are what prove the config.
 */
import { parseCidr } from "@platform/config";

export interface EdgeRequest {
  /** The TCP peer Kong sees (the client itself behind the L4 passthrough load balancer). */
  readonly peer: string;
  /** Request headers, names in lower case. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Kong's settings that decide which address a request comes from (kong.conf; defaults from kong_defaults.lua). */
export interface AddressSettings {
  readonly trustedIps: readonly string[];
  readonly realIpHeader: string;
  readonly realIpRecursive: boolean;
}

/** The rate-limiting plugin's fields that matter here (kong/plugins/rate-limiting/schema.lua). */
export interface RateLimitingConfig {
  readonly limit_by?: string;
  readonly header_name?: string;
  readonly second?: number;
  readonly minute?: number;
  readonly hour?: number;
}

/** The settings as Kong reads them from its KONG_* environment; unset means Kong's default. */
export function addressSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): AddressSettings {
  return {
    trustedIps: (env.KONG_TRUSTED_IPS ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "NONE"),
    realIpHeader: env.KONG_REAL_IP_HEADER ?? "X-Real-IP",
    realIpRecursive: (env.KONG_REAL_IP_RECURSIVE ?? "off") === "on",
  };
}

function isIpv6(address: string): boolean {
  return address.includes(":");
}

/** nginx's set_real_ip_from match. IPv4 ranges, and ::/0 for "every IPv6 address" (all the configs here use). */
function trusted(ranges: readonly string[], address: string): boolean {
  return ranges.some((range) => {
    if (isIpv6(range)) {
      if (range !== "::/0") throw new Error(`the model matches IPv6 ranges only as ::/0, not ${range}`);
      return isIpv6(address);
    }
    if (range.startsWith("unix:") || isIpv6(address)) return false;
    const r = parseCidr(range.includes("/") ? range : `${range}/32`);
    const n = address.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
    return n >= r.first && n <= r.last;
  });
}

/**
 * $remote_addr after nginx's realip module, which is what kong.client.get_forwarded_ip() returns (kong/pdk/client.lua)
 * and what Kong logs. Only a peer in trusted_ips (Kong writes one set_real_ip_from per entry, nginx_kong.lua) may
 * name another address. X-Forwarded-For is read from the right: without recursion the last address; with it, the
 * last one that is not itself trusted (ngx_http_get_forwarded_addr).
 */
export function clientAddress(settings: AddressSettings, request: EdgeRequest): string {
  if (!trusted(settings.trustedIps, request.peer)) return request.peer;
  const value = request.headers?.[settings.realIpHeader.toLowerCase()];
  if (!value) return request.peer;
  if (settings.realIpHeader.toLowerCase() !== "x-forwarded-for") return value.trim();
  const hops = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!settings.realIpRecursive) return hops[hops.length - 1] ?? request.peer;
  for (let i = hops.length - 1; i >= 0; i--) if (!trusted(settings.trustedIps, hops[i]!)) return hops[i]!;
  return hops[0] ?? request.peer;
}

/**
 * The key the plugin counts a request under: get_identifier() in kong/plugins/rate-limiting/handler.lua. No
 * authentication plugin runs at this edge, so consumer and credential are always absent and fall back to the address.
 */
export function rateLimitKey(config: RateLimitingConfig, settings: AddressSettings, request: EdgeRequest): string {
  const limitBy = config.limit_by ?? "consumer";
  let identifier: string | undefined;
  if (limitBy === "header") identifier = request.headers?.[String(config.header_name).toLowerCase()];
  else if (limitBy === "service" || limitBy === "path") throw new Error(`the model does not cover limit_by ${limitBy}`);
  return identifier ?? clientAddress(settings, request);
}

const PERIODS = { second: 1_000, minute: 60_000, hour: 3_600_000 } as const;

/**
 * The plugin's fixed windows, shared by every Kong replica through Redis: a request is refused (429) when any of
 * its key's windows is full, and counted in all of them when admitted (handler.lua: get_usage, then increment).
 */
export class EdgeRateLimiter {
  private readonly counters = new Map<string, number>();

  constructor(
    private readonly config: RateLimitingConfig,
    private readonly settings: AddressSettings,
  ) {}

  admit(request: EdgeRequest, atMs: number): boolean {
    const key = rateLimitKey(this.config, this.settings, request);
    const windows = (Object.keys(PERIODS) as (keyof typeof PERIODS)[])
      .filter((p) => this.config[p] !== undefined)
      .map((p) => ({ limit: this.config[p]!, counter: `${key}|${p}|${Math.floor(atMs / PERIODS[p])}` }));
    if (windows.some((w) => (this.counters.get(w.counter) ?? 0) >= w.limit)) return false;
    for (const w of windows) this.counters.set(w.counter, (this.counters.get(w.counter) ?? 0) + 1);
    return true;
  }
}
