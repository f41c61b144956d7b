/** @module Runs the bot configuration repository conformance suite against the in-memory twin. */
import { MemoryBotConfigRepo } from '../../src/bot-config/repo-memory.js';
import { botConfigContract } from './bot-config.contract.js';

botConfigContract('memory', async () => {
  const repo = new MemoryBotConfigRepo();
  return { repos: [repo, repo], cleanup: () => repo.close() };
});
