import { describe, expect, it } from 'vitest';
import { configure, parseAccept, parseFrom, redactUrl } from '../../adapters/email/config.js';

const base = {
  EMAIL_FROM: 'Example Support <support@help.example.com>',
  SMTP_URL: 'smtp://u:p@127.0.0.1:2525',
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
