/**
 * @module SPEC §4.7: every atomic multi-key operation keeps its keys in one Cluster hash slot.
 * Three layers: the key layout itself; every script call the store really sends, captured with
 * MONITOR and checked slot by slot; and the whole Store contract run against a real (single-node)
 * Redis Cluster, where a cross-slot script fails with CROSSSLOT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLayout } from '../../src/store/redis/keys.js';
import { SCRIPTS, type ScriptName, type ScriptSource } from '../../src/store/redis/scripts.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { DEFAULT_MAX_PENDING, storeContract } from '../contract/store.contract.js';
import { freeClusterPort, hasRedisServer, RedisServer } from '../helpers/redis.js';
import { acceptInput } from '../helpers/store.js';

/** True when all keys hash to one slot (what Cluster demands of one script call). */
function sameSlot(keys: readonly string[]): boolean {
  return calculateSlot.generateMulti([...keys]) !== -1;
}

describe('key layout', () => {
  it('puts every key of a conversation in the slot of its partition', () => {
    const layout = new KeyLayout('sb', 16);
    const partitions = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const id = `conv_${ulid()}`;
      const k = layout.conversation(id);
      partitions.add(k.partition);
      const keys = [
        k.conv,
        k.msgs,
        k.seqidx,
        k.queue,
        k.sched,
        k.lease,
        k.pending,
        layout.dedupe(id, 'twilio:{SM}1'),
      ];
      expect(sameSlot(keys), keys.join(' ')).toBe(true);
      expect(calculateSlot(k.conv)).toBe(calculateSlot(layout.sched(k.partition)));
    }
    expect(partitions.size).toBe(16);
  });

  it('tells conversations of different partitions apart (the check catches a cross-slot call)', () => {
    const layout = new KeyLayout('sb', 16);
    const a = layout.conversation('conv_a');
    let other = 'conv_b';
    while (layout.partitionOf(other) === a.partition) other += 'x';
    const b = layout.conversation(other);
    expect(sameSlot([a.conv, a.msgs])).toBe(true);
    expect(sameSlot([a.conv, b.msgs])).toBe(false);
    expect(sameSlot([a.sched, layout.index])).toBe(false);
  });
});

const byDigest = new Map(SCRIPTS.map((s) => [createHash('sha1').update(s.lua).digest('hex'), s]));

/**
 * The script a captured EVALSHA or EVAL runs. An EVAL's body holds its file's header line
 * (`-- <name>-<keys>: ...`), after the shared Lua put in front of some scripts.
 */
function scriptOf(args: string[]): ScriptSource | undefined {
  const command = args[0]!.toLowerCase();
  if (command === 'evalsha') return byDigest.get(args[1]!);
  if (command === 'eval')
    return SCRIPTS.find((s) => args[1]!.includes(`-- ${s.file.replace(/\.lua$/, '')}:`));
  return undefined;
}

