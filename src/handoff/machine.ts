/**
 * @module The handoff state machine of SPEC §8 as a pure table: the conversation as it is and one
 * command give the conversation as it is to be, the events that change emits, and what becomes of the
 * idle release timer. No I/O: each store applies a decision in one atomic step that first checks the
 * conversation is still the one decided on (src/handoff/repo-redis.ts, repo-memory.ts).
 *
 * ```
 * open|closed --request--> handoff/pending --assign--> handoff/assigned
 * handoff --release | idle | close--> open (closed for close), bot resumed
 * ```
 */
import type { Conversation, Handoff, HandoffRequester } from '../core/model.js';

export const HANDOFF_EVENTS = [
  'conversation.handoff_requested',
  'conversation.handoff_assigned',
  'conversation.handoff_released',
] as const;
export type HandoffEventType = (typeof HANDOFF_EVENTS)[number];

/** The reason recorded when the bot is unavailable and the handoff is entered for it. */
export const BOT_UNAVAILABLE = 'bot_unavailable';
/** The reason recorded when a customer's text matched a handoff keyword. */
export const CUSTOMER_REQUEST = 'customer_request';
/** The reason recorded when an agent or integrator asks through the API without giving one. */
export const AGENT_REQUEST = 'agent_request';
/** The reason recorded when the bot asked for a human without giving one. */
export const BOT_REQUEST = 'bot_request';

export type HandoffCommand =
  | {
      type: 'request';
      reason: string;
      requestedBy: HandoffRequester;
      /** Assigned at once to this agent participant. */
      assignee?: string;
      at: string;
      /** HANDOFF_IDLE_RELEASE_S; 0 = never. */
      idleReleaseS: number;
    }
  | { type: 'assign'; assignee: string; at: string; idleReleaseS: number }
  /** Back to the bot (an agent through the API). */
  | { type: 'release'; at: string }
  /** The idle release timer fired: releases only when the handoff is really due at `at`. */
  | { type: 'idle'; at: string }
  /** The conversation is closed, which ends its handoff. */
  | { type: 'close'; at: string }
  /** Someone answered for the agents (a message sent out while in handoff): the idle timer restarts. */
  | { type: 'touch'; at: string; idleReleaseS: number }
  /** The bot was asked again after a handoff ended: the resume marker has served. */
  | { type: 'resumed'; afterSeq: number };

/** What a command comes to on one conversation. */
export type Decision =
  | { kind: 'refused'; code: 'not_in_handoff' }
  | {
      kind: 'step';
      /** The conversation to store, or null when it stays as it is (idempotent repeats). */
      next: Conversation | null;
      events: HandoffEventType[];
      /** The idle release timer: a due time (ms) to set, null to clear it, undefined to leave it. */
      due?: number | null;
      /**
       * True when the step ends a handoff: the store gives `next` a `handoffResume` whose `afterSeq`
       * is the conversation's last seq, read in the same atomic step as the write.
       */
      ends: boolean;
    };

const same = (due?: number | null): Decision => ({ kind: 'step', next: null, events: [], due, ends: false });

function releaseAt(at: string, idleReleaseS: number): string | undefined {
  return idleReleaseS > 0 ? new Date(Date.parse(at) + idleReleaseS * 1000).toISOString() : undefined;
}

function dueOf(handoff: Handoff): number | null {
  return handoff.releaseAt ? Date.parse(handoff.releaseAt) : null;
}

function withHandoff(c: Conversation, handoff: Handoff, at: string): Conversation {
  const { handoffResume: _ended, ...rest } = c;
  return { ...rest, status: 'handoff', handoff, updatedAt: at };
}

function ended(c: Conversation, status: 'open' | 'closed', at: string): Decision {
  return {
    kind: 'step',
    // afterSeq is the store's to fill in (see Decision.ends).
    next: {
      ...c,
      status,
      handoff: null,
      handoffResume: { afterSeq: c.handoffResume?.afterSeq ?? 0, at },
      updatedAt: at,
    },
    events: ['conversation.handoff_released'],
    due: null,
    ends: true,
  };
}

