/**
 * Sender authentication verdicts from results the gateway did not compute itself: a trusted upstream's
 * `Authentication-Results` and Mailgun's `X-Mailgun-*` headers; and the signed VERP bounce addresses.
 */
import { describe, expect, it } from 'vitest';
import {
  parseAuthenticationResults,
  verdictFromAuthResults,
  verdictFromMailgun,
} from '../../adapters/email/auth.js';
import { bounceAddress, bouncedMessageId, isBounceAddress } from '../../adapters/email/verify.js';

type Headers = Array<readonly [string, string]>;
const FROM: Headers = [['from', 'Customer <customer@example.org>']];
const UPSTREAM = 'mx.help.example.com';

describe('Authentication-Results of a trusted upstream', () => {
  it('parses methods, results and properties, comments and quoted values aside', () => {
    expect(
      parseAuthenticationResults(
        'MX.Help.Example.com 1; spf=pass (sender permitted) smtp.mailfrom=a@example.org; dkim=pass header.d=example.org header.s="s1"; dmarc=pass (p=reject) header.from=example.org',
      ),
    ).toEqual({
      authservId: 'mx.help.example.com',
      results: [
        { method: 'spf', result: 'pass', props: { 'smtp.mailfrom': 'a@example.org' } },
        { method: 'dkim', result: 'pass', props: { 'header.d': 'example.org', 'header.s': 's1' } },
        { method: 'dmarc', result: 'pass', props: { 'header.from': 'example.org' } },
      ],
    });
  });

  it('passes on an aligned result of the top-most header with the trusted id only', () => {
    const ar = (v: string) => ['authentication-results', v] as const;
    expect(
      verdictFromAuthResults([ar(`${UPSTREAM}; dkim=pass header.d=mail.example.org`), ...FROM], UPSTREAM),
    ).toMatchObject({ verdict: 'pass', aligned: 'dkim', from: 'customer@example.org' });
    expect(
      verdictFromAuthResults(
        [ar(`${UPSTREAM}; spf=pass smtp.mailfrom=bounce@example.org`), ...FROM],
        UPSTREAM,
      ),
    ).toMatchObject({ verdict: 'pass', aligned: 'spf' });
    // A pass the sender wrote below the upstream's own header does not count.
    expect(
      verdictFromAuthResults(
        [ar(`${UPSTREAM}; spf=fail smtp.mailfrom=x@example.org`), ar(`${UPSTREAM}; dmarc=pass`), ...FROM],
        UPSTREAM,
      ),
    ).toMatchObject({ verdict: 'fail', reason: 'not_aligned' });
    // Another authserv-id (or none of the upstream's) is no result at all.
    expect(verdictFromAuthResults([ar('mx.google.com; dmarc=pass'), ...FROM], UPSTREAM)).toMatchObject({
      verdict: 'fail',
      reason: 'no_trusted_results',
    });
    // A pass for another domain than the From one.
    expect(
      verdictFromAuthResults([ar(`${UPSTREAM}; dkim=pass header.d=evil.test`), ...FROM], UPSTREAM),
    ).toMatchObject({ verdict: 'fail', reason: 'not_aligned' });
    expect(
      verdictFromAuthResults([ar(`${UPSTREAM}; dmarc=pass header.from=evil.test`), ...FROM], UPSTREAM),
    ).toMatchObject({ verdict: 'fail' });
    // DMARC fail wins over an aligned pass; a temperror here is never "temporary" (the header is fixed).
    expect(
      verdictFromAuthResults(
        [ar(`${UPSTREAM}; spf=pass smtp.mailfrom=a@example.org; dmarc=fail`), ...FROM],
        UPSTREAM,
      ),
    ).toMatchObject({ verdict: 'fail', reason: 'dmarc_fail' });
    const temp = verdictFromAuthResults([ar(`${UPSTREAM}; spf=temperror`), ...FROM], UPSTREAM);
    expect(temp.verdict).toBe('fail');
    expect(temp.temporary).toBeUndefined();
    // Two From addresses cannot be authenticated (RFC 7489 §6.6.1).
    expect(
      verdictFromAuthResults(
        [ar(`${UPSTREAM}; dmarc=pass`), ['from', 'a@example.org, b@evil.test']],
        UPSTREAM,
      ),
    ).toMatchObject({ verdict: 'fail', reason: 'from_header' });
  });
});

