/**
 * Visitor-token and origin checks (SPEC §7, CHANNELS.md §5) against the shared HS256 fixture, with the
 * clock injected, and against RS256/ES256 keys generated here.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { configure, type TokenKeys } from '../../adapters/webchat/config.js';
import { isOriginAllowed, verifyVisitorToken } from '../../adapters/webchat/verify.js';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/webchat-widget-jwt.json', import.meta.url), 'utf8'),
);
const secret: string = fixture.hs256_shared_secret_utf8;
const hs: TokenKeys = { mode: 'secret', secret, algorithms: ['HS256'] };
const at = (s: number) => s * 1000;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('verifyVisitorToken (shared HS256 fixture)', () => {
  const verifier = { keys: hs, audience: fixture.payload.aud, issuer: fixture.payload.iss };

  it('accepts the fixture token inside its lifetime and reads sub, name, email, exp', () => {
    const check = verifyVisitorToken(fixture.token, verifier, at(fixture.payload.iat + 10));
    expect(check).toEqual({
      ok: true,
      visitor: { id: 'user-42', name: 'Jane', email: 'jane@example.com', expiresAt: at(fixture.payload.exp) },
    });
  });

  it('reports expiry separately from other failures', () => {
    const check = verifyVisitorToken(fixture.token, verifier, at(fixture.payload.exp + 1));
    expect(check).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a wrong audience, a wrong issuer and a wrong secret', () => {
    const now = at(fixture.payload.iat + 10);
    expect(verifyVisitorToken(fixture.token, { ...verifier, audience: 'other' }, now)).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
    expect(
      verifyVisitorToken(fixture.token, { ...verifier, issuer: 'https://evil.test' }, now),
    ).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
    const wrongKey: TokenKeys = { mode: 'secret', secret: `${secret}x`, algorithms: ['HS256'] };
    expect(verifyVisitorToken(fixture.token, { ...verifier, keys: wrongKey }, now)).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
  });

  it('refuses alg:none, even with the signature stripped from a valid token', () => {
    const payload = { ...fixture.payload };
    const unsecured = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    expect(verifyVisitorToken(unsecured, verifier, at(payload.iat + 10))).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
  });

  it('requires exp and a sub', () => {
    const noExp = jwt.sign({ sub: 'v1' }, secret, { algorithm: 'HS256' });
    expect(verifyVisitorToken(noExp, { keys: hs })).toMatchObject({ ok: false, detail: 'exp claim missing' });
    const noSub = jwt.sign({ exp: Math.floor(Date.now() / 1000) + 60 }, secret, { algorithm: 'HS256' });
    expect(verifyVisitorToken(noSub, { keys: hs })).toMatchObject({ ok: false, reason: 'invalid' });
  });

  it('accepts demo tokens only with the demo secret resolved', () => {
    const demo: TokenKeys = { mode: 'demo', algorithms: ['HS256'] };
    const token = jwt.sign({ sub: 'v_x', exp: Math.floor(Date.now() / 1000) + 60 }, secret, {
      algorithm: 'HS256',
    });
    expect(verifyVisitorToken(token, { keys: demo })).toMatchObject({ ok: false });
    expect(verifyVisitorToken(token, { keys: demo, demoSecret: secret })).toMatchObject({ ok: true });
  });
});

describe('verifyVisitorToken (public keys)', () => {
  const exp = () => Math.floor(Date.now() / 1000) + 60;

  it('verifies RS256 and ES256 with the configured public key and pins the algorithm', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const rsaConf = configure({ WEBCHAT_JWT_PUBLIC_KEY: rsaPem });
    const ecConf = configure({ WEBCHAT_JWT_PUBLIC_KEY: ecPem.replace(/\n/g, '\\n') });
    if (!rsaConf.enabled || !ecConf.enabled) throw new Error('config refused a valid key');
    expect(rsaConf.config.keys.algorithms).toEqual(['RS256']);
    expect(ecConf.config.keys.algorithms).toEqual(['ES256']);

    const rs = jwt.sign({ sub: 'a', exp: exp() }, rsa.privateKey, { algorithm: 'RS256' });
    const es = jwt.sign({ sub: 'b', exp: exp() }, ec.privateKey, { algorithm: 'ES256' });
    expect(verifyVisitorToken(rs, { keys: rsaConf.config.keys })).toMatchObject({
      ok: true,
      visitor: { id: 'a' },
    });
    expect(verifyVisitorToken(es, { keys: ecConf.config.keys })).toMatchObject({
      ok: true,
      visitor: { id: 'b' },
    });
    // An ES256 token under the RSA key, and the classic confusion: HS256 signed with the public key text.
    expect(verifyVisitorToken(es, { keys: rsaConf.config.keys })).toMatchObject({
      ok: false,
      reason: 'invalid',
    });
    const confused = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'c', exp: exp() })}`;
    const sig = createHmac('sha256', rsaPem).update(confused).digest('base64url');
    expect(verifyVisitorToken(`${confused}.${sig}`, { keys: rsaConf.config.keys })).toMatchObject({
      ok: false,
    });
  });
});

describe('isOriginAllowed', () => {
  const publicOrigin = 'https://chat.example.com';

  it('with an allowlist, allows exactly its origins', () => {
    const list = ['https://shop.example.com'];
    expect(isOriginAllowed('https://shop.example.com', 'chat.example.com', { list, publicOrigin })).toBe(
      true,
    );
    expect(isOriginAllowed('https://evil.example.com', 'chat.example.com', { list, publicOrigin })).toBe(
      false,
    );
    expect(isOriginAllowed('https://chat.example.com', 'chat.example.com', { list, publicOrigin })).toBe(
      false,
    );
    expect(isOriginAllowed('null', 'chat.example.com', { list, publicOrigin })).toBe(false);
  });

  it('without one, allows PUBLIC_URL and same-host pages only', () => {
    expect(isOriginAllowed('https://chat.example.com', 'x', { publicOrigin })).toBe(true);
    expect(isOriginAllowed('http://127.0.0.1:3000', '127.0.0.1:3000', { publicOrigin })).toBe(true);
    expect(isOriginAllowed('https://evil.test', '127.0.0.1:3000', { publicOrigin })).toBe(false);
  });

  it('lets non-browser clients (no Origin header) through to the token check', () => {
    expect(isOriginAllowed(undefined, 'x', { list: [], publicOrigin })).toBe(true);
  });
});
