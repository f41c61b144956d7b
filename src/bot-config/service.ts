/**
 * @module The bot configuration service (SPEC §10, docs/bot-config.md). It holds the settings in force
 * in this process ({@link BotConfigService.current}: the environment overlaid by the stored document),
 * which the engine, the bot client and the handoff service read at call time. A write is validated
 * as a whole and stored only if the caller's version is still the stored one; refused writes change
 * nothing. Every process learns of a change twice over: a message on the store's bus, and a re-read
 * of the stored version every `refreshMs`, so a lost message delays a change by at most that long.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import type { Bus } from '../core/store.js';
import { parseInput, validationError } from '../http/api/schemas.js';
import type { BotConfigRepo, StoredBotConfig } from './repo.js';
import {
  type BotConfigDocument,
  type BotConfigView,
  type BotSettings,
  botConfigDocument,
  botConfigPatch,
  mergePatch,
  overlay,
  settingsProblems,
  toView,
} from './schema.js';

/** The bus topic a write is announced on (the payload is the new version). */
export const CHANGED_TOPIC = 'bot-config';

export interface BotConfigOptions {
  /** How often every process re-reads the stored version (the safety net under the bus). @default 1000 */
  refreshMs?: number;
  /** False: writes are not announced on the bus (tests of the re-read alone). @default true */
  announce?: boolean;
}

export interface BotConfigDeps {
  repo: BotConfigRepo;
  bus: Bus;
  /** The environment's settings: what an absent field of the document means. */
  base: BotSettings;
  logger: Logger;
  options?: BotConfigOptions;
}

/** A strong entity tag of a version: `"3"`. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/**
 * Whether an `If-Match` header (RFC 9110 §13.1.1) admits `version`: absent or `*` admits any; else one
 * of its entity tags must be the version's, compared strongly (a weak tag never matches).
 */
export function ifMatchAdmits(header: string | undefined, version: number): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value === '*') return true;
  const current = etagOf(version);
  return value.split(',').some((tag) => tag.trim() === current);
}

/** How often a write without `If-Match` reads again after losing a race to another writer. */
const WRITE_RETRIES = 5;

