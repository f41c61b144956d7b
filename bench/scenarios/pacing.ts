/**
 * Shared pacing (docs/pacing.md) on the message path. A backlog of signed SMS through Twilio is
 * drained (bench/drain.ts), once with `TWILIO_SEND_RATE_PER_SEC=0` (off, the default: no gate) and
 * once with it at 10,000 a second, far above what the engine sends, in paired rounds. Every reply then
 * reserves its sender's slot in Redis (one `EVALSHA`) and never waits for it: the row is the gate's
 * own price per send, which every paced channel (Slack per channel, the Cloud API per number) pays.
 */
import { FakeTwilioApi, smsParams } from '../../test/fakes/twilio-api.js';
import { drainRound } from '../drain.js';
import { type BenchRow, countRow, paired, pairedRow } from '../lib.js';

const MESSAGES = Number(process.env.BENCH_PACING_MESSAGES ?? 2000);
const CUSTOMERS = 200;

function drain(fake: FakeTwilioApi, redisUrl: string, rate: string) {
  return drainRound({
    fake,
    redisUrl,
    label: 'pacing',
    messages: MESSAGES,
    params: (i, round) =>
      smsParams({
        MessageSid: `SM${round.toString(16).padStart(4, '0')}${i.toString(16).padStart(28, '0')}`,
        From: `+1415557${String(i % CUSTOMERS).padStart(4, '0')}`,
        Body: `pacing bench ${round} ${i}`,
      }),
    env: { TWILIO_SEND_RATE_PER_SEC: rate },
  });
}

export async function run(redisUrl: string): Promise<BenchRow[]> {
  const fake = await FakeTwilioApi.start();
  try {
    const result = await paired(
      () => drain(fake, redisUrl, '0'),
      () => drain(fake, redisUrl, '10000'),
    );
    const all = result.rounds.flatMap((r) => [r.subject, r.baseline]);
    return [
      pairedRow(
        'pacing: SMS backlog answered through a shared sender gate (never waiting) vs none',
        'replies/s',
        result,
      ),
      countRow(
        'pacing: backlogged messages not answered',
        'count',
        all.reduce((s, d) => s + (MESSAGES - d.answered), 0),
      ),
    ];
  } finally {
    await fake.close();
  }
}
