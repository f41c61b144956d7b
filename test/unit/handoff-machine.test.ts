/**
 * The handoff state machine's table (SPEC §8), state by command, without I/O; and the keyword matcher.
 */
import { describe, expect, it } from 'vitest';
import type { Conversation, Handoff } from '../../src/core/model.js';
import { keywordMatcher, parseKeywords } from '../../src/handoff/keywords.js';
import { decide, type HandoffCommand, isBotMuted } from '../../src/handoff/machine.js';

const AT = '2026-01-01T00:00:00.000Z';
const LATER = '2026-01-01T00:01:00.000Z';

function conversation(status: Conversation['status'], handoff: Handoff | null = null): Conversation {
  return {
    id: 'conv_1',
    channel: 'api',
    channelRef: 'conv_1',
    participants: [],
    status,
    handoff,
    sessionId: 'sess_1',
    sessionStartedAt: AT,
    sessionState: {},
    meta: {},
    createdAt: AT,
    updatedAt: AT,
    lastMessageAt: null,
  };
}

const pending: Handoff = { state: 'pending', reason: 'r', requestedBy: 'bot', requestedAt: AT };
const assigned: Handoff = { ...pending, state: 'assigned', assignee: 'part_a', assignedAt: AT };

const commands: Record<string, HandoffCommand> = {
  request: { type: 'request', reason: 'why', requestedBy: 'customer', at: LATER, idleReleaseS: 0 },
  assignA: { type: 'assign', assignee: 'part_a', at: LATER, idleReleaseS: 0 },
  assignB: { type: 'assign', assignee: 'part_b', at: LATER, idleReleaseS: 0 },
  release: { type: 'release', at: LATER },
  close: { type: 'close', at: LATER },
  idle: { type: 'idle', at: LATER },
};

const states: Record<string, Conversation> = {
  open: conversation('open'),
  closed: conversation('closed'),
  pending: conversation('handoff', pending),
  assigned: conversation('handoff', assigned),
};

/** state × command → status/handoff state after, and the events (`=` for an idempotent no-op). */
const table: Record<string, Record<string, string>> = {
  open: {
    request: 'handoff/pending requested',
    assignA: 'handoff/assigned requested,assigned',
    assignB: 'handoff/assigned requested,assigned',
    release: 'refused',
    close: 'closed/- ',
    idle: '=',
  },
  closed: {
    request: 'handoff/pending requested',
    assignA: 'handoff/assigned requested,assigned',
    assignB: 'handoff/assigned requested,assigned',
    release: 'refused',
    close: '=',
    idle: '=',
  },
  pending: {
    request: '=',
    assignA: 'handoff/assigned assigned',
    assignB: 'handoff/assigned assigned',
    release: 'open/- released',
    close: 'closed/- released',
    idle: '=',
  },
  assigned: {
    request: '=',
    assignA: '=',
    assignB: 'handoff/assigned assigned',
    release: 'open/- released',
    close: 'closed/- released',
    idle: '=',
  },
};

describe('decide', () => {
  for (const [state, row] of Object.entries(table)) {
    for (const [command, expected] of Object.entries(row)) {
      it(`${state} × ${command} → ${expected}`, () => {
        const d = decide(states[state]!, commands[command]!);
        if (d.kind === 'refused') return expect('refused').toBe(expected);
        if (!d.next) return expect('=').toBe(expected);
        const events = d.events.map((e) => e.replace('conversation.handoff_', '')).join(',');
        expect(`${d.next.status}/${d.next.handoff?.state ?? '-'} ${events}`).toBe(expected);
        expect(d.next.handoff === null).toBe(d.next.status !== 'handoff');
        expect(d.ends).toBe(events === 'released');
        if (d.ends) expect(d.next.handoffResume?.at).toBe(LATER);
      });
    }
  }

  it('sets the idle release from the request and restarts it on assignment', () => {
    const entered = decide(states.open!, { ...commands.request!, idleReleaseS: 60 } as HandoffCommand);
    expect(entered).toMatchObject({ next: { handoff: { releaseAt: '2026-01-01T00:02:00.000Z' } } });
    expect(entered.kind === 'step' && entered.due).toBe(Date.parse('2026-01-01T00:02:00.000Z'));
    const taken = decide(states.pending!, {
      type: 'assign',
      assignee: 'part_a',
      at: LATER,
      idleReleaseS: 120,
    });
    expect(taken).toMatchObject({ next: { handoff: { releaseAt: '2026-01-01T00:03:00.000Z' } } });
  });

  it('restarts the idle timer when people answer, only in handoff and with a timer set', () => {
    const touch = { type: 'touch', at: LATER, idleReleaseS: 60 } as const;
    expect(decide(states.assigned!, touch)).toMatchObject({
      next: { status: 'handoff', handoff: { state: 'assigned', releaseAt: '2026-01-01T00:02:00.000Z' } },
      events: [],
      due: Date.parse('2026-01-01T00:02:00.000Z'),
    });
    expect(decide(states.open!, touch)).toMatchObject({ next: null, events: [] });
    expect(decide(states.assigned!, { ...touch, idleReleaseS: 0 })).toMatchObject({ next: null });
  });

  it('releases on the idle timer only when due, and moves or forgets a stale timer', () => {
    const due = conversation('handoff', { ...pending, releaseAt: LATER });
    expect(decide(due, { type: 'idle', at: AT })).toEqual({
      kind: 'step',
      next: null,
      events: [],
      due: Date.parse(LATER),
      ends: false,
    });
    expect(decide(due, { type: 'idle', at: LATER })).toMatchObject({
      next: { status: 'open' },
      events: ['conversation.handoff_released'],
      due: null,
    });
    expect(decide(states.open!, { type: 'idle', at: LATER })).toMatchObject({ next: null, due: null });
  });

  it('serves the resume marker of its own release only', () => {
    const c = { ...states.open!, handoffResume: { afterSeq: 4, at: AT } };
    expect(decide(c, { type: 'resumed', afterSeq: 3 })).toMatchObject({ next: null });
    const served = decide(c, { type: 'resumed', afterSeq: 4 });
    expect(served.kind === 'step' && served.next?.handoffResume).toBeUndefined();
  });
});

describe('isBotMuted', () => {
  it('mutes in handoff, and up to the seq the last handoff ended at', () => {
    expect(isBotMuted(states.pending!, 9)).toBe(true);
    expect(isBotMuted(states.open!, 9)).toBe(false);
    const resumed = { ...states.open!, handoffResume: { afterSeq: 4, at: AT } };
    expect(isBotMuted(resumed, 4)).toBe(true);
    expect(isBotMuted(resumed, 5)).toBe(false);
  });
});

describe('handoff keywords', () => {
  it('parses the setting and matches whole words and phrases in any case', () => {
    expect(parseKeywords(' agent,, Talk  to a person ,')).toEqual(['agent', 'Talk to a person']);
    expect(keywordMatcher([])).toBeNull();
    const match = keywordMatcher(parseKeywords('agent,talk to a person,c++'))!;
    expect(match('I want an AGENT.')).toBe(true);
    expect(match('agent')).toBe(true);
    expect(match('can I talk\nto a   person?')).toBe(true);
    expect(match('our agents are busy')).toBe(false);
    expect(match('reagent')).toBe(false);
    expect(match('talk to a personal trainer')).toBe(false);
    expect(match('do you know c++?')).toBe(true);
    expect(match('Agent_Smith')).toBe(false);
    expect(match('Agentur')).toBe(false);
  });
});
