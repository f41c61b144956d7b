/** Which thread the Slack assistant status goes to, and what is set and cleared; no I/O. */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { setTypingStatus, statusThread, TYPING_STATUS } from '../../adapters/slack/status.js';

const logger = pino({ level: 'silent' });
const about = (slack: Record<string, string>) => ({ id: 'msg_1', meta: { slack } });

describe('Slack assistant status', () => {
  it("a channel thread's own; in a DM the answered message's thread, else the message", () => {
    const on = { type: 'typing' as const, on: true };
    expect(statusThread({ channelRef: 'T1:C2:1700000000.000100' }, on)).toEqual({
      channel_id: 'C2',
      thread_ts: '1700000000.000100',
    });
    expect(
      statusThread({ channelRef: 'T1:D2' }, { ...on, about: about({ ts: '2.2', threadTs: '1.1' }) }),
    ).toEqual({ channel_id: 'D2', thread_ts: '1.1' });
    expect(statusThread({ channelRef: 'T1:D2' }, { ...on, about: about({ ts: '2.2' }) })).toEqual({
      channel_id: 'D2',
      thread_ts: '2.2',
    });
    // An agent's typing in a DM names no message: no thread to set a status on.
    expect(statusThread({ channelRef: 'T1:D2' }, on)).toBeUndefined();
    expect(statusThread({ channelRef: 'not-slack' }, on)).toBeUndefined();
  });

  it('sets "is typing…" on, "" off, and swallows a refusal', async () => {
    const calls: unknown[] = [];
    const api = { setStatus: async (args: unknown) => void calls.push(args) };
    const conversation = { id: 'c', channelRef: 'T1:C2:1.1' };
    await setTypingStatus(api, logger, conversation, { type: 'typing', on: true });
    await setTypingStatus(api, logger, conversation, { type: 'typing', on: false });
    expect(calls).toEqual([
      { channel_id: 'C2', thread_ts: '1.1', status: TYPING_STATUS },
      { channel_id: 'C2', thread_ts: '1.1', status: '' },
    ]);
    const refusing = {
      setStatus: async () => {
        throw new Error('not_allowed');
      },
    };
    await expect(
      setTypingStatus(refusing, logger, conversation, { type: 'typing', on: true }),
    ).resolves.toBeUndefined();
  });
});
