/**
 * A private redis-server per test file, on a free loopback port (SPEC §1). Tests can stop and restart
 * it to simulate Redis failures. When no redis-server is on the PATH and REDIS_URL is unset, suites are
 * skipped with one clear line, except under CI=true, where that is a failure.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether Redis-backed suites can run; logs the skip reason once, throws under CI. */
export function redisAvailable(): boolean {
  if (hasRedisServer() || process.env.REDIS_URL) return true;
  if (process.env.CI === 'true') throw new Error('CI=true but no redis-server on PATH and no REDIS_URL');
  console.warn('[skip] Redis suites skipped: no redis-server on PATH and REDIS_URL unset');
  return false;
}

/**
 * A port that was free a moment ago, for a server a test starts next. Picked at random below the
 * kernel's ephemeral range (32768 and up on Linux), where the OS never hands out source ports for
 * outgoing connections: a port the OS chose with `listen(0)` is an ephemeral one, and between this
 * check and the server's own listen an outgoing connection (to Redis, a fake) could take it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found in 20000-31999');
}

/**
 * A free port for a Redis Cluster node, whose cluster bus listens on the port + 10000: both are free
 * and below the ephemeral range (a port from {@link freePort} could put the bus among the source ports
 * of outgoing connections, and the node then fails to start when one holds it).
 */
export async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if ((await canListen(port)) && (await canListen(port + 10_000))) return port;
  }
  throw new Error('no free port pair found in 10000-19999 (+10000)');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  #proc: ChildProcess | null = null;
  readonly #fsync: 'always' | 'everysec';

  private constructor(port: number, fsync: 'always' | 'everysec') {
    this.#fsync = fsync;
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'sb-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a private redis-server with the append-only file on. `fsync` is `always` by default: the
   * restart tests need every acknowledged write on disk. The benchmarks pass `everysec`, Redis's
   * default for the AOF and the usual production choice.
   */
  static async start(options: { fsync?: 'always' | 'everysec' } = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options.fsync ?? 'always');
    await server.restart();
    return server;
  }

  /** (Re)starts the server on the same port; with `persist` it reloads the AOF written before the stop. */
  async restart(): Promise<void> {
    if (this.#proc) throw new Error('redis-server already running');
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        this.#fsync,
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#proc = proc;
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const tryConnect = () => {
        const c = connect(this.port, '127.0.0.1');
        c.once('connect', () => {
          c.end();
          resolve();
        });
        c.once('error', () => {
          c.destroy();
          if (Date.now() > deadline) reject(new Error('redis-server did not start'));
          else setTimeout(tryConnect, 50);
        });
      };
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
      tryConnect();
    });
  }

  /** Stops the server (SIGTERM, or SIGKILL with `kill`) and waits for it to exit. */
  async stop(kill = false): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#proc = null;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(kill ? 'SIGKILL' : 'SIGTERM');
    });
  }

  async dispose(): Promise<void> {
    await this.stop(true);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
