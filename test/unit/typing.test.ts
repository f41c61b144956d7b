/**
 * The typing slot (src/typing/) on a fake clock: when it shows, how it renews and stops renewing,
 * what settling and ending do, and that a channel without typing is never signalled.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChannelAdapter, ChannelSignal } from '../../src/core/channel.js';
import type { ChannelName, Conversation, Message } from '../../src/core/model.js';
import { MAX_TYPING_MS, Typing } from '../../src/typing/index.js';

const logger = pino({ level: 'silent' });

function rig(channel: ChannelName, afterMs = 800) {
  const signals: Array<ChannelSignal & { at: number }> = [];
  const adapter: ChannelAdapter = {
    name: 'test',
    channels: [channel],
    describe: () => [],
    signal: async (_c, s) => void signals.push({ ...s, at: Date.now() }),
  };
  const now = new Date();
  const conversation = { id: 'conv_1', channel, channelRef: 'ref' } as Conversation;
  const message = { id: 'msg_1', externalId: 'SM1', meta: {}, createdAt: now.toISOString() } as Message;
  return {
    signals,
    adapter,
    conversation,
    message,
    typing: new Typing({ afterMs, logger }),
    start: now.getTime(),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('typing slots', () => {
  it('show after TYPING_AFTER_MS from the acceptance, naming the message, and clear once when ended', async () => {
    vi.useFakeTimers();
    const { signals, adapter, conversation, message, typing, start } = rig('webchat');
    const slot = typing.slot();
    slot.start(adapter, conversation, message);
    await vi.advanceTimersByTimeAsync(799);
    expect(signals).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(signals).toEqual([
      { type: 'typing', on: true, about: { id: 'msg_1', externalId: 'SM1', meta: {} }, at: start + 800 },
    ]);
    await slot.settle();
    slot.end();
    slot.end();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(signals.map((s) => s.on)).toEqual([true, false]);
  });

  it('a message already waiting longer shows at once; settled before it is due shows nothing', async () => {
    vi.useFakeTimers();
    const late = rig('webchat');
    vi.advanceTimersByTime(1_000);
    late.typing.slot().start(late.adapter, late.conversation, late.message);
    await vi.advanceTimersByTimeAsync(0);
    expect(late.signals.map((s) => s.on)).toEqual([true]);

    const fast = rig('webchat');
    const slot = fast.typing.slot();
    slot.start(fast.adapter, fast.conversation, fast.message);
    await vi.advanceTimersByTimeAsync(500);
    await slot.settle();
    slot.end();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fast.signals).toEqual([]);
  });

  it('renew on WhatsApp every 20 s and stop after the cap', async () => {
    vi.useFakeTimers();
    const { signals, adapter, conversation, message, typing } = rig('whatsapp', 0);
    const slot = typing.slot();
    slot.start(adapter, conversation, message);
    await vi.advanceTimersByTimeAsync(MAX_TYPING_MS * 3);
    expect(signals.length).toBe(1 + Math.floor(MAX_TYPING_MS / 20_000));
    expect(signals.every((s) => s.on)).toBe(true);
    slot.end();
  });

  it('never signal a channel without typing', async () => {
    vi.useFakeTimers();
    for (const channel of ['sms', 'email', 'api'] as const) {
      const { signals, adapter, conversation, message, typing } = rig(channel, 0);
      const slot = typing.slot();
      slot.start(adapter, conversation, message);
      await vi.advanceTimersByTimeAsync(MAX_TYPING_MS);
      slot.end();
      expect(signals).toEqual([]);
    }
  });
});
