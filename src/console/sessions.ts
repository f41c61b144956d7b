/**
 * @module Console sessions (SPEC §11): a signed-in agent holds a random session id in an `HttpOnly`,
 * `SameSite=Strict` cookie; the gateway keeps the session in the store's key/value facility (Redis, or
 * memory on the embedded backend) under the id's SHA-256, so a dump of the store holds nothing a
 * browser could present. A session expires after {@link SESSION_IDLE_S} without use and carries its
 * own CSRF token, which the page sends back as `X-CSRF-Token` on every write.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyValue } from '../core/store.js';

/** Idle lifetime of a session: eight hours without a request signs the agent out. */
export const SESSION_IDLE_S = 8 * 60 * 60;
/** A session's expiry is pushed back at most this often (one store write per minute, not per request). */
const TOUCH_EVERY_MS = 60_000;

export const SESSION_COOKIE = 'sb_console';
export const CSRF_HEADER = 'x-csrf-token';

export interface ConsoleSession {
  /** The agent's display name: the name given at sign-in, else the key's name. */
  agent: string;
  /** The API key's name (never the key). */
  keyName: string;
  /** The key's scopes at sign-in, for the console API to check what the session may do. */
  scopes: string[];
  csrf: string;
  createdAt: string;
  /** Last time the expiry was pushed back (ms since the epoch). */
  touchedAt: number;
}

const storeKey = (id: string) => `console:session:${hash('sha256', id, 'base64url')}`;

/** Constant-time equality of two tokens of any length. */
export function sameToken(a: string, b: string): boolean {
  return timingSafeEqual(hash('sha256', a, 'buffer'), hash('sha256', b, 'buffer'));
}

export class ConsoleSessions {
  readonly #kv: KeyValue;
  readonly #idleS: number;
  readonly #now: () => number;

  constructor(kv: KeyValue, opts: { idleS?: number; now?: () => number } = {}) {
    this.#kv = kv;
    this.#idleS = opts.idleS ?? SESSION_IDLE_S;
    this.#now = opts.now ?? Date.now;
  }

  /** Starts a session; resolves with its id (for the cookie only) and the session. */
  async create(
    agent: string,
    key: { name: string; scopes: Iterable<string> },
  ): Promise<{ id: string; session: ConsoleSession }> {
    const id = randomBytes(32).toString('base64url');
    const session: ConsoleSession = {
      agent,
      keyName: key.name,
      scopes: [...key.scopes].sort(),
      csrf: randomBytes(32).toString('base64url'),
      createdAt: new Date(this.#now()).toISOString(),
      touchedAt: this.#now(),
    };
    await this.#kv.set(storeKey(id), JSON.stringify(session), this.#idleS);
    return { id, session };
  }

  /** The live session with this id, its idle expiry pushed back; undefined when unknown or expired. */
  async get(id: string): Promise<ConsoleSession | undefined> {
    const raw = await this.#kv.get(storeKey(id));
    if (raw === null) return undefined;
    let session: ConsoleSession;
    try {
      session = JSON.parse(raw) as ConsoleSession;
    } catch {
      return undefined;
    }
    if (this.#now() - session.touchedAt >= TOUCH_EVERY_MS) {
      session.touchedAt = this.#now();
      await this.#kv.set(storeKey(id), JSON.stringify(session), this.#idleS);
    }
    return session;
  }

  async delete(id: string): Promise<void> {
    await this.#kv.delete(storeKey(id));
  }
}
