/** @module The in-memory {@link KeyRepo} of the embedded backend (one process; lost on restart). */
import type { Page } from '../core/store.js';
import type { KeyRecord } from './model.js';
import { type KeyListQuery, type KeyRepo, pageOf } from './repo.js';

export class MemoryKeyRepo implements KeyRepo {
  readonly kind = 'memory' as const;
  readonly #records = new Map<string, KeyRecord>();
  readonly #used = new Map<string, string>();

  async insert(record: KeyRecord): Promise<void> {
    this.#records.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<KeyRecord | null> {
    const record = this.#records.get(id);
    return record ? this.#view(record) : null;
  }

  #view(record: KeyRecord): KeyRecord {
    return { ...structuredClone(record), lastUsedAt: this.#used.get(record.id) ?? null };
  }

  async list(query: KeyListQuery): Promise<Page<KeyRecord>> {
    const asc = query.order === 'asc';
    const ids = [...this.#records.keys()].sort();
    if (!asc) ids.reverse();
    const after = query.cursor;
    const picked = ids
      .filter((id) => after === undefined || (asc ? id > after : id < after))
      .slice(0, query.take + 1);
    return pageOf(
      picked.map((id) => this.#view(this.#records.get(id)!)),
      query.take,
    );
  }

  async remove(id: string): Promise<boolean> {
    this.#used.delete(id);
    return this.#records.delete(id);
  }

  async touch(id: string, at: string): Promise<void> {
    if (this.#records.has(id)) this.#used.set(id, at);
  }
}
