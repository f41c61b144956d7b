/**
 * @module Server-side request forgery guard for outbound webhooks. A subscriber chooses the URL, so
 * the gateway must not become a way to reach its own network: every address a hostname resolves to is
 * classified, and the connection is pinned to the vetted address so the check and the connection use
 * the same IP (a DNS answer that changes between the two, "DNS rebinding", gains nothing).
 *
 * Ranges follow the IANA special-purpose registries (RFC 6890 and its updates): loopback, RFC 1918
 * private space, RFC 6598 shared (CGNAT) space, link-local (where cloud metadata services live),
 * unique-local IPv6 (RFC 4193), documentation, benchmarking, multicast and reserved space. IPv6 forms
 * that embed an IPv4 address (mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, NAT64
 * `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address inside. The local-use NAT64 prefix
 * `64:ff9b:1::/48` (RFC 8215) is private outright: it leads to a translator of the local network, and
 * where the IPv4 address sits in it depends on a prefix length chosen by that network. IPv4-compatible
 * `::a.b.c.d` (deprecated) and Teredo `2001::/32` are reserved space, refused always.
 */
import { promises as dns } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Why an address is refused; `null` when it is a public unicast address. */
export type AddressClass =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'shared'
  | 'link-local'
  | 'metadata'
  | 'multicast'
  | 'reserved';

/**
 * Classes refused even with `WEBHOOKS_ALLOW_PRIVATE=true`: the unspecified address reaches the host
 * itself on Linux, cloud metadata services hand out credentials, and multicast/reserved space cannot
 * carry an HTTP exchange at all.
 */
const ALWAYS_REFUSED: ReadonlySet<AddressClass> = new Set([
  'unspecified',
  'metadata',
  'multicast',
  'reserved',
]);

type Range = readonly [address: string, prefix: number];

const V4: ReadonlyArray<readonly [AddressClass, readonly Range[]]> = [
  // AWS/GCP/Azure/OpenStack metadata (169.254.169.254), Alibaba Cloud (100.100.100.200), Oracle (192.0.0.192).
  [
    'metadata',
    [
      ['169.254.169.254', 32],
      ['100.100.100.200', 32],
      ['192.0.0.192', 32],
    ],
  ],
  ['unspecified', [['0.0.0.0', 8]]],
  ['loopback', [['127.0.0.0', 8]]],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
    ],
  ],
  ['shared', [['100.64.0.0', 10]]],
  ['link-local', [['169.254.0.0', 16]]],
  ['multicast', [['224.0.0.0', 4]]],
  [
    'reserved',
    [
      ['192.0.0.0', 24], // IETF protocol assignments
      ['192.0.2.0', 24], // TEST-NET-1
      ['198.18.0.0', 15], // benchmarking
      ['198.51.100.0', 24], // TEST-NET-2
      ['203.0.113.0', 24], // TEST-NET-3
      ['240.0.0.0', 4], // reserved, includes 255.255.255.255
    ],
  ],
];

const V6: ReadonlyArray<readonly [AddressClass, readonly Range[]]> = [
  // AWS IMDS over IPv6.
  ['metadata', [['fd00:ec2::254', 128]]],
  ['unspecified', [['::', 128]]],
  ['loopback', [['::1', 128]]],
  [
    'private',
    [
      ['fc00::', 7],
      ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
    ],
  ],
  ['link-local', [['fe80::', 10]]],
  ['multicast', [['ff00::', 8]]],
  [
    'reserved',
    [
      ['100::', 64], // discard-only
      ['2001:db8::', 32], // documentation
      ['2001::', 23], // IETF protocol assignments (Teredo and ORCHID included)
      ['::', 96], // deprecated IPv4-compatible addresses
    ],
  ],
];

function blockLists(
  table: ReadonlyArray<readonly [AddressClass, readonly Range[]]>,
  family: 'ipv4' | 'ipv6',
): Array<readonly [AddressClass, BlockList]> {
  return table.map(([cls, ranges]) => {
    const list = new BlockList();
    for (const [address, prefix] of ranges) list.addSubnet(address, prefix, family);
    return [cls, list] as const;
  });
}

const V4_LISTS = blockLists(V4, 'ipv4');
const V6_LISTS = blockLists(V6, 'ipv6');

