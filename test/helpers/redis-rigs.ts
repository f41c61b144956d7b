/**
 * Real replicated Redis for the failover suites, on free loopback ports in temp dirs: a Sentinel rig
 * (1 master, 1 replica, 3 sentinels) and a Cluster rig (3 masters, 3 replicas). Nothing is persisted:
 * what survives a failover is what reached the replica, as in production.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freeClusterPort, freePort } from './redis.js';

const run = promisify(execFile);

/** Whether redis-cli is installed too (the Cluster rig needs it); under CI its absence is a failure. */
export function redisCliAvailable(): boolean {
  try {
    execFileSync('redis-cli', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('CI=true but no redis-cli on PATH');
    console.warn('[skip] failover suites skipped: no redis-cli on PATH');
    return false;
  }
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One redis-server (or sentinel) process. */
export class RedisNode {
  readonly port: number;
  readonly dir: string;
  readonly #proc: ChildProcess;

  private constructor(port: number, dir: string, proc: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#proc = proc;
  }

  static async start(args: string[], options: { sentinel?: string[] } = {}): Promise<RedisNode> {
    // A Cluster node also listens on port + 10000 (its bus).
    const port = args.includes('--cluster-enabled') ? await freeClusterPort() : await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sb-rig-'));
    let argv = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...args];
    if (options.sentinel) {
      const file = join(dir, 'sentinel.conf');
      writeFileSync(file, `port ${port}\nbind 127.0.0.1\ndir ${dir}\n${options.sentinel.join('\n')}\n`);
      argv = [file, '--sentinel'];
    }
    const proc = spawn('redis-server', [...argv, '--loglevel', 'warning'], { stdio: 'ignore' });
    const node = new RedisNode(port, dir, proc);
    await until(async () => (await node.command('PING')) === 'PONG', 10_000, `redis on ${port}`);
    return node;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** One command on a short-lived connection. */
  async command(...args: (string | number)[]): Promise<unknown> {
    const c = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return await c.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      c.disconnect();
    }
  }

  pause(): void {
    this.#proc.kill('SIGSTOP');
  }

  resume(): void {
    this.#proc.kill('SIGCONT');
  }

  async dispose(): Promise<void> {
    if (this.#proc.exitCode === null) {
      this.#proc.kill('SIGCONT');
      await new Promise<void>((resolve) => {
        this.#proc.once('exit', () => resolve());
        this.#proc.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class SentinelRig {
  static readonly NAME = 'sbmaster';
  readonly servers: RedisNode[];
  readonly sentinels: RedisNode[];

  private constructor(servers: RedisNode[], sentinels: RedisNode[]) {
    this.servers = servers;
    this.sentinels = sentinels;
  }

  static async start(): Promise<SentinelRig> {
    const master = await RedisNode.start([]);
    const replica = await RedisNode.start(['--replicaof', '127.0.0.1', String(master.port)]);
    const conf = [
      `sentinel monitor ${SentinelRig.NAME} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${SentinelRig.NAME} 1000`,
      `sentinel failover-timeout ${SentinelRig.NAME} 10000`,
    ];
    const sentinels = await Promise.all([0, 1, 2].map(() => RedisNode.start([], { sentinel: conf })));
    const rig = new SentinelRig([master, replica], sentinels);
    // Every sentinel must know the replica (it is what SENTINEL FAILOVER promotes).
    await until(
      async () => {
        for (const s of sentinels) {
          const replicas = (await s.command('SENTINEL', 'REPLICAS', SentinelRig.NAME)) as string[][];
          const ok = replicas.some((r) => {
            const flags = r[r.indexOf('flags') + 1] ?? '';
            return flags === 'slave' && r[r.indexOf('master-link-status') + 1] === 'ok';
          });
          if (!ok) return false;
        }
        return true;
      },
      20_000,
      'sentinels to see the replica',
    );
    return rig;
  }

  get url(): string {
    return `redis-sentinel://${this.sentinels.map((s) => s.address).join(',')}/${SentinelRig.NAME}`;
  }

  async masterPort(): Promise<number> {
    const [, port] = (await this.sentinels[0]!.command(
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      SentinelRig.NAME,
    )) as string[];
    return Number(port);
  }

  server(port: number): RedisNode {
    const node = this.servers.find((n) => n.port === port);
    if (!node) throw new Error(`no server on ${port}`);
    return node;
  }

  /** Forces a failover and resolves once every sentinel names the former replica as master. */
  async failover(): Promise<void> {
    const before = await this.masterPort();
    await this.sentinels[0]!.command('SENTINEL', 'FAILOVER', SentinelRig.NAME);
    await this.#switchedFrom(before);
  }

  /**
   * Pauses the master (SIGSTOP) until the sentinels have promoted its replica, then resumes it
   * (SIGCONT): the old master wakes up still believing it is the master, with whatever it took in
   * before the pause that had not reached the replica, until the sentinels turn it into a replica.
   */
  async pauseMaster(): Promise<void> {
    const before = await this.masterPort();
    const node = this.server(before);
    node.pause();
    try {
      await this.#switchedFrom(before);
    } finally {
      node.resume();
    }
  }

  /**
   * Waits until the topology is whole again: the master the sentinels name has the other server as an
   * online replica, and every sentinel sees that replica with a working link. With `rejoin`, a former
   * master still acting as one is made a replica at once, as the sentinels would do some 10-20 s later.
   */
  async settled(options: { rejoin?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (options.rejoin) {
      const port = await this.masterPort();
      for (const other of this.servers.filter((n) => n.port !== port)) {
        const role = (await other.command('ROLE')) as unknown[];
        if (role[0] === 'master') await other.command('REPLICAOF', '127.0.0.1', port);
      }
    }
    const timeoutMs = options.timeoutMs ?? 40_000;
    await until(
      async () => {
        const port = await this.masterPort();
        const info = String(await this.server(port).command('INFO', 'replication'));
        if (!/^role:master/m.test(info) || !/^slave0:.*state=online/m.test(info)) return false;
        for (const s of this.sentinels) {
          const [, named] = (await s.command(
            'SENTINEL',
            'GET-MASTER-ADDR-BY-NAME',
            SentinelRig.NAME,
          )) as string[];
          if (Number(named) !== port) return false;
          const replicas = (await s.command('SENTINEL', 'REPLICAS', SentinelRig.NAME)) as string[][];
          const ok = replicas.some((r) => {
            const flags = r[r.indexOf('flags') + 1] ?? '';
            return flags === 'slave' && r[r.indexOf('master-link-status') + 1] === 'ok';
          });
          if (!ok) return false;
        }
        return true;
      },
      timeoutMs,
      'the sentinel topology to settle',
    );
  }

  async #switchedFrom(before: number): Promise<void> {
    await until(
      async () => {
        for (const s of this.sentinels) {
          const [, port] = (await s.command(
            'SENTINEL',
            'GET-MASTER-ADDR-BY-NAME',
            SentinelRig.NAME,
          )) as string[];
          if (Number(port) === before) return false;
        }
        return true;
      },
      30_000,
      'the failover',
    );
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((n) => n.dispose()));
  }
}

interface ClusterNodeInfo {
  id: string;
  address: string;
  master: boolean;
  masterId: string | null;
  slots: boolean;
}

export class ClusterRig {
  readonly nodes: RedisNode[];

  private constructor(nodes: RedisNode[]) {
    this.nodes = nodes;
  }

  /** Six nodes, three masters with one replica each; `nodeTimeoutMs` is how soon a dead master is replaced. */
  static async start(nodeTimeoutMs = 1_000): Promise<ClusterRig> {
    const nodes = await Promise.all(
      Array.from({ length: 6 }, () =>
        RedisNode.start([
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
        ]),
      ),
    );
    const rig = new ClusterRig(nodes);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => n.address),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await rig.settled();
    return rig;
  }

  get url(): string {
    return `redis-cluster://${this.nodes.map((n) => n.address).join(',')}`;
  }

  /** CLUSTER NODES as one node sees it. */
  async topology(via: RedisNode): Promise<ClusterNodeInfo[]> {
    const text = String(await via.command('CLUSTER', 'NODES'));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const f = line.split(' ');
        return {
          id: f[0]!,
          address: f[1]!.split('@')[0]!,
          master: f[2]!.includes('master'),
          masterId: f[3] === '-' ? null : f[3]!,
          slots: f.length > 8,
        };
      });
  }

  /** Waits until every node reports a healthy cluster whose three masters each have an in-sync replica. */
  async settled(timeoutMs = 30_000): Promise<void> {
    await until(
      async () => {
        for (const n of this.nodes) {
          const info = String(await n.command('CLUSTER', 'INFO'));
          if (!info.includes('cluster_state:ok')) return false;
          const view = String(await n.command('CLUSTER', 'NODES'));
          if (/fail/.test(view)) return false;
        }
        for (const n of this.nodes) {
          const role = (await n.command('ROLE')) as unknown[];
          if (role[0] === 'slave' && role[3] !== 'connected') return false;
        }
        const t = await this.topology(this.nodes[0]!);
        const masters = t.filter((x) => x.master && x.slots);
        return masters.length === 3 && masters.every((m) => t.some((r) => r.masterId === m.id));
      },
      timeoutMs,
      'the cluster to settle',
    );
  }

  node(address: string): RedisNode {
    const n = this.nodes.find((x) => x.address === address);
    if (!n) throw new Error(`no node ${address}`);
    return n;
  }

  /** The master serving `slot` (a healthy node's view) and its replica. */
  async pair(slot = 0): Promise<{ master: RedisNode; replica: RedisNode }> {
    const ranges = (await this.nodes[0]!.command('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const range = ranges.find(([from, to]) => from <= slot && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    const master = this.node(`${range[2][0]}:${range[2][1]}`);
    const t = await this.topology(master);
    const me = t.find((x) => x.address === master.address)!;
    const r = t.find((x) => x.masterId === me.id)!;
    return { master, replica: this.node(r.address) };
  }

  /**
   * CLUSTER FAILOVER FORCE on the replica of the master serving `slot`: the replica takes over without
   * waiting for its master, which keeps taking writes until it learns it lost its slots. Resolves once
   * the replica is a master and the cluster has settled again.
   */
  async forceFailover(slot = 0): Promise<void> {
    const { replica } = await this.pair(slot);
    await replica.command('CLUSTER', 'FAILOVER', 'FORCE');
    await until(
      async () => ((await replica.command('ROLE')) as unknown[])[0] === 'master',
      30_000,
      'the promotion',
    );
  }

  /**
   * Pauses the master serving `slot` (SIGSTOP) until the cluster has promoted its replica, then
   * resumes it (SIGCONT); it rejoins as a replica of the new master.
   */
  async pauseMaster(slot = 0): Promise<void> {
    const { master, replica } = await this.pair(slot);
    master.pause();
    try {
      await until(
        async () => ((await replica.command('ROLE')) as unknown[])[0] === 'master',
        30_000,
        'the promotion',
      );
    } finally {
      master.resume();
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }
}

export interface LoadReport {
  /** Messages sent (each to every gateway), and those some send got a 2xx for. */
  sent: number;
  acknowledged: number;
  /** Messages no gateway acknowledged before the deadline. */
  unanswered: number;
  /** Acknowledged messages the bot never saw (gone from the store, or never processed). */
  lost: string[];
  /** Messages the bot saw more than once, and seqs the bot saw for two different messages. */
  duplicated: string[];
  /** Conversations where the bot saw a seq not above the one before. */
  reordered: string[];
  /** Statuses other than 2xx that sends got, by status (503s are expected during a failover). */
  statuses: Record<string, number>;
  /** 503 answers without a Retry-After header. */
  without503RetryAfter: number;
  /** How long the sends took, and then the processing of what was acknowledged (ms). */
  sendMs: number;
  drainMs: number;
}

interface BotCallLike {
  conversationId: string;
  messageId: string;
  seq: number;
  at: number;
  text?: string;
}

type Gateway = { api(path: string, init?: { method?: string; json?: unknown }): Promise<Response> };

/**
 * The provider's side of a failover: `conversations` sending at least `messages` each, one after
 * another, each message sent to every gateway at once and retried (as providers do, after Retry-After,
 * shortened for the test) until acknowledged; `during` (the fault) starts once a third of those are
 * done, and each conversation goes on until two more of its messages were sent after the fault. Then waits until every acknowledged message is finished or gone from the store (a state, not a
 * time) and counts, at the bot, what went wrong.
 */
export async function failoverLoad(options: {
  gateways: Gateway[];
  bot: { calls: BotCallLike[] };
  conversations: number;
  messages: number;
  during: () => Promise<void>;
  /** How long the sends and then the processing may take, each. */
  deadlineMs: number;
}): Promise<LoadReport> {
  const { gateways, bot } = options;
  const statuses: Record<string, number> = {};
  let without503RetryAfter = 0;
  const sendDeadline = Date.now() + options.deadlineMs;
  /** Retries one request until a 2xx (or the deadline), counting what it got on the way. */
  const untilOk = async (g: Gateway, path: string, json: unknown): Promise<unknown> => {
    while (Date.now() < sendDeadline) {
      let pause = 100;
      try {
        const res = await g.api(path, { method: 'POST', json });
        if (res.ok) return await res.json();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const retryAfter = res.headers.get('retry-after');
        if (res.status === 503 && !retryAfter) without503RetryAfter++;
        if (retryAfter) pause = Math.min(300, Number(retryAfter) * 1000);
        await res.body?.cancel();
      } catch {
        statuses.network = (statuses.network ?? 0) + 1;
      }
      await new Promise((r) => setTimeout(r, pause));
    }
    return null;
  };
  const ids: string[] = [];
  for (let c = 0; c < options.conversations; c++) {
    const body = (await untilOk(gateways[c % gateways.length]!, '/v1/sessions', {})) as {
      conversationId: string;
    };
    ids.push(body.conversationId);
  }
  const firstCall = bot.calls.length;
  const t0 = Date.now();
  /** Acknowledged message id → conversation id and text. */
  const acked = new Map<string, { conversationId: string; text: string }>();
  const total = options.conversations * options.messages;
  let sent = 0;
  let unanswered = 0;
  let fired: Promise<void> | null = null;
  let over = false;
  const run = Date.now().toString(36);
  await Promise.all(
    ids.map(async (conversationId, c) => {
      // At least `messages` each, and on until two more each after the fault is over, so the load
      // spans the whole failover and what follows it.
      let after = 0;
      for (let m = 0; m < options.messages || !over || after < 2; m++) {
        if (over) after++;
        const text = `${run}-c${c}-m${m}`;
        const json = { conversationId, text, clientMessageId: text, wait: 0 };
        const answers = await Promise.all(gateways.map((g) => untilOk(g, '/v1/messages', json)));
        if (answers.every((a) => !a)) unanswered++;
        for (const a of answers as ({ message: { id: string } } | null)[]) {
          if (a) acked.set(a.message.id, { conversationId, text });
        }
        if (++sent === Math.floor(total / 3)) {
          fired = options.during().finally(() => {
            over = true;
          });
        }
        if (Date.now() > sendDeadline) break;
      }
    }),
  );
  await fired;
  // Every acknowledged message ends up processed, or is gone from the store (lost): ask the store.
  const t1 = Date.now();
  const finishDeadline = Date.now() + options.deadlineMs;
  const open = new Set(acked.keys());
  const gone = new Set<string>();
  while (open.size > 0 && Date.now() < finishDeadline) {
    await Promise.all(
      [...open].map(async (id) => {
        const { conversationId } = acked.get(id)!;
        try {
          const res = await gateways[0]!.api(`/v1/conversations/${conversationId}/messages/${id}`);
          if (res.status === 404) {
            open.delete(id);
            gone.add(id);
          }
          if (!res.ok) return void (await res.body?.cancel());
          const m = (await res.json()) as { processing?: { state?: string } };
          if (m.processing?.state && !['queued', 'processing'].includes(m.processing.state)) open.delete(id);
        } catch {
          // the gateway is busy; ask again
        }
      }),
    );
    if (open.size > 0) await new Promise((r) => setTimeout(r, 250));
  }
  const calls = bot.calls.slice(firstCall);
  const seen = new Map<string, number>();
  for (const call of calls) seen.set(call.messageId, (seen.get(call.messageId) ?? 0) + 1);
  const lost = [...acked]
    .filter(([id]) => !seen.has(id) || gone.has(id))
    .map(([id, { text }]) => `${text} (${id}${gone.has(id) ? ', gone from the store' : ''})`);
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  // Two ids acknowledged for one message (one provider message stored twice) is a duplicate too.
  const texts = new Map<string, string>();
  for (const [id, { text }] of acked) {
    if (texts.has(text) && texts.get(text) !== id) duplicated.push(`${text} stored twice`);
    texts.set(text, id);
  }
  const reordered: string[] = [];
  const byConversation = new Map<string, BotCallLike[]>();
  for (const call of [...calls].sort((x, y) => x.at - y.at)) {
    byConversation.set(call.conversationId, [...(byConversation.get(call.conversationId) ?? []), call]);
  }
  for (const [conversationId, list] of byConversation) {
    const bySeq = new Map<number, string>();
    for (const call of list) {
      const other = bySeq.get(call.seq);
      if (other !== undefined && other !== call.messageId) duplicated.push(`${conversationId}#${call.seq}`);
      bySeq.set(call.seq, call.messageId);
    }
    if (list.some((call, i) => i > 0 && call.seq <= list[i - 1]!.seq)) {
      reordered.push(`${conversationId}: ${list.map((call) => call.seq).join(',')}`);
    }
  }
  return {
    sent,
    unanswered,
    acknowledged: acked.size,
    lost,
    duplicated,
    reordered,
    statuses,
    without503RetryAfter,
    sendMs: t1 - t0,
    drainMs: Date.now() - t1,
  };
}
