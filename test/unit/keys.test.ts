/** The scope table (src/keys/scopes.ts) and the key format (src/keys/model.ts), without I/O. */
import { describe, expect, it } from 'vitest';
import { hashMatches, keyHash, keyIdOf, newToken } from '../../src/keys/model.js';
import { scopeFor } from '../../src/keys/scopes.js';

describe('scopeFor', () => {
  it('maps each route family to its scope', () => {
    expect(scopeFor('POST', '/v1/sessions')).toBe('messages');
    expect(scopeFor('POST', '/v1/messages')).toBe('messages');
    expect(scopeFor('GET', '/v1/messages')).toBeUndefined();
    expect(scopeFor('GET', '/v1/conversations')).toBe('conversations:read');
    expect(scopeFor('HEAD', '/v1/conversations/:id/export')).toBe('conversations:read');
    expect(scopeFor('GET', '/v1/attachments/att_1')).toBe('conversations:read');
    expect(scopeFor('DELETE', '/v1/attachments/att_1')).toBeUndefined();
    for (const method of ['POST', 'PATCH', 'PUT', 'DELETE']) {
      expect(scopeFor(method, '/v1/conversations/conv_1/send')).toBe('conversations:write');
    }
    expect(scopeFor('GET', '/v1/contacts/:id/timeline')).toBe('contacts');
    expect(scopeFor('POST', '/v1/webhooks/:id/replay')).toBe('webhooks');
    expect(scopeFor('DELETE', '/v1/keys/:id')).toBe('admin');
    expect(scopeFor('PUT', '/v1/bot')).toBe('admin');
    expect(scopeFor('GET', '/v1/bot/health')).toBe('admin');
  });

  it('matches whole segments, any case, a trailing slash, as the router does', () => {
    expect(scopeFor('get', '/V1/Contacts/')).toBe('contacts');
    expect(scopeFor('GET', '/v1/contactsx')).toBeUndefined();
    expect(scopeFor('GET', '/v1/keys-all')).toBeUndefined();
    expect(scopeFor('GET', '/v1/botany')).toBeUndefined();
    expect(scopeFor('GET', '/v1')).toBeUndefined();
    expect(scopeFor('GET', '/v2/contacts')).toBeUndefined();
  });
});

describe('managed key format', () => {
  it('embeds the id, hides all but four characters in the hint, and stores only a hash', () => {
    const id = 'key_01JH5W4Q6Y3M8K2N7R9T0V1X2Z';
    const { token, hash, hint } = newToken(id);
    expect(token).toMatch(/^sbk_01JH5W4Q6Y3M8K2N7R9T0V1X2Z_[A-Za-z0-9_-]{43}$/);
    expect(keyIdOf(token)).toBe(id);
    expect(hint).toBe(`sbk_01JH5W4Q6Y3M8K2N7R9T0V1X2Z_…${token.slice(-4)}`);
    expect(hash).toBe(keyHash(token));
    expect(hash).not.toContain(token.slice(31, 40));
    expect(hashMatches(token, hash)).toBe(true);
    expect(hashMatches(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, hash)).toBe(false);
    expect(hashMatches(token, 'short')).toBe(false);
    expect(newToken(id).token).not.toBe(token);
  });

  it('reads no id from anything else', () => {
    for (const token of [
      '',
      'sbk_',
      'sk_abc',
      'sbk_01JH5W4Q6Y3M8K2N7R9T0V1X2Z',
      `sbk_01jh5w4q6y3m8k2n7r9t0v1x2z_${'a'.repeat(43)}`,
    ]) {
      expect(keyIdOf(token)).toBeUndefined();
    }
    expect(keyIdOf(`sbk_01JH5W4Q6Y3M8K2N7R9T0V1X2Z_${'a'.repeat(42)}`)).toBeUndefined();
  });
});
