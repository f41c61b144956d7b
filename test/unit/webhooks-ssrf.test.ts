/**
 * The SSRF policy of outbound webhooks: address classes (IPv4, IPv6 and IPv6 forms embedding IPv4),
 * the WEBHOOKS_ALLOW_PRIVATE switch, resolution of every address, and the pinned lookup.
 */
import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import {
  classifyAddress,
  embeddedIpv4,
  isAllowedClass,
  pinnedLookup,
  type Resolver,
  TargetRefusedError,
  vetTarget,
} from '../../src/webhooks/ssrf.js';

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['2001:db8::1', 'reserved'],
    // IPv6 forms that embed an IPv4 address are judged by it.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['2002:c0a8:0101::1', 'private'],
    ['2002:7f00:1::1', 'loopback'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    // IPv4-translated (RFC 2765), in both spellings.
    ['::ffff:0:10.0.0.1', 'private'],
    ['::ffff:0:7f00:1', 'loopback'],
    ['0:0:0:0:ffff:0:a9fe:a9fe', 'metadata'],
    // Local-use NAT64 (RFC 8215): private whatever the address inside.
    ['64:ff9b:1::a00:1', 'private'],
    ['64:ff9b:1:a00:1::', 'private'],
    ['64:ff9b:1::808:808', 'private'],
    // IPv4-compatible (deprecated) and Teredo: reserved, refused even with WEBHOOKS_ALLOW_PRIVATE.
    ['::10.0.0.1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'],
  ])('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '::ffff:0:8.8.8.8',
    '64:ff9b::8.8.8.8',
  ])('%s is public', (address) => {
    expect(classifyAddress(address)).toBeNull();
  });

  it('refuses to classify a non-address', () => {
    expect(() => classifyAddress('localhost')).toThrow(TypeError);
  });

  it('extracts embedded IPv4 addresses', () => {
    expect(embeddedIpv4('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(embeddedIpv4('2002:0a00:0001::')).toBe('10.0.0.1');
    expect(embeddedIpv4('::ffff:0:10.0.0.1')).toBe('10.0.0.1');
    expect(embeddedIpv4('64:ff9b::c0a8:1')).toBe('192.168.0.1');
    expect(embeddedIpv4('2606:4700::1111')).toBeNull();
    expect(embeddedIpv4('1.2.3.4')).toBeNull();
  });
});

describe('isAllowedClass', () => {
  it('lets private targets through only with the setting, and never metadata or unspecified', () => {
    expect(isAllowedClass(null, false)).toBe(true);
    expect(isAllowedClass('loopback', false)).toBe(false);
    expect(isAllowedClass('loopback', true)).toBe(true);
    expect(isAllowedClass('private', true)).toBe(true);
    expect(isAllowedClass('link-local', true)).toBe(true);
    expect(isAllowedClass('metadata', true)).toBe(false);
    expect(isAllowedClass('unspecified', true)).toBe(false);
    expect(isAllowedClass('multicast', true)).toBe(false);
  });
});

describe('vetTarget', () => {
  const resolver =
    (table: Record<string, string[]>): Resolver =>
    async (host) => {
      const list = table[host];
      if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };

  it('accepts a host whose every address is public and returns them in order', async () => {
    const resolve = resolver({ 'crm.example': ['93.184.216.34', '2606:4700::1111'] });
    const addresses = await vetTarget(new URL('https://crm.example/hook'), { allowPrivate: false, resolve });
    expect(addresses.map((a) => a.address)).toEqual(['93.184.216.34', '2606:4700::1111']);
  });

  it('refuses a host when any one of its addresses is private', async () => {
    const resolve = resolver({ 'mixed.example': ['93.184.216.34', '10.0.0.5'] });
    const err = await vetTarget(new URL('https://mixed.example/'), { allowPrivate: false, resolve }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(TargetRefusedError);
    expect(err.reason).toBe('private');
    expect(err.message).toContain('10.0.0.5');
    expect(err.message).toContain('WEBHOOKS_ALLOW_PRIVATE');
  });

  it('checks IP literals without resolving, brackets included', async () => {
    const resolve: Resolver = async () => {
      throw new Error('must not resolve a literal');
    };
    await expect(
      vetTarget(new URL('http://[::1]:8080/'), { allowPrivate: false, resolve }),
    ).rejects.toMatchObject({
      reason: 'loopback',
    });
    await expect(
      vetTarget(new URL('http://169.254.169.254/latest/meta-data/'), { allowPrivate: true, resolve }),
    ).rejects.toMatchObject({ reason: 'metadata' });
    // WHATWG URL parsing turns decimal and hex hosts into dotted quads before the check.
    await expect(
      vetTarget(new URL('http://2130706433/'), { allowPrivate: false, resolve }),
    ).rejects.toMatchObject({
      reason: 'loopback',
    });
  });

  it('refuses `localhost` through the system resolver', async () => {
    await expect(vetTarget(new URL('http://localhost:9/'), { allowPrivate: false })).rejects.toMatchObject({
      reason: 'loopback',
    });
  });

  it('reports a host that does not resolve', async () => {
    await expect(
      vetTarget(new URL('https://nowhere.example/'), { allowPrivate: false, resolve: resolver({}) }),
    ).rejects.toMatchObject({ reason: 'unresolvable' });
  });
});

describe('pinnedLookup', () => {
  it('answers every lookup with the vetted address, in both callback shapes', () => {
    const lookup = pinnedLookup({ address: '93.184.216.34', family: 4 });
    let single: unknown[] = [];
    lookup('evil.example', {}, (...args: unknown[]) => {
      single = args;
    });
    expect(single).toEqual([null, '93.184.216.34', 4]);
    let all: unknown[] = [];
    lookup('evil.example', { all: true }, ((err: unknown, addresses: LookupAddress[]) => {
      all = [err, addresses];
    }) as never);
    expect(all).toEqual([null, [{ address: '93.184.216.34', family: 4 }]]);
  });
});
