/**
 * @module The only module adapters import from the core: the model, the channel contract, the store
 * port, errors, ids and retry timing.
 */

/** Retry timing shared with the bot client, for adapters that retry provider calls. */
export { fullJitter, parseRetryAfter, sleep } from './backoff.js';
export * from './channel.js';
/** The client behind a connection, through trusted proxies only. */
export { clientAddress, TrustedProxies } from './client-address.js';
/** Personal-data detection, for adapters that change a stored message's text (provider edits). */
export { detectEntities } from './entities.js';
export * from './errors.js';
export * from './events.js';
/** `{ ...base, ...fields }` without V8's slow path, for per-message code. */
export { extend } from './extend.js';
export * from './ids.js';
export * from './model.js';
export type * from './store.js';
export * from './verify-mode.js';