/** Decides `command` on `c`. */
export function decide(c: Conversation, command: HandoffCommand): Decision {
  const current = c.status === 'handoff' ? c.handoff : null;
  switch (command.type) {
    case 'request': {
      // Entering is idempotent: a repeated request while in handoff changes nothing and emits nothing.
      if (current) return same();
      const at = command.at;
      const handoff: Handoff = {
        state: command.assignee ? 'assigned' : 'pending',
        reason: command.reason,
        requestedBy: command.requestedBy,
        requestedAt: at,
        ...(command.assignee ? { assignee: command.assignee, assignedAt: at } : {}),
      };
      const release = releaseAt(at, command.idleReleaseS);
      if (release) handoff.releaseAt = release;
      return {
        kind: 'step',
        next: withHandoff(c, handoff, at),
        events: command.assignee
          ? ['conversation.handoff_requested', 'conversation.handoff_assigned']
          : ['conversation.handoff_requested'],
        due: dueOf(handoff),
        ends: false,
      };
    }
    case 'assign': {
      const at = command.at;
      if (!current) {
        // An agent taking an open conversation puts it in handoff, assigned to them.
        return decide(c, {
          type: 'request',
          reason: 'agent',
          requestedBy: 'agent',
          assignee: command.assignee,
          at,
          idleReleaseS: command.idleReleaseS,
        });
      }
      if (current.state === 'assigned' && current.assignee === command.assignee) return same();
      const handoff: Handoff = { ...current, state: 'assigned', assignee: command.assignee, assignedAt: at };
      // Taking the conversation is an agent's doing: the idle timer starts again.
      const release = releaseAt(at, command.idleReleaseS);
      if (release) handoff.releaseAt = release;
      else delete handoff.releaseAt;
      return {
        kind: 'step',
        next: withHandoff(c, handoff, at),
        events: ['conversation.handoff_assigned'],
        due: dueOf(handoff),
        ends: false,
      };
    }
    case 'release':
      return current ? ended(c, 'open', command.at) : { kind: 'refused', code: 'not_in_handoff' };
    case 'idle': {
      // A timer for a conversation no longer in handoff is forgotten; one pushed back is moved.
      if (!current) return same(null);
      const due = dueOf(current);
      if (due === null) return same(null);
      if (due > Date.parse(command.at)) return same(due);
      return ended(c, 'open', command.at);
    }
    case 'close':
      if (current) return ended(c, 'closed', command.at);
      if (c.status === 'closed') return same();
      return {
        kind: 'step',
        next: { ...c, status: 'closed', handoff: null, updatedAt: command.at },
        events: [],
        ends: false,
      };
    case 'touch': {
      const release = releaseAt(command.at, command.idleReleaseS);
      if (!current || !release) return same();
      const handoff: Handoff = { ...current, releaseAt: release };
      return {
        kind: 'step',
        next: withHandoff(c, handoff, command.at),
        events: [],
        due: dueOf(handoff),
        ends: false,
      };
    }
    case 'resumed': {
      if (c.handoffResume?.afterSeq !== command.afterSeq) return same();
      const { handoffResume: _served, ...rest } = c;
      return { kind: 'step', next: { ...rest, handoff: rest.handoff ?? null }, events: [], ends: false };
    }
  }
}

/**
 * True when the bot must not be asked about `message`: the conversation was in handoff when the
 * message was claimed (the claim reads the conversation in the same atomic step), or the message was
 * accepted before the last handoff ended and waited in the queue until after it.
 */
export function isBotMuted(c: Conversation, seq: number): boolean {
  if (c.status === 'handoff') return true;
  return c.handoffResume !== undefined && seq <= c.handoffResume.afterSeq;
}
