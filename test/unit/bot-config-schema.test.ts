/**
 * The bot configuration document's pure parts: the RFC 7396 merge patch, the Standard Webhooks secret
 * form, `If-Match` matching, the overlay of the stored document on the environment, and the rule
 * that a URL needs a secret.
 */
import { describe, expect, it } from 'vitest';
import {
  type BotSettings,
  isBotSecret,
  mergePatch,
  overlay,
  settingsProblems,
  storedFields,
} from '../../src/bot-config/schema.js';
import { etagOf, ifMatchAdmits } from '../../src/bot-config/service.js';
import { generateSecret } from '../../src/webhooks/signing.js';

const base: BotSettings = {
  url: null,
  secret: null,
  timeoutMs: 10_000,
  maxAttempts: 3,
  fallbackText: 'Sorry',
  breaker: { threshold: 5, cooldownMs: 30_000 },
  historyLimit: 20,
  greeting: null,
  handoff: { keywords: ['agent'], onBotFailure: false, idleReleaseS: 0 },
};

describe('mergePatch (RFC 7396)', () => {
  it('follows the examples of RFC 7396 appendix A', () => {
    const cases: Array<[unknown, unknown, unknown]> = [
      [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
      [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
      [{ a: 'b' }, { a: null }, {}],
      [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
      [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
      [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
      [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
      [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
      [
        ['a', 'b'],
        ['c', 'd'],
        ['c', 'd'],
      ],
      [{ a: 'b' }, ['c'], ['c']],
      [{ e: null }, { a: 1 }, { e: null, a: 1 }],
      [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    ];
    for (const [target, patch, result] of cases) expect(mergePatch(target, patch)).toEqual(result);
  });

  it('drops an object the patch leaves empty', () => {
    expect(mergePatch({ breaker: { threshold: 3 }, url: 'x' }, { breaker: { threshold: null } })).toEqual({
      url: 'x',
    });
  });
});

describe('isBotSecret', () => {
  it('takes whsec_ and the base64 of 24 to 64 bytes', () => {
    expect(isBotSecret(generateSecret())).toBe(true);
    expect(isBotSecret(`whsec_${Buffer.alloc(24, 1).toString('base64')}`)).toBe(true);
    expect(isBotSecret(`whsec_${Buffer.alloc(64, 1).toString('base64')}`)).toBe(true);
    expect(isBotSecret(`whsec_${Buffer.alloc(23, 1).toString('base64')}`)).toBe(false);
    expect(isBotSecret(`whsec_${Buffer.alloc(65, 1).toString('base64')}`)).toBe(false);
    expect(isBotSecret(Buffer.alloc(32, 1).toString('base64'))).toBe(false);
    expect(isBotSecret('whsec_not base64 at all!!!!!!!!!!!!!!!!')).toBe(false);
  });
});

describe('If-Match', () => {
  it('admits an absent header, *, or a list holding the strong tag of the version', () => {
    expect(etagOf(4)).toBe('"4"');
    expect(ifMatchAdmits(undefined, 4)).toBe(true);
    expect(ifMatchAdmits('*', 4)).toBe(true);
    expect(ifMatchAdmits('"4"', 4)).toBe(true);
    expect(ifMatchAdmits('"1", "4"', 4)).toBe(true);
    expect(ifMatchAdmits('"3"', 4)).toBe(false);
    expect(ifMatchAdmits('W/"4"', 4)).toBe(false);
    expect(ifMatchAdmits('4', 4)).toBe(false);
  });
});

describe('overlay and checks', () => {
  it('takes each field the document sets, member by member, and names them', () => {
    const doc = { url: 'https://bot.example.com/', breaker: { cooldownMs: 100 }, handoff: { keywords: [] } };
    expect(overlay(base, doc)).toEqual({
      ...base,
      url: 'https://bot.example.com/',
      breaker: { threshold: 5, cooldownMs: 100 },
      handoff: { keywords: [], onBotFailure: false, idleReleaseS: 0 },
    });
    expect(storedFields(doc)).toEqual(['breaker.cooldownMs', 'handoff.keywords', 'url']);
  });

  it('refuses a URL without a secret', () => {
    expect(settingsProblems({ ...base, url: 'https://bot.example.com/' })).toEqual([
      { field: 'secret', message: expect.stringContaining('required') },
    ]);
    expect(settingsProblems({ ...base, url: 'https://bot.example.com/', secret: generateSecret() })).toEqual(
      [],
    );
    expect(settingsProblems(base)).toEqual([]);
  });
});
