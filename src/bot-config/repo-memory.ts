/** @module The in-process {@link BotConfigRepo} of the embedded backend (one process, no races to fence). */
import { type BotConfigRepo, EMPTY, type StoredBotConfig, type WriteResult } from './repo.js';

export class MemoryBotConfigRepo implements BotConfigRepo {
  readonly kind = 'memory' as const;
  #stored: StoredBotConfig = EMPTY;

  async read(): Promise<StoredBotConfig> {
    return this.#stored;
  }

  async write(doc: string, expected: number | null, updatedAt: string): Promise<WriteResult> {
    if (expected !== null && expected !== this.#stored.version)
      return { ok: false, version: this.#stored.version };
    this.#stored = { doc, version: this.#stored.version + 1, updatedAt };
    return { ok: true, version: this.#stored.version };
  }

  async close(): Promise<void> {}
}
