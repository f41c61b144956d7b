/**
 * Typing indicators (docs/typing.md) on the message path. A backlog of signed WhatsApp messages through
 * Twilio is drained (bench/drain.ts), echoing every message through the twilio client to the fake REST
 * API, once with `TWILIO_TYPING_INDICATOR=on` (the default) and once `off`, in paired rounds. Every
 * backlogged message has waited longer than `TYPING_AFTER_MS`, so with indicators on each one gets its
 * indicator the moment its turn comes: the "on" side makes two REST calls a message where "off" makes
 * one. That is the feature's whole price on a busy gateway; on a quiet one, where the bot answers
 * within `TYPING_AFTER_MS`, it is a timer armed and cleared. Correctness rows: every message answered,
 * and no indicator after the reply it precedes.
 */
import { FakeTwilioApi, whatsappParams } from '../../test/fakes/twilio-api.js';
import { type DrainResult, drainRound } from '../drain.js';
import { type BenchRow, countRow, paired, pairedRow } from '../lib.js';

const MESSAGES = Number(process.env.BENCH_TYPING_MESSAGES ?? 2000);
const CUSTOMERS = 200;

interface TypingDrain extends DrainResult {
  indicators: number;
  /** Indicators that reached the fake after the reply to their message. */
  late: number;
}

async function drain(fake: FakeTwilioApi, redisUrl: string, typing: 'on' | 'off'): Promise<TypingDrain> {
  const result = await drainRound({
    fake,
    redisUrl,
    label: 'typing',
    messages: MESSAGES,
    params: (i, round) => {
      const from = `+1415556${String(i % CUSTOMERS).padStart(4, '0')}`;
      return whatsappParams({
        MessageSid: `SM${round.toString(16).padStart(4, '0')}${i.toString(16).padStart(28, '0')}`,
        From: `whatsapp:${from}`,
        WaId: from.slice(1),
        Body: `typing bench ${round} ${i}`,
      });
    },
    env: { TWILIO_TYPING_INDICATOR: typing },
    // Past TYPING_AFTER_MS (800 ms by default) for every message of the backlog, the last one included.
    pauseMs: 1_000,
  });
  const indicators = fake.typing();
  // An indicator names the message's SID (round and index in hex); the reply echoes the index.
  const repliedAt = new Map<number, number>();
  for (const r of fake.created()) {
    const n = /typing bench \d+ (\d+)$/.exec(r.fields.Body ?? '')?.[1];
    if (n !== undefined) repliedAt.set(Number(n), r.at);
  }
  let late = 0;
  for (const t of indicators) {
    const at = repliedAt.get(Number.parseInt((t.fields.messageId ?? '').slice(6), 16));
    if (at !== undefined && t.at > at) late += 1;
  }
  return { ...result, indicators: indicators.length, late };
}

export async function run(redisUrl: string): Promise<BenchRow[]> {
  const fake = await FakeTwilioApi.start();
  try {
    const result = await paired(
      () => drain(fake, redisUrl, 'off'),
      () => drain(fake, redisUrl, 'on'),
    );
    const on = result.rounds.map((r) => r.subject);
    const all = result.rounds.flatMap((r) => [r.subject, r.baseline]);
    return [
      pairedRow('typing: WhatsApp backlog answered with indicators on vs off', 'replies/s', result),
      {
        scenario: 'typing: indicators sent per backlogged message (on)',
        metric: 'ratio',
        value: on.reduce((s, d) => s + d.indicators, 0) / (on.length * MESSAGES),
      },
      countRow(
        'typing: backlogged messages not answered',
        'count',
        all.reduce((s, d) => s + (MESSAGES - d.answered), 0),
      ),
      countRow(
        'typing: indicators after the reply they precede',
        'count',
        on.reduce((s, d) => s + d.late, 0),
      ),
    ];
  } finally {
    await fake.close();
  }
}
