/**
 * @module Participants and agents (SPEC §8, docs/handoff.md): who is in a conversation (users, bots,
 * agents), their joins and leaves as `activity` messages and `participant.*` events, agent messages
 * and agent typing.
 */
export { sendAsAgent } from './agents.js';
export { participantRoutes } from './routes.js';
export { agentOf, ParticipantService } from './service.js';
