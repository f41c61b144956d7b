/**
 * @module The address of the client behind a connection, proxy-aware: `X-Forwarded-For` is believed
 * only from peers inside `TRUSTED_PROXIES`, and only as far back as the chain stays trusted, so a client
 * cannot pick its own address by sending the header.
 */
import { BlockList, isIP } from 'node:net';

/** The proxies whose `X-Forwarded-For` is believed: a set of CIDR blocks. */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;
  /** The blocks as given, normalized (`10.0.0.0/8`, `::1/128`). */
  readonly cidrs: readonly string[];

  constructor(cidrs: readonly string[]) {
    const normalized: string[] = [];
    for (const cidr of cidrs) {
      const parsed = parseCidr(cidr);
      if (!parsed) throw new TypeError(`Expected a CIDR block like 10.0.0.0/8, got "${cidr}"`);
      this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family);
      normalized.push(`${parsed.address}/${parsed.prefix}`);
    }
    this.cidrs = normalized;
    this.#empty = normalized.length === 0;
  }

  /** Whether `address` (an IP, IPv4-mapped IPv6 included) is a trusted proxy. */
  has(address: string): boolean {
    if (this.#empty) return false;
    const ip = normalizeIp(address);
    if (!ip) return false;
    return this.#list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Trusts nobody: every client is the TCP peer itself. */
export const NO_TRUSTED_PROXIES = new TrustedProxies([]);

/**
 * Parses a comma-separated list of CIDR blocks or single addresses (`10.0.0.0/8, 192.168.1.7, ::1`).
 * Returns the problems found, each naming the bad entry; an empty or unset value is an empty list.
 */
export function parseTrustedProxies(value: string | undefined): { cidrs: string[]; problems: string[] } {
  const cidrs: string[] = [];
  const problems: string[] = [];
  for (const entry of (value ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    if (parseCidr(entry)) cidrs.push(entry);
    else problems.push(`"${entry}" is not an IP address or CIDR block like 10.0.0.0/8 or fd00::/8`);
  }
  return { cidrs, problems };
}

/**
 * The client's address. Starts from the TCP peer; while the current hop is a trusted proxy, steps one
 * entry back through `X-Forwarded-For` (right to left: each proxy appends the address it saw). The first
 * untrusted hop is the client. An entry that is not an IP address ends the walk at the hop before it.
 */
export function clientAddress(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: TrustedProxies,
): string {
  let client = normalizeIp(peer ?? '') ?? peer ?? '';
  if (!trusted.has(client) || forwardedFor === undefined) return client;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i] ?? '');
    if (!hop) break;
    client = hop;
    if (!trusted.has(hop)) break;
  }
  return client;
}

/**
 * An IP address in canonical form, or undefined: IPv4-mapped IPv6 becomes IPv4, brackets and a port
 * (`[::1]:8080`, `203.0.113.7:5000`, as some proxies write them) are removed.
 */
export function normalizeIp(value: string): string | undefined {
  let v = value.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(v);
  if (bracketed?.[1]) v = bracketed[1];
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(v)) v = v.slice(0, v.lastIndexOf(':'));
  const family = isIP(v);
  if (family === 0) return undefined;
  if (family === 6) {
    const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(v);
    if (mapped?.[1]) return mapped[1];
    return v.toLowerCase();
  }
  return v;
}

function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [addressPart, prefixPart, extra] = value.trim().split('/');
  if (extra !== undefined || !addressPart) return undefined;
  const address = normalizeIp(addressPart);
  if (!address) return undefined;
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  const max = family === 'ipv6' ? 128 : 32;
  if (prefixPart === undefined) return { address, prefix: max, family };
  if (!/^\d{1,3}$/.test(prefixPart)) return undefined;
  const prefix = Number(prefixPart);
  if (prefix > max) return undefined;
  return { address, prefix, family };
}
