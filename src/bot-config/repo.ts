/**
 * @module Where the bot configuration is kept: one document with a version, written only when the
 * caller's expected version is still the stored one, so two writers racing from any processes cannot
 * both win (a stale `If-Match` is a 412). Two twins: in memory (the embedded backend) and Redis.
 */

/** The stored document (JSON text, never parsed here) with its version; version 0: nothing stored. */
export interface StoredBotConfig {
  doc: string;
  version: number;
  updatedAt: string | null;
}

export type WriteResult = { ok: true; version: number } | { ok: false; version: number };

export interface BotConfigRepo {
  readonly kind: 'memory' | 'redis';
  read(): Promise<StoredBotConfig>;
  /**
   * Stores `doc` as the next version when the stored version is `expected` (null: whatever it is);
   * otherwise changes nothing and answers the version that is stored.
   */
  write(doc: string, expected: number | null, updatedAt: string): Promise<WriteResult>;
  close(): Promise<void>;
}

/** Nothing stored yet. */
export const EMPTY: StoredBotConfig = { doc: '{}', version: 0, updatedAt: null };
