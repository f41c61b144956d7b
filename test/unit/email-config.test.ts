import { describe, expect, it } from 'vitest';
import { configure, parseAccept, parseFrom, redactUrl } from '../../adapters/email/config.js';

const SECRET = 'test-bounce-secret-0123456789abcdef';
const base = {
  EMAIL_FROM: 'Example Support <support@help.example.com>',
  SMTP_URL: 'smtp://u:p@127.0.0.1:2525',
  EMAIL_BOUNCE_SECRET: SECRET,
};

function errorsOf(env: Record<string, string>): string[] {
  const r = configure(env);
  return 'errors' in r ? r.errors : [];
}

describe('email settings', () => {
  it('is off with no email setting at all', () => {
    expect(configure({})).toEqual({ enabled: false });
  });

  it('is on with EMAIL_FROM, SMTP_URL and an inbound path, with the documented defaults', () => {
    const r = configure({ ...base, EMAIL_SMTP_PORT: '2525' });
    if (!r.enabled) throw new Error('expected enabled');
    expect(r.config.from).toEqual({
      address: 'support@help.example.com',
      local: 'support',
      domain: 'help.example.com',
      name: 'Example Support',
    });
    expect(r.config.listener).toEqual({ port: 2525, host: '0.0.0.0' });
    expect(r.config.accept).toEqual([{ kind: 'address', local: 'support', domain: 'help.example.com' }]);
    expect(r.config.maxBytes).toBe(10 * 1_048_576);
    expect(r.config.mailgunSigningKey).toBeNull();
    expect(r.config.bounceSecret).toBe(SECRET);
    // The listener checks SPF/DKIM/DMARC itself unless an upstream is trusted.
    expect(r.config.trustedAuthservId).toBeNull();
    const mg = configure({ ...base, MAILGUN_SIGNING_KEY: 'test-webhook-signing-key-0123456789' });
    expect(mg.enabled && mg.config.listener).toBeNull();
  });

  it('stops the start on partial or inconsistent settings, naming each problem', () => {
    expect(errorsOf({ EMAIL_SMTP_PORT: '25' }).join('\n')).toMatch(
      /EMAIL_FROM: required[\s\S]*SMTP_URL: required/,
    );
    expect(errorsOf(base).join('\n')).toMatch(/EMAIL_SMTP_PORT or MAILGUN_SIGNING_KEY/);
    expect(errorsOf({ ...base, MAILGUN_SIGNING_KEY: 'short' }).join('\n')).toMatch(/MAILGUN_SIGNING_KEY/);
    expect(errorsOf({ ...base, EMAIL_SMTP_PORT: '25', EMAIL_TLS_KEY: '/etc/hostname' }).join('\n')).toMatch(
      /set both/,
    );
    expect(
      errorsOf({ ...base, MAILGUN_SIGNING_KEY: 'k'.repeat(20), EMAIL_SMTP_HOST: '::' }).join('\n'),
    ).toMatch(/EMAIL_SMTP_HOST: only used by the SMTP listener/);
    expect(
      errorsOf({
        ...base,
        EMAIL_SMTP_PORT: '25',
        EMAIL_TLS_KEY: '/nonexistent/k',
        EMAIL_TLS_CERT: '/nonexistent/c',
      }),
    ).toHaveLength(2);
    expect(
      errorsOf({ ...base, EMAIL_FROM: 'support+x@help.example.com', EMAIL_SMTP_PORT: '25' }).join(),
    ).toMatch(/must not contain "\+"/);
    expect(errorsOf({ ...base, SMTP_URL: 'http://relay', EMAIL_SMTP_PORT: '25' }).join()).toMatch(/SMTP_URL/);
    expect(errorsOf({ ...base, EMAIL_SMTP_PORT: '25', EMAIL_ACCEPT: 'nonsense' }).join()).toMatch(
      /EMAIL_ACCEPT/,
    );
  });

  it('does not start without a bounce secret (fail closed), nor with a short one', () => {
    const { EMAIL_BOUNCE_SECRET: _s, ...noSecret } = base;
    const r = configure({ ...noSecret, EMAIL_SMTP_PORT: '2525' });
    expect(r.enabled).toBe(false);
    expect(errorsOf({ ...noSecret, EMAIL_SMTP_PORT: '2525' })).toEqual([
      expect.stringMatching(/^EMAIL_BOUNCE_SECRET: required with the email channel/),
    ]);
    expect(
      errorsOf({ ...noSecret, MAILGUN_SIGNING_KEY: 'test-webhook-signing-key-0123456789' }).join(),
    ).toMatch(/EMAIL_BOUNCE_SECRET: required/);
    expect(errorsOf({ ...base, EMAIL_SMTP_PORT: '2525', EMAIL_BOUNCE_SECRET: 'too-short' }).join()).toMatch(
      /EMAIL_BOUNCE_SECRET: must be 32 to 256 characters/,
    );
  });

  it('takes a trusted upstream authserv-id for the SMTP listener only', () => {
    const r = configure({
      ...base,
      EMAIL_SMTP_PORT: '2525',
      EMAIL_TRUSTED_AUTHSERV_ID: 'MX.Help.Example.com',
    });
    if (!r.enabled) throw new Error('expected enabled');
    expect(r.config.trustedAuthservId).toBe('mx.help.example.com');
    expect(
      errorsOf({
        ...base,
        MAILGUN_SIGNING_KEY: 'test-webhook-signing-key-0123456789',
        EMAIL_TRUSTED_AUTHSERV_ID: 'mx.help.example.com',
      }).join(),
    ).toMatch(/EMAIL_TRUSTED_AUTHSERV_ID: only used by the SMTP listener/);
    expect(
      errorsOf({ ...base, EMAIL_SMTP_PORT: '2525', EMAIL_TRUSTED_AUTHSERV_ID: 'mx; spf=pass' }).join(),
    ).toMatch(/EMAIL_TRUSTED_AUTHSERV_ID: must be a host name/);
  });

  it('parses EMAIL_FROM and EMAIL_ACCEPT forms and refuses header injection', () => {
    expect(parseFrom('support@Help.Example.com')?.address).toBe('support@help.example.com');
    expect(parseFrom('"Help Desk" <desk@example.org>')?.name).toBe('Help Desk');
    expect(parseFrom('a@b.co\r\nBcc: x@y.z')).toBeNull();
    expect(parseAccept('support@a.example, @b.example').rules).toEqual([
      { kind: 'address', local: 'support', domain: 'a.example' },
      { kind: 'domain', domain: 'b.example' },
    ]);
  });

  it('never shows the SMTP password', () => {
    expect(redactUrl('smtp://user:s3cret@relay.example.com:587')).toBe(
      'smtp://user:***@relay.example.com:587',
    );
    expect(redactUrl('smtp://user:s3cret@relay.example.com:587')).not.toContain('s3cret');
  });
});
