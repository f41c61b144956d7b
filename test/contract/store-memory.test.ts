/** @module Runs the Store conformance suite against the embedded backend. */
import { MemoryStore } from '../../src/store/memory.js';
import { DEFAULT_MAX_PENDING, storeContract } from './store.contract.js';

storeContract('memory', async (options) => {
  const store = new MemoryStore({ maxPending: options?.maxPending ?? DEFAULT_MAX_PENDING, retryAfterS: 5 });
  return { store, cleanup: () => store.close() };
});
