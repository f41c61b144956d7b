/** @module Runs the handoff repository conformance suite against the embedded backend. */
import { MemoryHandoffRepo } from '../../src/handoff/repo-memory.js';
import { MemoryStore } from '../../src/store/memory.js';
import { handoffContract } from './handoff.contract.js';

handoffContract('memory', async () => {
  const store = new MemoryStore({ maxPending: 1000, retryAfterS: 5 });
  const repo = new MemoryHandoffRepo(store);
  return { store, repos: [repo, repo], cleanup: () => store.close() };
});