describe.skipIf(!hasRedisServer())('script calls the store sends', () => {
  let server: RedisServer;
  let client: Redis;
  let monitor: Redis;
  let admin: Redis;
  /** Commands as clients sent them; commands run inside scripts are left out. */
  const seen: string[][] = [];
  /** Commands run inside scripts, each with the index in `seen` of the script call that ran it. */
  const inScripts: { call: number; args: string[] }[] = [];

  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.url);
    admin = new Redis(server.url);
    // Both connected (their ready checks sent) before MONITOR starts: a command from another client
    // that reaches the monitor in the same read as MONITOR's own OK finds ioredis not yet in monitor
    // mode, and it fails the connection with a command queue state error.
    await Promise.all([client.ping(), admin.ping()]);
    monitor = await client.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(args);
      else inScripts.push({ call: seen.length - 1, args });
    });
  });

  afterAll(async () => {
    monitor?.disconnect();
    client?.disconnect();
    admin?.disconnect();
    await server.dispose();
  });

  /** Sends a marker through another connection and waits until MONITOR has shown it. */
  async function mark(label: string): Promise<number> {
    await admin.echo(label);
    await expect
      .poll(() => seen.findIndex((a) => a[0]?.toLowerCase() === 'echo' && a[1] === label))
      .toBeGreaterThan(-1);
    return seen.findIndex((a) => a[0]?.toLowerCase() === 'echo' && a[1] === label);
  }

  it('keeps the keys of every script call in one slot, and accept is one script call', async () => {
    const store = await RedisStore.connect(server.url, {
      keyPrefix: 'slots',
      partitions: 16,
      maxPending: 32,
      retryAfterS: 5,
    });
    const start = await mark('start');
    try {
      const { conversation: c } = await store.resolveConversation({ channel: 'sms', channelRef: '+1:+2' });
      const accept0 = await mark('accept:begin');
      const first = await store.accept(acceptInput(c.id, 'm1'));
      const accept1 = await mark('accept:end');
      await store.accept(acceptInput(c.id, 'm1', { notify: true }));
      await store.accept(acceptInput(c.id, 'm2'));
      await expect(store.accept(acceptInput(c.id, 'm3'))).rejects.toThrow();
      const reply = await store.appendMessage(c.id, { type: 'bot', text: 'out', direction: 'outbound' });
      await store.updateMessage(c.id, first.message.id, { meta: { a: 1 } });
      await store.updateDelivery(c.id, reply!.id, 'sent');
      await store.updateConversation(c.id, { meta: { b: 2 }, sessionState: { s: 1 } });
      await store.claimSend(c.id, reply!.id);
      const [claim] = await store.claim('w1', 5, 30_000);
      await store.heartbeat(claim!, 30_000);
      const [recorded] = await store.recordReplies(c.id, claim!.message.id, [
        { type: 'bot', text: 'r', direction: 'outbound' },
      ]);
      await store.updateDelivery(c.id, recorded!.id, 'sent', undefined, {
        externalId: 'x1',
        known: recorded,
      });
      // Completing with a continuation leases the next message inside the same script.
      const { next } = await store.complete(
        claim!,
        { state: 'done', attempts: 1 },
        { owner: 'w1', leaseMs: 30_000 },
      );
      expect(next).not.toBeNull();
      await store.complete(next!);
      await store.accept(acceptInput(c.id, 'm4'));
      const [again] = await store.claim('w1', 5, 30_000);
      await store.release(again!);
      await store.deleteMessage(c.id, reply!.id);
      await store.waitForWork(50);
      await store.listConversations({ take: 5, order: 'asc' });
      await store.listMessages(c.id, { take: 5, order: 'desc' });
      await store.messagesAfter(c.id, 0, 5);
      await store.pendingCount();
      await store.kv.setIfAbsent('k', 'v', 10);
      await store.bus.publish('topic', 'x');
      await store.deleteConversation(c.id);
      const end = await mark('end');

      const called = new Set<ScriptName>();
      const plain = new Set<string>();
      for (const args of seen.slice(start + 1, end)) {
        const command = args[0]!.toLowerCase();
        if (command !== 'evalsha' && command !== 'eval') {
          plain.add(command);
          continue;
        }
        const script = scriptOf(args);
        expect(script, `unknown script ${args[1]?.slice(0, 40)}`).toBeDefined();
        const keys = args.slice(3, 3 + Number(args[2]));
        expect(keys).toHaveLength(script!.numberOfKeys);
        expect(sameSlot(keys), `${script!.name}: ${keys.join(' ')}`).toBe(true);
        called.add(script!.name);
      }
      expect([...called].sort()).toEqual(SCRIPTS.map((s) => s.name).sort());
      // Keys a script builds itself (the claim script's conversation keys) are in its slot too; every
      // command our scripts run takes its key first, except TIME and INFO (the seq fence's epoch).
      let built = 0;
      for (const { call, args } of inScripts) {
        if (call <= start || call >= end || ['time', 'info'].includes(args[0]!.toLowerCase())) continue;
        const script = seen[call]!;
        const keys = script.slice(3, 3 + Number(script[2]));
        expect(sameSlot([...keys, args[1]!]), `${scriptOf(script)?.name}: ${args.join(' ')}`).toBe(true);
        if (!keys.includes(args[1]!)) built++;
      }
      expect(built).toBeGreaterThan(0);
      // Everything else the store sends takes a single key (or none).
      const singleKey = [
        'get',
        'set',
        'zadd',
        'zrem',
        'zrangebylex',
        'zrevrangebylex',
        'zrangebyscore',
        'zrevrangebyscore',
      ];
      const rest = ['hgetall', 'hmget', 'blpop', 'publish', 'ping', 'info', 'client', 'echo'];
      for (const command of plain) expect([...singleKey, ...rest]).toContain(command);

      const acceptCalls = seen.slice(accept0 + 1, accept1).map((a) => scriptOf(a)?.name ?? a[0]);
      expect(acceptCalls.filter((n) => n !== 'ring')).toEqual(['accept']);
    } finally {
      await store.close();
    }
  });
});

/** Polls until `check` resolves true; a hook-safe stand-in for expect.poll. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the cluster node');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A one-node Redis Cluster owning all 16384 slots: enough to make Redis enforce CROSSSLOT. */
class ClusterNode {
  readonly port: number;
  readonly dir = mkdtempSync(join(tmpdir(), 'sb-cluster-'));
  #proc: ChildProcess | null = null;

  private constructor(port: number) {
    this.port = port;
  }

  static async start(): Promise<ClusterNode> {
    const node = new ClusterNode(await freeClusterPort());
    node.#proc = spawn(
      'redis-server',
      [
        '--port',
        String(node.port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-announce-ip',
        '127.0.0.1',
        '--cluster-config-file',
        join(node.dir, 'nodes.conf'),
        '--dir',
        node.dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    const admin = new Redis({ port: node.port, host: '127.0.0.1', retryStrategy: () => 50 });
    // Connections are refused until the node listens; the poll below waits that out.
    admin.on('error', () => {});
    try {
      await until(async () => (await admin.ping()) === 'PONG', 10_000);
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      await until(
        async () => String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
        10_000,
      );
    } catch (err) {
      await node.dispose();
      throw err;
    } finally {
      admin.disconnect();
    }
    return node;
  }

  get url(): string {
    return `redis-cluster://127.0.0.1:${this.port}`;
  }

  async dispose(): Promise<void> {
    const proc = this.#proc;
    if (proc && proc.exitCode === null) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe.skipIf(!hasRedisServer())('on a Redis Cluster', () => {
  let node: ClusterNode;

  beforeAll(async () => {
    node = await ClusterNode.start();
  });

  afterAll(async () => {
    await node?.dispose();
  });

  it('enforces CROSSSLOT, so the contract below would catch a cross-slot script', async () => {
    const probe = new Redis(node.port, '127.0.0.1');
    try {
      await expect(probe.eval("return redis.call('GET', KEYS[1])", 2, '{a}x', '{b}y')).rejects.toThrow(
        /CROSSSLOT/,
      );
    } finally {
      probe.disconnect();
    }
  });

  storeContract('redis cluster', async (options) => {
    const store = await RedisStore.connect(node.url, {
      keyPrefix: `c-${randomUUID().slice(0, 8)}`,
      partitions: options?.maxPending === undefined ? 8 : 1,
      maxPending: options?.maxPending ?? DEFAULT_MAX_PENDING,
      retryAfterS: 5,
    });
    return { store, cleanup: () => store.close() };
  });
});
