/**
 * Outbound webhook signing and retry timing: the Standard Webhooks published vector, multi-secret
 * headers during rotation (checked with the `standardwebhooks` package), secret generation, the
 * full-jitter retry schedule and option validation.
 */
import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { retryDelay, signingSecrets } from '../../src/webhooks/dispatcher.js';
import { RETRY_CEILINGS_MS, webhookOptions } from '../../src/webhooks/options.js';
import type { EndpointRecord } from '../../src/webhooks/repo.js';
import { generateSecret, signatureHeaders } from '../../src/webhooks/signing.js';

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/outbound-webhook-signature-vectors.json', import.meta.url), 'utf8'),
) as {
  standard_webhooks_published_vector: Record<string, string>;
  standard_webhooks_spec_example_payload: {
    secret: string;
    msgId: string;
    timestamp: number;
    payload: string;
    signature_header: string;
  };
};

describe('signatureHeaders', () => {
  it('reproduces the published Standard Webhooks vector', () => {
    const v = vectors.standard_webhooks_published_vector;
    const headers = signatureHeaders(
      v['webhook-id']!,
      v.body!,
      [v.secret!],
      new Date(Number(v['webhook-timestamp']) * 1000),
    );
    expect(headers).toEqual({
      'webhook-id': v['webhook-id'],
      'webhook-timestamp': v['webhook-timestamp'],
      'webhook-signature': v['webhook-signature'],
    });
  });

  it('reproduces the spec example, dropping milliseconds from the timestamp', () => {
    const v = vectors.standard_webhooks_spec_example_payload;
    const headers = signatureHeaders(v.msgId, v.payload, [v.secret], new Date(v.timestamp * 1000 + 999));
    expect(headers['webhook-timestamp']).toBe(String(v.timestamp));
    expect(headers['webhook-signature']).toBe(v.signature_header);
  });

  it('signs with every secret given, each verifying on its own', () => {
    const fresh = generateSecret();
    const old = generateSecret();
    const body = JSON.stringify({ type: 'ping' });
    const headers = signatureHeaders('evt_1', body, [fresh, old]);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(fresh).verify(body, { ...headers })).toEqual({ type: 'ping' });
    expect(new Webhook(old).verify(body, { ...headers })).toEqual({ type: 'ping' });
    expect(() => new Webhook(generateSecret()).verify(body, { ...headers })).toThrow();
    expect(() => new Webhook(fresh).verify(`${body} `, { ...headers })).toThrow();
  });

  it('needs at least one secret', () => {
    expect(() => signatureHeaders('evt_1', '{}', [])).toThrow(TypeError);
  });
});

describe('generateSecret', () => {
  it('is whsec_ plus base64 of 32 random bytes, different each time', () => {
    const a = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice(6), 'base64')).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
  });
});

describe('signingSecrets', () => {
  const endpoint = (previousSecretExpiresAt: string | null): EndpointRecord => ({
    id: 'wh_1',
    url: 'https://crm.example/',
    events: ['message.created'],
    description: null,
    enabled: true,
    disabledReason: null,
    secret: 'whsec_new',
    previousSecret: previousSecretExpiresAt ? 'whsec_old' : null,
    previousSecretExpiresAt,
    createdAt: '',
    updatedAt: '',
  });

  it('adds the previous secret only during its grace period', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(signingSecrets(endpoint(null), now)).toEqual(['whsec_new']);
    expect(signingSecrets(endpoint('2026-01-01T00:00:01Z'), now)).toEqual(['whsec_new', 'whsec_old']);
    expect(signingSecrets(endpoint('2026-01-01T00:00:00Z'), now)).toEqual(['whsec_new']);
  });
});

describe('retryDelay', () => {
  it('waits a uniform time below the ceiling of each retry (full jitter)', () => {
    expect(retryDelay(1, RETRY_CEILINGS_MS, () => 0)).toBe(0);
    expect(retryDelay(1, RETRY_CEILINGS_MS, () => 0.999_999)).toBe(4_999);
    expect(retryDelay(10, RETRY_CEILINGS_MS, () => 0.5)).toBe(43_200_000);
  });

  it('gives up after the last ceiling', () => {
    expect(retryDelay(RETRY_CEILINGS_MS.length + 1, RETRY_CEILINGS_MS, () => 0.5)).toBeNull();
  });

  it('honours a longer Retry-After, capped at the longest ceiling', () => {
    expect(retryDelay(1, RETRY_CEILINGS_MS, () => 0.5, 60_000)).toBe(60_000);
    expect(retryDelay(1, RETRY_CEILINGS_MS, () => 0.5, 1_000)).toBe(2_500);
    expect(retryDelay(1, RETRY_CEILINGS_MS, () => 0.5, 10 * 86_400_000)).toBe(86_400_000);
  });

  it('spans about a day on average and under two days at most', () => {
    const sum = RETRY_CEILINGS_MS.reduce((a, b) => a + b, 0);
    expect(sum / 2 / 3_600_000).toBeGreaterThan(20);
    expect(sum / 2 / 3_600_000).toBeLessThan(28);
    expect(sum / 3_600_000).toBeLessThan(48);
  });
});

describe('webhookOptions', () => {
  it('rejects out-of-range options with the option named', () => {
    expect(() => webhookOptions({ timeoutMs: 0 })).toThrow(/`timeoutMs`/);
    expect(() => webhookOptions({ perEndpointConcurrency: 1.5 })).toThrow(/`perEndpointConcurrency`/);
    expect(() => webhookOptions({ retryCeilingsMs: [10, -1] })).toThrow(/`retryCeilingsMs`/);
    expect(() => webhookOptions({ reorderWindowMs: -1 })).toThrow(/`reorderWindowMs`/);
    expect(webhookOptions().timeoutMs).toBe(15_000);
    expect(webhookOptions().reorderWindowMs).toBe(1_000);
    expect(webhookOptions({ reorderWindowMs: 0 }).reorderWindowMs).toBe(0);
  });
});
