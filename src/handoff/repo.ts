/**
 * @module The handoff room's storage port: applies one {@link HandoffCommand} to one conversation as
 * one atomic step (decided by the pure table in `machine.ts`, written only if the conversation is
 * still the one decided on), and keeps the idle release timers. Two twins, held to the same contract
 * suite in `test/contract/handoff.contract.ts`: Lua scripts on the store's Redis keys, and the
 * embedded store's synchronous step.
 */
import type { Conversation } from '../core/model.js';
import type { HandoffCommand, HandoffEventType } from './machine.js';

export type ApplyResult =
  | { kind: 'missing' }
  | { kind: 'refused'; code: 'not_in_handoff'; conversation: Conversation }
  | {
      kind: 'applied';
      /** The conversation as stored after the step. */
      conversation: Conversation;
      /** The events this step is the one to emit (empty when it changed nothing). */
      events: HandoffEventType[];
      /** False for an idempotent repeat that wrote nothing. */
      changed: boolean;
    };

export interface HandoffRepo {
  /**
   * Applies `command` to the conversation in one atomic step. Of any number of racing callers (in any
   * number of processes) asking for the same change, exactly one gets it `changed` with its events.
   */
  apply(conversationId: string, command: HandoffCommand): Promise<ApplyResult>;
  /**
   * Claims up to `max` conversations whose idle release time has come, by the store's clock; each
   * claimed timer is set `retryMs` later, so a process dying before it released the conversation
   * leaves the timer to another. The release itself clears the timer in its own atomic step.
   */
  claimDue(max: number, retryMs: number): Promise<string[]>;
  /** Drops the idle timer of a conversation that no longer exists. */
  forget(conversationId: string): Promise<void>;
  close(): Promise<void>;
}
