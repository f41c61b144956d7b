/**
 * The Python SDK (sdk/python) against a live gateway: its `unittest` suite runs in Debian's `python3`
 * with `SWITCHBOARD_URL` / `SWITCHBOARD_API_KEY` pointing at a real gateway, on the embedded backend
 * and on Redis. The Python tests subscribe their own receiver (`http.server` on loopback), so the
 * gateway allows private webhook targets. Under `CI=true` a missing `python3` fails; elsewhere the
 * suite is skipped with one line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { hasRedisServer, RedisServer, redisAvailable } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function hasPython(): boolean {
  const probe = spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 9)'], {
    stdio: 'ignore',
  });
  if (probe.status === 0) return true;
  if (process.env.CI === 'true') throw new Error('CI=true but no python3 (3.9+) on PATH');
  console.warn('[skip] Python SDK suite skipped: no python3 (3.9+) on PATH');
  return false;
}

interface Run {
  code: number | null;
  output: string;
}

/**
 * Runs the Python suite without blocking: the gateway answering it lives in this process, so a
 * synchronous spawn would starve it.
 */
function runPythonTests(url: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn('python3', ['-m', 'unittest', 'discover', '-s', 'sdk/python/tests', '-v'], {
      cwd: ROOT,
      env: {
        ...process.env,
        SWITCHBOARD_URL: url,
        SWITCHBOARD_API_KEY: API_KEY,
        PYTHONDONTWRITEBYTECODE: '1',
        PYTHONUNBUFFERED: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    proc.stdout.on('data', (d: Buffer) => chunks.push(d));
    proc.stderr.on('data', (d: Buffer) => chunks.push(d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 40_000);
    proc.once('error', reject);
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

function expectPassed(run: Run): void {
  // Every live test ran: none skipped for want of the gateway's address.
  expect(run.output, run.output).not.toContain('SWITCHBOARD_URL and SWITCHBOARD_API_KEY are not set');
  expect(run.output, run.output).toMatch(/\nOK\b/);
  expect(run.code, run.output).toBe(0);
}

const python = hasPython();
const env = { WEBHOOKS_ALLOW_PRIVATE: 'true' };

describe.skipIf(!python)('Python SDK against a live gateway', () => {
  describe('embedded backend', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startGateway(env);
    });
    afterAll(async () => {
      await gw?.stop();
    });

    it('passes its unittest suite', { timeout: 45_000 }, async () => {
      expectPassed(await runPythonTests(gw.url));
    });
  });

  describe.skipIf(!python || !redisAvailable())('Redis backend', () => {
    let redis: RedisServer | undefined;
    let gw: TestGateway;
    beforeAll(async () => {
      let url = process.env.REDIS_URL;
      if (hasRedisServer()) {
        redis = await RedisServer.start({ fsync: 'everysec' });
        url = redis.url;
      }
      gw = await startGateway({ ...env, REDIS_URL: url, REDIS_KEY_PREFIX: `pysdk-${process.pid}:` });
    });
    afterAll(async () => {
      await gw?.stop();
      await redis?.dispose();
    });

    it('passes its unittest suite', { timeout: 45_000 }, async () => {
      expectPassed(await runPythonTests(gw.url));
    });
  });
});
