/** Minimal IPv4 CIDR arithmetic for validating that the ranges of one environment do not overlap. */
export interface Ipv4Range {
  readonly cidr: string;
  readonly first: number;
  readonly last: number;
}

export function parseCidr(cidr: string): Ipv4Range {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!match) throw new Error(`"${cidr}" is not an IPv4 CIDR such as 10.0.0.0/20`);
  const octets = match.slice(1, 5).map(Number);
  const bits = Number(match[5]);
  if (octets.some((o) => o > 255) || bits > 32) throw new Error(`"${cidr}" is not an IPv4 CIDR such as 10.0.0.0/20`);
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - bits);
  if (address % size !== 0) {
    throw new Error(`"${cidr}" has host bits set; the network address for /${bits} is ${formatIpv4(address - (address % size))}`);
  }
  return { cidr, first: address, last: address + size - 1 };
}

export function formatIpv4(address: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".");
}

export function rangesOverlap(a: Ipv4Range, b: Ipv4Range): boolean {
  return a.first <= b.last && b.first <= a.last;
}

export function prefixLength(cidr: string): number {
  return Number(cidr.split("/")[1]);
}
