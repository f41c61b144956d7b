/**
 * Peer comparison: Switchboard's Twilio path end to end against the published Chat SDK (`chat`,
 * `@chat-adapter/twilio`, `@chat-adapter/state-ioredis`, versions pinned in package.json) running its
 * documented echo bot (bench/peer/server.ts), both in the same run and on the same footing: the same
 * signed inbound SMS from CUSTOMERS senders (unique MessageSid, fresh signature), the same wrk load
 * in its own process, the same private Redis (each under its own key prefix), the same fake Twilio
 * REST API in a process of its own, signature checks on with the same auth token and public URL. The
 * peer runs in its own process; Switchboard in the bench's, which during a load only hosts it.
 *
 * Every round loads bare Express, Switchboard in the bench's process, Switchboard as two compiled
 * processes (`ROLE=web` taking the webhooks, `ROLE=worker` answering them), the floor (bench/floor.ts:
 * bare Express doing only the signature check, one accept EVALSHA and the send, the least a gateway
 * keeping SPEC §4 must do), the peer with its documented `lockScope: 'thread'` and the peer with its
 * Twilio adapter's default (`channel`), in turn; the reported round is the median by ratio to that
 * round's bare Express. Then each is loaded once more with every request sent twice.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { ACCOUNT_SID, AUTH_TOKEN, postWebhook, smsParams } from '../../test/fakes/twilio-api.js';
import { FakeTwilioProcess, type ReplyStats } from '../fake-twilio.js';
import { startFloor } from '../floor.js';
import { pendingOf, spawnGateway, stopGateway } from '../gateway-process.js';
import { type BenchRow, countRow, type LoadResult, load, ROUNDS, ratioRow, startBare } from '../lib.js';
import {
  acked,
  CONNECTIONS,
  CUSTOMERS,
  DURATION_S,
  drained,
  gateway,
  HEADERS,
  PATH,
  PUBLIC_URL,
  sustained,
  webhookRequests,
} from './twilio.js';

/** Seconds of unmeasured load each subject gets first, so no round pays for a cold start. */
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 2);

type LockScope = 'thread' | 'default';

interface Subject {
  name: string;
  kind: 'switchboard' | 'roles' | 'floor' | 'peer';
  url: string;
  /** Resolves when the subject has nothing left to answer, where it can tell. */
  drained?(): Promise<void>;
  stop(): Promise<void>;
}

/** One load of a subject and the replies it brought at the fake. */
interface Outcome {
  load: LoadResult;
  replies: ReplyStats;
  rps: number;
}

