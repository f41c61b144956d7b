/**
 * @module Demo mode: with no `WEBCHAT_JWT_SECRET` and no `WEBCHAT_JWT_PUBLIC_KEY` the gateway mints its own
 * short-lived HS256 visitor tokens so `npm start` works out of the box. The signing secret is random and
 * kept in the store's key/value space (set-if-absent), so every process sharing one Redis accepts the
 * tokens any of them minted.
 */
import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { KeyValue } from '../../src/core/index.js';

const SECRET_KEY = 'webchat:demo-secret';
/** Visitor ids the demo endpoint hands out and accepts back: random, so they cannot be guessed. */
const VISITOR_ID = /^v_[A-Za-z0-9_-]{16,64}$/;

/** The demo signing secret shared by all processes of this gateway (first one to start picks it). */
export async function demoSecret(kv: KeyValue): Promise<string> {
  await kv.setIfAbsent(SECRET_KEY, randomBytes(32).toString('base64url'));
  const secret = await kv.get(SECRET_KEY);
  if (!secret) throw new Error('demo secret vanished from the store');
  return secret;
}

export function newVisitorId(): string {
  return `v_${randomBytes(16).toString('base64url')}`;
}

/** The visitor id a returning browser sent, when it has the shape of one this endpoint handed out. */
export function visitorIdOrNew(value: unknown): string {
  return typeof value === 'string' && VISITOR_ID.test(value) ? value : newVisitorId();
}

export interface DemoToken {
  token: string;
  visitorId: string;
  expiresAt: string;
}

/** Mints a demo visitor token; `aud`/`iss` are set when configured so the same checks apply. */
export function mintDemoToken(
  secret: string,
  visitorId: string,
  opts: { ttlS: number; audience?: string; issuer?: string; nowMs?: number },
): DemoToken {
  const iat = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  const exp = iat + opts.ttlS;
  const token = jwt.sign({ sub: visitorId, iat, exp }, secret, {
    algorithm: 'HS256',
    ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
    ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
  });
  return { token, visitorId, expiresAt: new Date(exp * 1000).toISOString() };
}
