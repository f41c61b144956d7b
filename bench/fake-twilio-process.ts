/**
 * The fake Twilio REST API of {@link FakeTwilioProcess}, in a process of its own: every server the
 * bench compares sends its replies here, and none of them pays for the fake in its own event loop.
 * Answers IPC messages `{ id, op: 'stats' | 'reset' }` with `{ id, stats? }`.
 */
import { FakeTwilioApi } from '../test/fakes/twilio-api.js';
import { replyStats } from './fake-twilio.js';

const fake = await FakeTwilioApi.start();
process.on('message', (message: { id: number; op: 'stats' | 'reset' }) => {
  if (message.op === 'reset') {
    fake.reset();
    process.send!({ id: message.id });
  } else {
    process.send!({ id: message.id, stats: replyStats(fake.created()) });
  }
});
process.on('disconnect', () => {
  void fake.close().finally(() => process.exit(0));
});
process.send!({ url: fake.url });