/** Starts the peer's server (bench/peer/server.ts) in a child process. */
async function startPeer(
  fakeUrl: string,
  redisUrl: string,
  lockScope: LockScope,
  prefix: string,
): Promise<Subject> {
  const child: ChildProcess = fork(fileURLToPath(new URL('../peer/server.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_PHONE_NUMBER: '+15005550006',
      PEER_REDIS_URL: redisUrl,
      PEER_KEY_PREFIX: prefix,
      PEER_TWILIO_API_URL: fakeUrl,
      PEER_WEBHOOK_URL: `${PUBLIC_URL}${PATH}`,
      PEER_LOCK_SCOPE: lockScope,
    },
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the peer exited with code ${code} before listening`)));
    child.once('message', (message: { url: string }) => resolve(message.url));
  });
  child.removeAllListeners('exit');
  return {
    kind: 'peer',
    name: `Chat SDK (${lockScope === 'thread' ? "lockScope 'thread'" : 'default lock scope'})`,
    url: `${url}${PATH}`,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
  };
}

async function startSwitchboard(fakeUrl: string, redisUrl: string): Promise<Subject> {
  const { gw, url } = await gateway(fakeUrl, true, redisUrl, 'bench-peer-switchboard');
  return {
    kind: 'switchboard',
    name: 'Switchboard',
    url: `${url}${PATH}`,
    drained: () => drained(gw),
    stop: () => gw.stop(),
  };
}

/**
 * Switchboard as it scales on one host: a `ROLE=web` process taking the webhooks and a `ROLE=worker`
 * process answering them, both compiled gateways on the run's Redis, with the same settings as the
 * in-process gateway (demo bot, the fake REST API, signature checks on).
 */
async function startSwitchboardRoles(fakeUrl: string, redisUrl: string): Promise<Subject> {
  const env = {
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: 'bench-peer-roles',
    PUBLIC_URL,
    API_KEYS: 'bench-api-key-0123456789abcdef',
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: fakeUrl,
    QUEUE_MAX_PENDING: '10000000',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MIN: '0',
  };
  const [web, worker] = await Promise.all([spawnGateway('web', env), spawnGateway('worker', env)]);
  return {
    kind: 'roles',
    name: 'Switchboard (ROLE=web + ROLE=worker)',
    url: `${web.url}${PATH}`,
    drained: async () => {
      const deadline = performance.now() + 120_000;
      while ((await pendingOf(worker.url)) > 0 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => {
      await Promise.all([stopGateway(web), stopGateway(worker)]);
    },
  };
}

/** The floor (bench/floor.ts): the least a gateway keeping SPEC §4 must do per message. */
async function startFloorSubject(fakeUrl: string, redisUrl: string): Promise<Subject> {
  const senders = Array.from({ length: CUSTOMERS }, (_, i) => `+1415555${String(i).padStart(4, '0')}`);
  const floor = await startFloor({
    apiUrl: fakeUrl,
    redisUrl,
    prefix: 'bench-peer-floor',
    signedUrl: `${PUBLIC_URL}${PATH}`,
    senders,
  });
  return {
    kind: 'floor',
    name: 'floor (verify, accept, send)',
    url: floor.url,
    drained: () => floor.drained(),
    stop: async () => {
      const { failed } = floor.failures();
      await floor.close();
      if (failed > 0) throw new Error(`the floor failed ${failed} accepts or sends`);
    },
  };
}

/** Deletes the keys under `prefix` the runs left in the shared Redis. */
async function clear(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Runs the scenario on `redisUrl` (as `npm run bench` does): the peer's state adapter needs Redis,
 * so there is no embedded variant.
 */
export async function run(redisUrl?: string): Promise<BenchRow[]> {
  if (!redisUrl) throw new Error('the peer scenario needs Redis: run it through npm run bench');
  const fake = await FakeTwilioProcess.start();
  const bare = await startBare();
  const subjects: Subject[] = [];
  try {
    subjects.push(await startSwitchboard(fake.url, redisUrl));
    subjects.push(await startSwitchboardRoles(fake.url, redisUrl));
    subjects.push(await startFloorSubject(fake.url, redisUrl));
    subjects.push(await startPeer(fake.url, redisUrl, 'thread', 'bench-peer-thread'));
    subjects.push(await startPeer(fake.url, redisUrl, 'default', 'bench-peer-default'));
    // Both sides check signatures: a request signed with another token must be refused.
    for (const s of subjects) {
      const res = await postWebhook(s.url, smsParams(), {
        signedUrl: `${PUBLIC_URL}${PATH}`,
        token: 'not-the-auth-token',
      });
      if (res.status < 400) throw new Error(`${s.name} accepted a webhook with a bad signature`);
    }
    const generators = new Map(subjects.map((s) => [s, webhookRequests()]));

    const measure = async (subject: Subject, durationS: number, twice = false): Promise<Outcome> => {
      await fake.reset();
      const result = await load({
        url: subject.url,
        headers: HEADERS,
        request: generators.get(subject)!,
        connections: CONNECTIONS,
        durationS,
        twice,
      });
      await subject.drained?.();
      const replies = await fake.settle(twice ? acked(result) / 2 : acked(result));
      return { load: result, replies, rps: result.rps };
    };

    const bareRequests = webhookRequests();
    const bareRun = () =>
      load({
        url: `${bare.url}/bare`,
        headers: HEADERS,
        request: bareRequests,
        connections: CONNECTIONS,
        durationS: DURATION_S,
      });
    if (WARMUP_S > 0) {
      await bareRun();
      for (const s of subjects) await measure(s, WARMUP_S);
    }

    const rounds: { bare: LoadResult; outcomes: Outcome[] }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const b = await bareRun();
      const outcomes: Outcome[] = [];
      for (const s of subjects) outcomes.push(await measure(s, DURATION_S));
      rounds.push({ bare: b, outcomes });
    }
    const median = (index: number) => {
      const sorted = [...rounds].sort(
        (x, y) => x.outcomes[index]!.rps / x.bare.rps - y.outcomes[index]!.rps / y.bare.rps,
      );
      const ratios = sorted.map((r) => r.outcomes[index]!.rps / r.bare.rps);
      const m = sorted[Math.floor((sorted.length - 1) / 2)]!;
      return {
        bare: m.bare,
        outcome: m.outcomes[index]!,
        spread: [ratios[0]!, ratios.at(-1)!] as [number, number],
      };
    };

    const twice: Outcome[] = [];
    for (const s of subjects) twice.push(await measure(s, DURATION_S, true));

    const rows: BenchRow[] = [];
    /** Subject `a`'s sustained replies against subject `index`'s, round by round: the median round. */
    const versus = (index: number, a = 0) => {
      const pairs = rounds
        .map((r) => ({
          sb: sustained(r.outcomes[a]!.load, r.outcomes[a]!.replies),
          other: sustained(r.outcomes[index]!.load, r.outcomes[index]!.replies),
        }))
        .map((p) => ({ ...p, ratio: p.other > 0 ? p.sb / p.other : 0 }))
        .sort((x, y) => x.ratio - y.ratio);
      return {
        median: pairs[Math.floor((pairs.length - 1) / 2)]!,
        spread: [pairs[0]!.ratio, pairs.at(-1)!.ratio] as [number, number],
      };
    };
    const at = (kind: Subject['kind']) => subjects.findIndex((x) => x.kind === kind);
    /** Subject `a`'s sustained replies against subject `b`'s in the same rounds, as a row. */
    const against = (a: number, b: number, target?: number): BenchRow => {
      const v = versus(b, a);
      return {
        ...ratioRow(
          `peer: ${subjects[a]!.name}'s sustained replies/s vs ${subjects[b]!.name}'s, same rounds`,
          'replies/s',
          v.median.sb,
          v.median.other,
          target,
        ),
        ...(rounds.length > 1 ? { spread: v.spread } : {}),
      };
    };
    subjects.forEach((subject, index) => {
      const m = median(index);
      const spread = rounds.length > 1 ? { spread: m.spread } : {};
      const label = `peer: ${subject.name}`;
      rows.push({
        ...ratioRow(`${label} webhooks acked vs bare Express`, 'req/s', m.outcome.rps, m.bare.rps),
        ...spread,
      });
      const replies = sustained(m.outcome.load, m.outcome.replies);
      rows.push(
        subject.kind === 'peer'
          ? { scenario: `${label} sustained replies/s at the fake`, metric: 'replies/s', value: replies }
          : ratioRow(
              `${label} sustained replies/s at the fake vs bare's acks`,
              'replies/s',
              replies,
              m.bare.rps,
              subject.kind === 'floor' ? undefined : 0.5,
            ),
      );
      const unanswered = Math.max(0, acked(m.outcome.load) - m.outcome.replies.distinct);
      const duplicates = twice[index]!.replies.duplicates;
      if (subject.kind === 'peer') {
        // The peer's own losses are what it does, not a failure of this run.
        rows.push({
          scenario: `${label} acked messages never answered`,
          metric: 'messages',
          value: unanswered,
        });
        rows.push({
          scenario: `${label} duplicate replies, every request sent twice`,
          metric: 'replies',
          value: duplicates,
        });
        rows.push(against(at('switchboard'), index, 3));
        if (at('roles') >= 0) rows.push(against(at('roles'), index, 3));
        rows.push(against(at('floor'), index));
      } else {
        rows.push(countRow(`${label} acked messages never answered`, 'count', unanswered));
        rows.push(countRow(`${label} duplicate replies, every request sent twice`, 'count', duplicates));
        if (subject.kind !== 'switchboard') rows.push(against(at('switchboard'), index));
      }
    });
    return rows;
  } finally {
    for (const s of subjects) await s.stop();
    await bare.close();
    await fake.close();
    for (const prefix of [
      'bench-peer-switchboard',
      'bench-peer-roles',
      'bench-peer-floor',
      'bench-peer-thread',
      'bench-peer-default',
    ]) {
      await clear(redisUrl, prefix);
    }
  }
}
