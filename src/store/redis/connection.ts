/**
 * @module Redis connections: URL parsing, the fail-fast client options, and telling "Redis is
 * unreachable" apart from bugs.
 *
 * Accepted URLs (REDIS_URL):
 * - `redis://[[user]:password@]host[:port][/db]` and `rediss://…` (TLS): one server, parsed by ioredis.
 * - `redis-sentinel://[[user]:password@]host[:port][,host[:port]…]/<master name>[/<db>]`: the listed
 *   sentinels (port 26379 by default) are asked for the master `<master name>`; user and password are
 *   the master's (sentinels are assumed to need none).
 * - `redis-cluster://[[user]:password@]host[:port][,host[:port]…]`: a Redis Cluster, discovered from
 *   the listed seed nodes (port 6379 by default).
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { GatewayError } from '../../core/errors.js';

export type RedisClient = Redis | Cluster;

export type ParsedRedisUrl =
  | { mode: 'standalone'; url: string }
  | {
      mode: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      db?: number;
      username?: string;
      password?: string;
    }
  | { mode: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string };

function parseHosts(list: string, defaultPort: number, url: string): { host: string; port: number }[] {
  return list.split(',').map((part) => {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(part.trim());
    if (!m) throw new Error(`Invalid host "${part}" in ${redact(url)}`);
    return { host: (m[1] ?? m[2])!, port: m[3] ? Number(m[3]) : defaultPort };
  });
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Splits a REDIS_URL into what ioredis needs; throws on a malformed URL (the message hides credentials). */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  if (/^rediss?:\/\//.test(url)) return { mode: 'standalone', url };
  const m = /^(redis-sentinel|redis-cluster):\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (!m) throw new Error(`Unsupported Redis URL ${redact(url)}`);
  const [, scheme, auth, hosts, path] = m;
  const credentials: { username?: string; password?: string } = {};
  if (auth) {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? '' : auth.slice(0, colon));
    const password = decodeURIComponent(colon === -1 ? auth : auth.slice(colon + 1));
    if (user) credentials.username = user;
    if (password) credentials.password = password;
  }
  if (scheme === 'redis-cluster')
    return { mode: 'cluster', nodes: parseHosts(hosts!, 6379, url), ...credentials };
  const [name, db] = (path ?? '').split('/');
  if (!name) throw new Error(`Redis Sentinel URL needs the master name as its path: ${redact(url)}`);
  if (db !== undefined && db !== '' && !/^\d+$/.test(db))
    throw new Error(`Invalid database in ${redact(url)}`);
  return {
    mode: 'sentinel',
    sentinels: parseHosts(hosts!, 26379, url),
    name: decodeURIComponent(name),
    ...(db ? { db: Number(db) } : {}),
    ...credentials,
  };
}

export interface ClientTimeouts {
  /** A command that gets no answer within this fails (a half-open connection must not hang callers). */
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

/** Reconnect forever, backing off to at most 2 s, so the store heals once Redis is back. */
function retryDelay(times: number): number {
  return Math.min(times * 100, 2_000);
}

/**
 * Options that make a command fail at once instead of waiting for Redis: no offline queue (commands
 * issued while disconnected are rejected), no retry of a command in flight when the connection drops
 * (its outcome is unknown; callers retry and dedupe absorbs repeats), and a command timeout.
 */
function failFast(t: ClientTimeouts): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: t.commandTimeoutMs,
    connectTimeout: t.connectTimeoutMs,
    retryStrategy: retryDelay,
  };
}

/** How often a Cluster connection reloads its slot table (it also does on redirects). */
const SLOTS_REFRESH_MS = 2_000;

/** A client for a REDIS_URL; it starts connecting at once. */
export function createRedisClient(url: string, t: ClientTimeouts): RedisClient {
  const parsed = parseRedisUrl(url);
  switch (parsed.mode) {
    case 'standalone':
      return new Redis(parsed.url, failFast(t));
    case 'sentinel': {
      const { mode: _mode, ...sentinel } = parsed;
      // failoverDetector: the sentinels' +switch-master makes ioredis drop its connections to the old
      // master at once, instead of writing to it until it is demoted (docs/replication.md).
      return new Redis({ ...failFast(t), ...sentinel, failoverDetector: true });
    }
    case 'cluster': {
      const { enableOfflineQueue: _q, retryStrategy: _r, ...perNode } = failFast(t);
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        clusterRetryStrategy: retryDelay,
        // The slot table also names each master's replicas, which decides how many confirmations a write
        // needs (replication.ts): keep it fresh after a failover even when no redirect comes.
        slotsRefreshInterval: SLOTS_REFRESH_MS,
        // No retrying inside ioredis of a command or pipeline that met a closed connection or a
        // cluster that is down (it re-sends them for seconds, through the failover, to whichever node
        // its table names then): the caller answers 503 and the provider's retry, deduplicated, comes
        // back through a fresh slot table. Redirects (MOVED, ASK) are still followed.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        maxRedirections: 4,
        redisOptions: {
          ...perNode,
          ...(parsed.username ? { username: parsed.username } : {}),
          ...(parsed.password ? { password: parsed.password } : {}),
        },
      };
      return new Cluster(parsed.nodes, options);
    }
  }
}

