/** @module The in-memory {@link ContactState} of the embedded backend. */
import type { Check, ContactState, Op } from './state.js';

export class MemoryContactState implements ContactState {
  readonly kind = 'embedded' as const;
  readonly #hashes = new Map<string, Map<string, string>>();
  readonly #zsets = new Map<string, Map<string, number>>();

  async hget(key: string, fields: readonly string[]): Promise<(string | null)[]> {
    const h = this.#hashes.get(key);
    return fields.map((f) => h?.get(f) ?? null);
  }

  async linkAndContact(
    conversationId: string,
    fallbackId: string | null,
  ): Promise<[string | null, string | null]> {
    const link = this.#hashes.get('conv')?.get(conversationId) ?? null;
    const id = link ? (JSON.parse(link) as { contactId: string }).contactId : fallbackId;
    return [link, id ? (this.#hashes.get('c')?.get(id) ?? null) : null];
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.#hashes.get(key) ?? []);
  }

  #sorted(key: string, rev: boolean): string[] {
    const z = [...(this.#zsets.get(key) ?? [])];
    z.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (rev) z.reverse();
    return z.map(([m]) => m);
  }

  async zrange(key: string, start: number, stop: number, rev = false): Promise<string[]> {
    const all = this.#sorted(key, rev);
    return all.slice(start, stop < 0 ? all.length + stop + 1 : stop + 1);
  }

  async zrangeAfter(key: string, after: string | null, count: number, rev = false): Promise<string[]> {
    const all = this.#sorted(key, rev);
    const rest = after === null ? all : all.filter((m) => (rev ? m < after : m > after));
    return rest.slice(0, count);
  }

  async zcard(key: string): Promise<number> {
    return this.#zsets.get(key)?.size ?? 0;
  }

  async apply(checks: readonly Check[], ops: readonly Op[]): Promise<boolean> {
    for (const c of checks) {
      if (c[0] === 'h') {
        const v = this.#hashes.get(c[1])?.get(c[2]) ?? false;
        if (v !== c[3]) return false;
      } else if ((this.#zsets.get(c[1])?.size ?? 0) !== c[2]) return false;
    }
    for (const o of ops) {
      switch (o[0]) {
        case 'hset': {
          const h = this.#hashes.get(o[1]) ?? new Map<string, string>();
          h.set(o[2], o[3]);
          this.#hashes.set(o[1], h);
          break;
        }
        case 'hdel':
          this.#hashes.get(o[1])?.delete(o[2]);
          break;
        case 'zadd': {
          const z = this.#zsets.get(o[1]) ?? new Map<string, number>();
          z.set(o[3], o[2]);
          this.#zsets.set(o[1], z);
          break;
        }
        case 'zrem':
          this.#zsets.get(o[1])?.delete(o[2]);
          break;
        case 'del':
          this.#hashes.delete(o[1]);
          this.#zsets.delete(o[1]);
          break;
      }
    }
    return true;
  }
}
