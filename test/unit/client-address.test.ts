/** The client address behind proxies: X-Forwarded-For is believed only from trusted peers. */
import { describe, expect, it } from 'vitest';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import {
  clientAddress,
  NO_TRUSTED_PROXIES,
  normalizeIp,
  parseTrustedProxies,
  TrustedProxies,
} from '../../src/core/client-address.js';

describe('client address', () => {
  const proxies = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);

  it('is the peer when nobody is trusted, whatever the header says', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', NO_TRUSTED_PROXIES)).toBe('203.0.113.9');
    expect(clientAddress('::ffff:203.0.113.9', undefined, NO_TRUSTED_PROXIES)).toBe('203.0.113.9');
  });

  it('is the peer when the peer is not a trusted proxy', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', proxies)).toBe('203.0.113.9');
  });

  it('walks X-Forwarded-For from the right while the hops are trusted', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.1', proxies)).toBe('198.51.100.1');
    expect(clientAddress('::ffff:127.0.0.1', '198.51.100.1, 10.1.2.3', proxies)).toBe('198.51.100.1');
    // A client's own forged entry on the left stays behind the first untrusted hop.
    expect(clientAddress('127.0.0.1', '6.6.6.6, 198.51.100.1, 10.1.2.3', proxies)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', ['6.6.6.6', '198.51.100.1'], proxies)).toBe('198.51.100.1');
    expect(clientAddress('fd00::1', '2001:db8::7', proxies)).toBe('2001:db8::7');
  });

  it('stops at an entry that is not an address', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.1, garbage', proxies)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', 'unknown, 10.1.2.3', proxies)).toBe('10.1.2.3');
    expect(clientAddress('127.0.0.1', '', proxies)).toBe('127.0.0.1');
  });

  it('is the last trusted hop when the whole chain is trusted', () => {
    expect(clientAddress('127.0.0.1', '10.0.0.5, 10.0.0.6', proxies)).toBe('10.0.0.5');
  });

  it('normalizes mapped, bracketed and ported forms', () => {
    expect(normalizeIp('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeIp('[2001:DB8::1]:443')).toBe('2001:db8::1');
    expect(normalizeIp('192.0.2.1:5000')).toBe('192.0.2.1');
    expect(normalizeIp('example.com')).toBeUndefined();
  });

  it('parses the setting and names every bad entry', () => {
    expect(parseTrustedProxies(undefined)).toEqual({ cidrs: [], problems: [] });
    expect(parseTrustedProxies(' 10.0.0.0/8 , ::1 ')).toEqual({ cidrs: ['10.0.0.0/8', '::1'], problems: [] });
    const bad = parseTrustedProxies('10.0.0.0/33, proxy.local, 10.0.0.0/8/1, ::1/129');
    expect(bad.cidrs).toEqual([]);
    expect(bad.problems).toHaveLength(4);
    expect(bad.problems[1]).toContain('"proxy.local"');
  });

  it('is read from TRUSTED_PROXIES, which refuses what is not an address or block', () => {
    expect(loadConfig({}, ADAPTERS).TRUSTED_PROXIES).toEqual([]);
    expect(loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8,::1' }, ADAPTERS).TRUSTED_PROXIES).toEqual([
      '10.0.0.0/8',
      '::1',
    ]);
    expect(() => loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8,lb.internal' }, ADAPTERS)).toThrow(
      /TRUSTED_PROXIES = .*"lb\.internal" is not an IP address/,
    );
  });
});