export class BotConfigService {
  readonly #deps: BotConfigDeps;
  readonly #log: Logger;
  readonly #listeners = new Set<(settings: BotSettings) => void>();
  #doc: BotConfigDocument = {};
  #stored: StoredBotConfig = { doc: '{}', version: 0, updatedAt: null };
  #current: BotSettings;
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => Promise<void>) | null = null;
  #refreshing: Promise<void> | null = null;
  /** Counts the changes applied here: a read that saw an older state than one applied meanwhile is dropped. */
  #epoch = 0;
  /** True while re-reads fail (the store unreachable): the settings in force stay as they are. */
  #readFailing = false;

  constructor(deps: BotConfigDeps) {
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'bot-config' });
    this.#current = deps.base;
  }

  /** The settings in force in this process now. */
  get current(): BotSettings {
    return this.#current;
  }

  /** The version this process runs with (0: nothing stored). */
  get version(): number {
    return this.#stored.version;
  }

  /** Calls `listener` with the new settings after every change applied in this process. */
  onChange(listener: (settings: BotSettings) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the stored configuration once, then follows changes (bus and periodic re-read). */
  async start(): Promise<void> {
    await this.refresh();
    this.#unsubscribe = await this.#deps.bus.subscribe(CHANGED_TOPIC, () => {
      void this.#refreshSoon();
    });
    this.#timer = setInterval(() => void this.#refreshSoon(), this.#deps.options?.refreshMs ?? 1_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#refreshing;
  }

  /** Stops following changes and closes the store connection. */
  async dispose(): Promise<void> {
    await this.stop();
    await this.#deps.repo.close();
  }

  /**
   * Reads the stored version and applies it when it is not the one in force. The store is the truth,
   * so a lower version (a Redis emptied and written again) is applied too; only a read overtaken by
   * a change applied while it was under way is dropped (the next re-read brings what is newer).
   */
  async refresh(): Promise<void> {
    const epoch = this.#epoch;
    const stored = await this.#deps.repo.read();
    if (epoch === this.#epoch) this.#apply(stored);
  }

  /** The configuration as stored now (read from the store, and applied here if newer). */
  async view(): Promise<BotConfigView> {
    await this.refresh();
    return this.#view();
  }

  /** `PUT`: replaces the stored document. */
  replace(body: unknown, ifMatch: string | undefined): Promise<BotConfigView> {
    const doc = parseInput(botConfigDocument, body);
    return this.#write(() => doc, ifMatch);
  }

  /** `PATCH`: merges a JSON merge patch (RFC 7396) into the stored document. */
  patch(body: unknown, ifMatch: string | undefined): Promise<BotConfigView> {
    // Checked on its own first, so a bad value is named as sent (the merged document is checked too).
    parseInput(botConfigPatch, body);
    return this.#write((stored) => parseInput(botConfigDocument, mergePatch(stored, body)), ifMatch);
  }

  // --- internals ---------------------------------------------------------------------------------

  async #write(
    next: (stored: BotConfigDocument) => BotConfigDocument,
    ifMatch: string | undefined,
  ): Promise<BotConfigView> {
    for (let attempt = 1; ; attempt++) {
      const stored = await this.#deps.repo.read();
      if (!ifMatchAdmits(ifMatch, stored.version)) throw preconditionFailed(stored.version);
      const doc = next(parseStored(stored.doc));
      const problems = settingsProblems(overlay(this.#deps.base, doc));
      if (problems.length > 0) throw validationError(problems);
      const updatedAt = new Date().toISOString();
      const json = JSON.stringify(doc);
      // A write that names its version fails on a change since; one that does not retries on the
      // newer document (a PATCH merges into what is there then).
      const epoch = this.#epoch;
      const result = await this.#deps.repo.write(json, stored.version, updatedAt);
      if (!result.ok) {
        if (ifMatch !== undefined && ifMatch.trim() !== '*') throw preconditionFailed(result.version);
        if (attempt >= WRITE_RETRIES) {
          throw new GatewayError(
            'GW_ERR_CONFLICT',
            'The bot configuration is being changed concurrently; retry',
          );
        }
        continue;
      }
      const written = toView(overlay(this.#deps.base, doc), doc, result.version, updatedAt);
      // Unless a newer change was applied meanwhile (another process wrote after this one).
      if (epoch === this.#epoch) this.#apply({ doc: json, version: result.version, updatedAt });
      this.#log.info({ version: result.version, fields: written.stored }, 'bot configuration changed');
      if (this.#deps.options?.announce !== false) {
        await this.#deps.bus
          .publish(CHANGED_TOPIC, String(result.version))
          .catch((err: unknown) =>
            this.#log.warn({ err }, 'bot configuration change not announced; other processes re-read it'),
          );
      }
      return written;
    }
  }

  #refreshSoon(): Promise<void> {
    this.#refreshing ??= this.refresh()
      .then(() => {
        if (this.#readFailing) this.#log.info('bot configuration re-read works again');
        this.#readFailing = false;
      })
      .catch((err: unknown) => {
        // Once per outage, not once a second.
        if (!this.#readFailing) this.#log.warn({ err }, 'bot configuration re-read failed; retrying');
        this.#readFailing = true;
      })
      .finally(() => {
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  #apply(stored: StoredBotConfig): void {
    if (stored.version === this.#stored.version && stored.doc === this.#stored.doc) return;
    let doc: BotConfigDocument;
    try {
      doc = parseStored(stored.doc);
    } catch {
      // Only a write through this service stores a document, so this is corruption: keep running on
      // what is in force rather than fall back to the environment.
      this.#log.error(
        { version: stored.version },
        'stored bot configuration is invalid; keeping the current one',
      );
      return;
    }
    const settings = overlay(this.#deps.base, doc);
    if (settingsProblems(settings).length > 0) {
      this.#log.error(
        { version: stored.version },
        'stored bot configuration is unusable; keeping the current one',
      );
      return;
    }
    this.#epoch += 1;
    this.#doc = doc;
    this.#stored = stored;
    this.#current = settings;
    for (const listener of this.#listeners) {
      try {
        listener(settings);
      } catch (err) {
        this.#log.error({ err }, 'applying the bot configuration failed');
      }
    }
  }

  #view(): BotConfigView {
    return toView(this.#current, this.#doc, this.#stored.version, this.#stored.updatedAt);
  }
}

function parseStored(json: string): BotConfigDocument {
  return botConfigDocument.parse(JSON.parse(json));
}

function preconditionFailed(version: number): GatewayError {
  return new GatewayError(
    'GW_ERR_PRECONDITION_FAILED',
    `The bot configuration changed since it was read (If-Match); its ETag is now ${etagOf(version)}`,
    { etag: etagOf(version) },
  );
}
