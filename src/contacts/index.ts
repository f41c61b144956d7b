/**
 * @module Contacts and cross-channel identity (SPEC §9; docs/contacts.md). The gateway builds one
 * {@link ContactService} with {@link createContacts}, on the same backend as the store: in memory for
 * the embedded backend, on the store's own Redis connection otherwise.
 */
import type { Logger } from 'pino';
import type { EventHub } from '../core/events.js';
import type { Store } from '../core/store.js';
import { RedisStore } from '../store/redis/store.js';
import { ContactRepo } from './repo.js';
import { ContactService } from './service.js';
import type { ContactState } from './state.js';
import { MemoryContactState } from './state-memory.js';
import { RedisContactState } from './state-redis.js';
import { createSweeper } from './sweep.js';

export type { BotContact, Contact, Identity, MergeSuggestion } from './model.js';
export { ContactRepo } from './repo.js';
export { ContactService } from './service.js';

/** The contacts state for a store: Redis beside a Redis store (same connection and prefix), else memory. */
export function contactStateFor(store: Store): ContactState {
  if (store instanceof RedisStore) {
    const { redis, keys, wait } = store.shared;
    return new RedisContactState(redis, keys.prefix, wait);
  }
  return new MemoryContactState();
}

export function createContacts(deps: { store: Store; events: EventHub; logger?: Logger }): ContactService {
  return new ContactService({
    repo: new ContactRepo(contactStateFor(deps.store)),
    store: deps.store,
    events: deps.events,
    sweeper: createSweeper(deps.store),
    ...(deps.logger ? { logger: deps.logger } : {}),
  });
}
