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
import { freePort } from './redis.js';

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
    const port = await freePort();
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

  /** Forces a failover and resolves once every sentinel names the former replica as master. */
  async failover(): Promise<void> {
    const before = await this.masterPort();
    await this.sentinels[0]!.command('SENTINEL', 'FAILOVER', SentinelRig.NAME);
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
      20_000,
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

  /** A master with slots and its replica. */
  async pair(): Promise<{ master: RedisNode; replica: RedisNode }> {
    const t = await this.topology(this.nodes[0]!);
    const m = t.find((x) => x.master && x.slots)!;
    const r = t.find((x) => x.masterId === m.id)!;
    return { master: this.node(m.address), replica: this.node(r.address) };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }
}

export interface LoadReport {
  /** Messages some send got a 2xx for. */
  acknowledged: number;
  /** Acknowledged messages the bot never saw. */
  lost: string[];
  /** Messages the bot saw more than once, and seqs the bot saw for two different messages. */
  duplicated: string[];
  /** Conversations where the bot saw a seq not above the one before. */
  reordered: string[];
  /** Statuses other than 202 that sends got, by status (503s are expected during a failover). */
  statuses: Record<string, number>;
  /** 503 answers without a Retry-After header. */
  without503RetryAfter: number;
}

interface BotCallLike {
  conversationId: string;
  messageId: string;
  seq: number;
  at: number;
  text?: string;
}

/**
 * The provider's side of a failover: `conversations` × `messages`, each message sent to every gateway
 * at once and retried (as providers do) until one copy is acknowledged, one conversation's messages in
 * order; `during` runs once a third of the sends are done. Then waits for the bot and counts what went
 * wrong.
 */
export async function failoverLoad(options: {
  gateways: { api(path: string, init?: { method?: string; json?: unknown }): Promise<Response> }[];
  bot: { calls: BotCallLike[] };
  conversations: number;
  messages: number;
  during: () => Promise<void>;
  deadlineMs: number;
}): Promise<LoadReport> {
  const { gateways, bot } = options;
  const statuses: Record<string, number> = {};
  let without503RetryAfter = 0;
  const deadline = Date.now() + options.deadlineMs;
  /** Retries one request until a 2xx (or the deadline), counting what it got on the way. */
  const untilOk = async (g: (typeof gateways)[number], path: string, json: unknown): Promise<unknown> => {
    while (Date.now() < deadline) {
      try {
        const res = await g.api(path, { method: 'POST', json });
        if (res.ok) return await res.json();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status === 503 && !res.headers.get('retry-after')) without503RetryAfter++;
        await res.body?.cancel();
      } catch {
        statuses.network = (statuses.network ?? 0) + 1;
      }
      await new Promise((r) => setTimeout(r, 100));
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
  bot.calls.length = 0;
  const acked = new Map<string, string>();
  const total = options.conversations * options.messages;
  let sent = 0;
  let fired: Promise<void> | null = null;
  await Promise.all(
    ids.map(async (conversationId, c) => {
      for (let m = 0; m < options.messages; m++) {
        const text = `c${c}-m${m}`;
        const json = { conversationId, text, clientMessageId: text, wait: 0 };
        const answers = await Promise.all(gateways.map((g) => untilOk(g, '/v1/messages', json)));
        const ok = answers.find((a) => a) as { message: { id: string } } | undefined;
        if (ok) acked.set(ok.message.id, text);
        if (++sent === Math.floor(total / 3)) fired = options.during();
      }
    }),
  );
  await fired;
  // Every acknowledged message reaches the bot (redelivery after a lease takes LEASE_MS).
  await until(
    async () => [...acked.keys()].every((id) => bot.calls.some((call) => call.messageId === id)),
    Math.max(1_000, deadline - Date.now()),
    'the bot to see every acknowledged message',
  ).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 500));
  const seen = new Map<string, number>();
  for (const call of bot.calls) seen.set(call.messageId, (seen.get(call.messageId) ?? 0) + 1);
  const lost = [...acked].filter(([id]) => !seen.has(id)).map(([, text]) => text);
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const reordered: string[] = [];
  const byConversation = new Map<string, BotCallLike[]>();
  for (const call of [...bot.calls].sort((x, y) => x.at - y.at)) {
    byConversation.set(call.conversationId, [...(byConversation.get(call.conversationId) ?? []), call]);
  }
  for (const [conversationId, calls] of byConversation) {
    const bySeq = new Map<number, string>();
    for (const call of calls) {
      const other = bySeq.get(call.seq);
      if (other !== undefined && other !== call.messageId) duplicated.push(`${conversationId}#${call.seq}`);
      bySeq.set(call.seq, call.messageId);
    }
    if (calls.some((call, i) => i > 0 && call.seq <= calls[i - 1]!.seq)) {
      reordered.push(`${conversationId}: ${calls.map((call) => call.seq).join(',')}`);
    }
  }
  return { acknowledged: acked.size, lost, duplicated, reordered, statuses, without503RetryAfter };
}
