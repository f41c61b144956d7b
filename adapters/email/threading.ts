/**
 * @module The thread index, kept in the store's key/value facility so every gateway process sees it:
 * each `Message-ID` of a thread (the customer's and ours) maps to the conversation key, and each
 * conversation has a reply token that rides in our `Reply-To` address (`support+<token>@domain`).
 * RFC 5322 §3.6.4 threading by `In-Reply-To`/`References` is the first path; the token is the robust
 * one for clients that drop those headers (CHANNELS.md §3.6).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KeyValue } from '../../src/core/index.js';
import { isReplyToken } from './verify.js';

/** Threads are remembered this long after their last message (a customer may answer weeks later). */
export const THREAD_TTL_S = 180 * 86_400;

/** A conversation key plus the customer address that owns the thread. */
export interface ThreadRef {
  /** The conversation's `channelRef` (the root `Message-ID`). */
  ref: string;
  /** The customer's address, lower-cased. */
  addr: string;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** A new 16-character base-32 token (80 random bits): unguessable, and safe in a local part. */
export function newReplyToken(): string {
  const bytes = randomBytes(16);
  let out = '';
  for (const b of bytes) out += BASE32[b & 31];
  return out;
}

function idKey(messageId: string): string {
  // Hashed: Message-IDs are sender-chosen and may be long or hold any printable character.
  return `email:mid:${createHash('sha256').update(messageId).digest('hex')}`;
}

function parse(value: string | null): ThreadRef | null {
  if (!value) return null;
  try {
    const v = JSON.parse(value) as Partial<ThreadRef>;
    return typeof v.ref === 'string' && typeof v.addr === 'string' ? { ref: v.ref, addr: v.addr } : null;
  } catch {
    return null;
  }
}

export class ThreadIndex {
  readonly #kv: KeyValue;

  constructor(kv: KeyValue) {
    this.#kv = kv;
  }

  /** The thread of the first id (then token) that is known, in the order given. */
  async lookup(ids: readonly string[], tokens: readonly string[]): Promise<ThreadRef | null> {
    for (const id of ids) {
      const found = parse(await this.#kv.get(idKey(id)));
      if (found) return found;
    }
    for (const token of tokens) {
      if (!isReplyToken(token)) continue;
      const found = parse(await this.#kv.get(`email:tok:${token}`));
      if (found) return found;
    }
    return null;
  }

  /** Records that `messageId` belongs to `thread`. */
  async remember(messageId: string, thread: ThreadRef): Promise<void> {
    await this.#kv.set(idKey(messageId), JSON.stringify(thread), THREAD_TTL_S);
  }

  /** The conversation's reply token (made on first use, the same for every answer) mapped to `thread`. */
  async tokenFor(conversationId: string, thread: ThreadRef): Promise<string> {
    const key = `email:ctok:${conversationId}`;
    await this.#kv.setIfAbsent(key, newReplyToken(), THREAD_TTL_S);
    const token = (await this.#kv.get(key)) ?? newReplyToken();
    await this.#kv.set(key, token, THREAD_TTL_S);
    await this.#kv.set(`email:tok:${token}`, JSON.stringify(thread), THREAD_TTL_S);
    return token;
  }
}
