/**
 * The fake Twilio REST API (test/fakes/twilio-api.ts) run in a child process for the end-to-end and
 * peer figures, and what it tells about the replies it received.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RecordedRequest } from '../test/fakes/twilio-api.js';

/** What the fake saw of the replies (successful creates) since its last reset. */
export interface ReplyStats {
  /** Creates the fake answered 201. */
  replies: number;
  /** Distinct replies: one per recipient and text. */
  distinct: number;
  /** Replies beyond the first with the same recipient and text. */
  duplicates: number;
  /** Wall clock (ms) of the first and the last reply; 0 without replies. */
  firstAt: number;
  lastAt: number;
}

/** Counts replies, telling repeats (the same text to the same number) from distinct ones. */
export function replyStats(created: readonly Pick<RecordedRequest, 'fields' | 'at'>[]): ReplyStats {
  const seen = new Set<string>();
  let firstAt = 0;
  let lastAt = 0;
  for (const r of created) {
    seen.add(`${r.fields.To ?? ''}\n${r.fields.Body ?? ''}`);
    if (firstAt === 0 || r.at < firstAt) firstAt = r.at;
    if (r.at > lastAt) lastAt = r.at;
  }
  return {
    replies: created.length,
    distinct: seen.size,
    duplicates: created.length - seen.size,
    firstAt,
    lastAt,
  };
}

export class FakeTwilioProcess {
  #child: ChildProcess;
  #next = 0;
  #waiting = new Map<number, (stats: ReplyStats | undefined) => void>();
  private constructor(
    child: ChildProcess,
    readonly url: string,
  ) {
    this.#child = child;
    child.on('message', (message: { id?: number; stats?: ReplyStats }) => {
      if (message.id === undefined) return;
      this.#waiting.get(message.id)?.(message.stats);
      this.#waiting.delete(message.id);
    });
  }

  static start(): Promise<FakeTwilioProcess> {
    const child = fork(fileURLToPath(new URL('./fake-twilio-process.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the fake Twilio API exited with code ${code}`)));
      child.once('message', (message: { url: string }) => {
        child.removeAllListeners('exit');
        resolve(new FakeTwilioProcess(child, message.url));
      });
    });
  }

  #ask(op: 'stats' | 'reset'): Promise<ReplyStats | undefined> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#child.send({ id, op });
    });
  }

  async stats(): Promise<ReplyStats> {
    return (await this.#ask('stats'))!;
  }

  async reset(): Promise<void> {
    await this.#ask('reset');
  }

  /**
   * Waits for the replies of a load that has ended: until no reply came for `quietMs`, or for half a
   * second once `expected` distinct replies are in (late repeats still count), or `maxMs`.
   */
  async settle(expected: number, quietMs = 3000, maxMs = 120_000): Promise<ReplyStats> {
    const start = performance.now();
    let last = await this.stats();
    let changedAt = performance.now();
    while (performance.now() - start < maxMs) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await this.stats();
      if (now.replies !== last.replies) changedAt = performance.now();
      last = now;
      const quiet = performance.now() - changedAt;
      if (quiet >= quietMs || (now.distinct >= expected && quiet >= 500)) break;
    }
    return last;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#child.disconnect();
    });
  }
}
