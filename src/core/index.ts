/**
 * @module The only module adapters import from the core: the model, the channel contract, the store
 * port, errors and ids.
 */
export * from './channel.js';
export * from './errors.js';
export * from './events.js';
export * from './ids.js';
export * from './model.js';
export type * from './store.js';