describe("Mailgun's results", () => {
  const received = ['received', 'from mail.example.org by mxa.mailgun.org with ESMTP'] as const;
  const signature = ['dkim-signature', 'v=1; a=rsa-sha256; d=example.org; s=s1; b=x'] as const;

  it('reads only the block Mailgun prepended above its Received', () => {
    const ok: Headers = [['x-mailgun-dkim-check-result', 'Pass'], received, signature, ...FROM];
    expect(verdictFromMailgun(ok, 'bounce@other.example', undefined)).toMatchObject({
      verdict: 'pass',
      aligned: 'dkim',
      via: 'mailgun',
    });
    const spf: Headers = [['x-mailgun-spf', 'Pass'], received, ...FROM];
    expect(verdictFromMailgun(spf, 'bounce@mail.example.org')).toMatchObject({
      verdict: 'pass',
      aligned: 'spf',
    });
    expect(verdictFromMailgun(spf, 'bounce@evil.test')).toMatchObject({
      verdict: 'fail',
      reason: 'not_aligned',
    });
    // Written by the sender, below Mailgun's Received; or with no Received at all: no verdict.
    const written: Headers = [received, ['x-mailgun-dkim-check-result', 'Pass'], signature, ...FROM];
    expect(verdictFromMailgun(written, null)).toMatchObject({ verdict: 'fail', dkim: 'none' });
    const bare: Headers = [['x-mailgun-spf', 'Pass'], ...FROM];
    expect(verdictFromMailgun(bare, 'customer@example.org')).toMatchObject({ verdict: 'fail', spf: 'none' });
    // Twice in Mailgun's block: ambiguous, no verdict.
    const twice: Headers = [['x-mailgun-spf', 'Fail'], ['x-mailgun-spf', 'Pass'], received, ...FROM];
    expect(verdictFromMailgun(twice, 'customer@example.org')).toMatchObject({ verdict: 'fail', spf: 'none' });
    // A DKIM pass counts only when every signature is for the From domain.
    const mixed: Headers = [
      ['x-mailgun-dkim-check-result', 'Pass'],
      received,
      signature,
      ['dkim-signature', 'v=1; d=evil.test; s=s1; b=x'],
      ...FROM,
    ];
    expect(verdictFromMailgun(mixed, null)).toMatchObject({ verdict: 'fail', reason: 'not_aligned' });
    // The route's parsed `from` field stands in when the header list has no From.
    expect(
      verdictFromMailgun([['x-mailgun-spf', 'Pass'], received], 'b@example.org', 'C <customer@example.org>'),
    ).toMatchObject({ verdict: 'pass', from: 'customer@example.org' });
  });
});

describe('bounce (VERP) addresses', () => {
  const SECRET = 'test-bounce-secret-0123456789abcdef';
  const DOMAIN = 'help.example.com';
  const ID = 'msg_01JH2Z6Q8W3N4V5B6C7D8E9F0G';

  it('round-trips the message id through a lower-case signed address, and nothing else', () => {
    const address = bounceAddress(ID, SECRET, DOMAIN);
    expect(address).toMatch(/^bounces\+msg_[0-9a-z]{26}-[a-z2-7]{16}@help\.example\.com$/);
    expect(bouncedMessageId(address, SECRET, DOMAIN)).toBe(ID);
    expect(bouncedMessageId(address.toUpperCase().replace('HELP.EXAMPLE.COM', DOMAIN), SECRET, DOMAIN)).toBe(
      ID,
    );
    expect(bouncedMessageId(address, 'another-secret-0123456789abcdef0123', DOMAIN)).toBeNull();
    expect(bouncedMessageId(address.replace(DOMAIN, 'evil.test'), SECRET, DOMAIN)).toBeNull();
    const other = bounceAddress('msg_01JH2Z6Q8W3N4V5B6C7D8E9F0H', SECRET, DOMAIN);
    const swapped = `${other.slice(0, other.lastIndexOf('-'))}${address.slice(address.lastIndexOf('-'))}`;
    expect(bouncedMessageId(swapped, SECRET, DOMAIN)).toBeNull();
    expect(bouncedMessageId(`bounces@${DOMAIN}`, SECRET, DOMAIN)).toBeNull();
    expect(isBounceAddress(`bounces@${DOMAIN}`, DOMAIN)).toBe(true);
    expect(isBounceAddress(`support@${DOMAIN}`, DOMAIN)).toBe(false);
  });
});