/**
 * A second connection for one job:
 * - `blocking`: blocking pops (no command timeout: the pop's own timeout applies, plus ioredis's
 *   blocking grace on a dead socket);
 * - `subscriber`: pub/sub;
 * - `pipelined`: many small independent commands from concurrent requests (accepts), auto-pipelined:
 *   those issued in one event-loop turn go out in one write. It keeps the main connection's fail-fast
 *   options. Only for callers that do not wait on each other: ioredis sends the next batch only when
 *   the one before has been answered, which would make a chain of dependent commands wait twice.
 * Blocking and subscriber connections queue commands issued before the connection is ready.
 */
export function duplicateClient(
  client: RedisClient,
  purpose: 'blocking' | 'subscriber' | 'pipelined',
): RedisClient {
  if (purpose === 'pipelined') {
    if (client.isCluster) return (client as Cluster).duplicate([], { enableAutoPipelining: true });
    return (client as Redis).duplicate({ enableAutoPipelining: true });
  }
  const perNode: RedisOptions =
    purpose === 'blocking' ? { commandTimeout: undefined, blockingTimeout: 1_000 } : {};
  if (client.isCluster) {
    const cluster = client as Cluster;
    return cluster.duplicate([], {
      enableOfflineQueue: true,
      redisOptions: { ...cluster.options.redisOptions, ...perNode },
    });
  }
  return (client as Redis).duplicate({ ...perNode, enableOfflineQueue: true });
}

/** Resolves once the client is ready; rejects after `timeoutMs` or when it gives up. */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('Redis connection closed'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('ready', onReady);
    client.on('end', onEnd);
  });
}

/**
 * Server replies that mean "not now" rather than "wrong": loading, failover, cluster trouble, OOM, a
 * write refused by a replica. MOVED and ASK reach the caller only when ioredis could not follow the
 * redirect itself (an auto-pipelined batch whose errors differ, a redirect during a failover): the slot
 * is elsewhere, so try again. Inside a script the same replies come wrapped ("… -READONLY …").
 */
const TRANSIENT =
  'LOADING|BUSY|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|OOM|MOVED|ASK|UNBLOCKED|NOTBUSY|MASTER_LINK_DOWN';
const TRANSIENT_REPLY = new RegExp(`^(${TRANSIENT})\\b`);
const TRANSIENT_IN_SCRIPT = new RegExp(`^ERR .*(?:^|\\W)-?(${TRANSIENT}) `);
/** A reply that says the slot table is out of date. */
const REDIRECT_REPLY = /^(MOVED|ASK|CLUSTERDOWN)\b/;

/** True when `err` says a Cluster's slot table is stale (the caller refreshes it). */
export function isRedirectError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError' && REDIRECT_REPLY.test(err.message);
}

/** ioredis's own errors for a missing or broken connection. */
const CONNECTION_ERROR =
  /Too many Cluster redirections|Stream isn't writeable|Connection is closed|Command timed out|Cluster isn't ready|startup nodes|slots cache|Socket timeout|blocking/i;
const CONNECTION_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'AbortError', 'ClusterAllFailedError']);

/** True when an error means Redis could not be reached or cannot serve right now. */
export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof GatewayError) return false;
  if (err.name === 'ReplyError')
    return TRANSIENT_REPLY.test(err.message) || TRANSIENT_IN_SCRIPT.test(err.message);
  if (CONNECTION_ERROR_NAMES.has(err.name)) return true;
  // Socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT…), not Node's ERR_* programming errors.
  if (/^E(?!RR_)[A-Z]+$/.test(String((err as NodeJS.ErrnoException).code))) return true;
  return CONNECTION_ERROR.test(err.message);
}