/** Expands an IPv6 address to its eight 16-bit groups; `null` when it is not IPv6. */
function ipv6Groups(address: string): number[] | null {
  if (isIP(address) !== 6) return null;
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted quad (`::ffff:1.2.3.4`) stands for the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(fill).fill('0'), ...right].map((g) => Number.parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address carries (mapped, IPv4-translated, NAT64 well-known prefix, 6to4), if
 * any.
 */
export function embeddedIpv4(address: string): string | null {
  const g = ipv6Groups(address);
  if (!g) return null;
  const quad = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return quad(g[6]!, g[7]!); // ::ffff:0:0/96 (RFC 4291 §2.5.5.2)
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return quad(g[6]!, g[7]!); // ::ffff:0:0:0/96 (RFC 2765)
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return quad(g[6]!, g[7]!); // 64:ff9b::/96 (RFC 6052)
  if (g[0] === 0x2002) return quad(g[1]!, g[2]!); // 2002::/16 (RFC 3056)
  return null;
}

/**
 * Classifies an IP address literal.
 * @returns the reason to refuse it, or `null` for a public unicast address.
 * @throws TypeError when `address` is not an IP address.
 */
export function classifyAddress(address: string): AddressClass | null {
  const family = isIP(address);
  if (family === 0) throw new TypeError(`Expected \`address\` to be an IP address, got ${address}`);
  if (family === 6) {
    const inner = embeddedIpv4(address);
    if (inner !== null) return classifyAddress(inner);
    for (const [cls, list] of V6_LISTS) if (list.check(address, 'ipv6')) return cls;
    return null;
  }
  for (const [cls, list] of V4_LISTS) if (list.check(address, 'ipv4')) return cls;
  return null;
}

/** True when the policy lets the gateway connect to an address of this class. */
export function isAllowedClass(cls: AddressClass | null, allowPrivate: boolean): boolean {
  if (cls === null) return true;
  return allowPrivate && !ALWAYS_REFUSED.has(cls);
}

/** A target address refused by the policy, or a hostname that does not resolve. */
export class TargetRefusedError extends Error {
  readonly reason: AddressClass | 'unresolvable';
  constructor(reason: AddressClass | 'unresolvable', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TargetRefusedError';
    this.reason = reason;
  }
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** `dns.promises.lookup` with `all: true`, injectable so tests can play a rebinding resolver. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system resolver (getaddrinfo, so `/etc/hosts` counts, as it does for the connection). */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Resolves a URL's host and checks every address it resolves to: one refused address refuses the
 * target, since the connection could use any of them.
 *
 * @returns the vetted addresses, in resolver order; connect to the first.
 * @throws TargetRefusedError naming the first refused address and its class.
 */
export async function vetTarget(
  url: URL,
  opts: { allowPrivate: boolean; resolve?: Resolver },
): Promise<ResolvedAddress[]> {
  // WHATWG URL keeps IPv6 literals in brackets.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: ResolvedAddress[];
  const literal = isIP(host);
  if (literal !== 0) {
    addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await (opts.resolve ?? systemResolver)(host);
    } catch (err) {
      throw new TargetRefusedError('unresolvable', `${host} does not resolve`, { cause: err });
    }
    if (addresses.length === 0) throw new TargetRefusedError('unresolvable', `${host} does not resolve`);
  }
  for (const { address } of addresses) {
    const cls = classifyAddress(address);
    if (!isAllowedClass(cls, opts.allowPrivate)) {
      const shown = address === host ? address : `${host} (${address})`;
      const hint = ALWAYS_REFUSED.has(cls!)
        ? ''
        : ' (set WEBHOOKS_ALLOW_PRIVATE=true to allow private targets)';
      throw new TargetRefusedError(cls!, `${shown} is a ${cls} address${hint}`);
    }
  }
  return addresses;
}

/**
 * A `lookup` for `http.request` that answers with the vetted address only, whatever the hostname:
 * the connection goes exactly where the check looked. Handles both callback shapes, since Node's
 * happy-eyeballs connect asks for `all: true`.
 */
export function pinnedLookup(target: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) {
      (callback as unknown as (err: null, addresses: ResolvedAddress[]) => void)(null, [target]);
    } else {
      callback(null, target.address, target.family);
    }
  };
}
