/** Parsing browser frames (SPEC §7): every frame type, and every kind of bad input with its error code. */
import { describe, expect, it } from 'vitest';
import { configure } from '../../adapters/webchat/config.js';
import { parseClientFrame, toNewMessage } from '../../adapters/webchat/inbound.js';
import { TokenBucket } from '../../adapters/webchat/limits.js';

describe('parseClientFrame', () => {
  it('parses each client frame type', () => {
    expect(parseClientFrame('{"type":"auth","token":"a.b.c"}')).toEqual({
      ok: true,
      frame: { type: 'auth', token: 'a.b.c' },
    });
    expect(parseClientFrame('{"type":"message","clientMessageId":"c-1","text":"hi"}')).toEqual({
      ok: true,
      frame: { type: 'message', clientMessageId: 'c-1', text: 'hi' },
    });
    expect(parseClientFrame('{"type":"typing"}')).toEqual({ ok: true, frame: { type: 'typing', on: true } });
    expect(parseClientFrame('{"type":"read","seq":4}')).toEqual({
      ok: true,
      frame: { type: 'read', seq: 4 },
    });
    expect(parseClientFrame('{"type":"resume","afterSeq":0}')).toEqual({
      ok: true,
      frame: { type: 'resume', afterSeq: 0 },
    });
  });

  it.each([
    ['{not json', 'invalid_json'],
    ['[1,2]', 'invalid_frame'],
    ['"text"', 'invalid_frame'],
    ['{"text":"no type"}', 'invalid_frame'],
    ['{"type":"hello"}', 'unknown_type'],
    ['{"type":"__proto__"}', 'unknown_type'],
    ['{"type":"toString"}', 'unknown_type'],
    ['{"type":"message","text":"hi"}', 'invalid_frame'],
    ['{"type":"message","clientMessageId":"c-1"}', 'invalid_frame'],
    ['{"type":"message","clientMessageId":"c-1","text":"   "}', 'invalid_frame'],
    ['{"type":"message","clientMessageId":"has space","text":"x"}', 'invalid_frame'],
    ['{"type":"read","seq":-1}', 'invalid_frame'],
    ['{"type":"read","seq":"3"}', 'invalid_frame'],
    ['{"type":"resume"}', 'invalid_frame'],
    ['{"type":"auth","token":""}', 'invalid_frame'],
  ])('refuses %s with %s', (raw, code) => {
    const result = parseClientFrame(raw);
    expect(result).toMatchObject({ ok: false, code });
  });

  it('never quotes the frame content in its error message', () => {
    const result = parseClientFrame('{"type":"message","clientMessageId":"bad id secret-text","text":"x"}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).not.toContain('secret-text');
  });

  it('maps a message frame onto a stored user message, the visitor its author', () => {
    const parsed = parseClientFrame(
      '{"type":"message","clientMessageId":"c-9","text":"Yes","payload":"YES"}',
    );
    if (!parsed.ok || parsed.frame.type !== 'message') throw new Error('parse failed');
    expect(toNewMessage(parsed.frame, { id: 'v1', name: 'Jane', expiresAt: 0 })).toEqual({
      type: 'user',
      direction: 'inbound',
      text: 'Yes',
      name: 'Jane',
      participantId: 'v1',
      clientMessageId: 'c-9',
      meta: { quickReplyPayload: 'YES' },
    });
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then the refill rate', () => {
    let now = 0;
    const bucket = new TokenBucket(5, 10, () => now);
    for (let i = 0; i < 10; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 200; // one token at 5/s
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
  });
});

describe('configure', () => {
  it('runs in demo mode with defaults when nothing is set', () => {
    const result = configure({});
    expect(result).toMatchObject({
      enabled: true,
      config: {
        keys: { mode: 'demo' },
        maxFrameBytes: 16_384,
        maxMsgsPerS: 5,
        maxSocketsPerVisitor: 5,
        heartbeatMs: 30_000,
      },
    });
  });

  it('lists every problem at once', () => {
    const result = configure({
      WEBCHAT_JWT_SECRET: 'short',
      WEBCHAT_ALLOWED_ORIGINS: 'https://ok.example.com,not-an-origin,https://x.test/path',
      WEBCHAT_MAX_FRAME_BYTES: '10',
    });
    expect(result.enabled).toBe(false);
    const errors = 'errors' in result ? result.errors.join('\n') : '';
    expect(errors).toMatch(/WEBCHAT_JWT_SECRET: must be at least 32 bytes/);
    expect(errors).toMatch(/"not-an-origin"/);
    expect(errors).toMatch(/"https:\/\/x.test\/path"/);
    expect(errors).toMatch(/WEBCHAT_MAX_FRAME_BYTES/);
  });

  it('refuses both a secret and a public key, and private keys', () => {
    const both = configure({ WEBCHAT_JWT_SECRET: 'x'.repeat(40), WEBCHAT_JWT_PUBLIC_KEY: 'pem' });
    expect('errors' in both && both.errors[0]).toMatch(/both set/);
    const priv = configure({
      WEBCHAT_JWT_PUBLIC_KEY: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----',
    });
    expect('errors' in priv && priv.errors[0]).toMatch(/never the private key/);
  });

  it('normalizes allowed origins', () => {
    const result = configure({ WEBCHAT_ALLOWED_ORIGINS: 'https://Shop.Example.com/, http://localhost:8080' });
    expect(result).toMatchObject({
      config: { allowedOrigins: ['https://shop.example.com', 'http://localhost:8080'] },
    });
  });
});
