/**
 * @module The storage port of managed API keys: records by id, listed in id (creation) order. Two
 * implementations hold the same contract: in memory for the embedded backend, Redis beside a Redis
 * store (shared by every process).
 */
import type { Page } from '../core/store.js';
import type { KeyRecord } from './model.js';

export interface KeyListQuery {
  /** The id of the last key of the previous page. */
  cursor?: string;
  take: number;
  order: 'asc' | 'desc';
}

export interface KeyRepo {
  readonly kind: 'memory' | 'redis';
  insert(record: KeyRecord): Promise<void>;
  get(id: string): Promise<KeyRecord | null>;
  list(query: KeyListQuery): Promise<Page<KeyRecord>>;
  /** True when the key existed. */
  remove(id: string): Promise<boolean>;
  /** Records that the key was used at `at` (ISO 8601); a key that is gone stays gone. */
  touch(id: string, at: string): Promise<void>;
}

/** Builds a page from ids in page order, `take + 1` at most: the extra one only proves another page. */
export function pageOf(items: KeyRecord[], take: number): Page<KeyRecord> {
  if (items.length <= take) return { items, cursor: null };
  const page = items.slice(0, take);
  return { items: page, cursor: page[page.length - 1]!.id };
}
