/**
 * Boots real gateways for tests: in-process (`startGateway`, logs captured) or as a separate OS
 * process (`spawnGateway`, for cross-process, SIGKILL and SIGTERM tests).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import { API_KEY, apiFetch } from './http.js';
import { LogCapture } from './logs.js';
import { freePort } from './redis.js';

export { API_KEY, apiFetch, LogCapture };

export interface TestGateway {
  url: string;
  gateway: Gateway;
  logs: LogCapture;
  /** fetch against the gateway's /v1 API with the test API key. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  stop(): Promise<void>;
}

export async function startGateway(
  env: Record<string, string | undefined> = {},
  opts: GatewayOptions = {},
  /** Non-setting dependencies for a channel's config (e.g. the email channel's DNS `resolver`). */
  channelDeps: Record<string, Record<string, unknown>> = {},
): Promise<TestGateway> {
  const port = await freePort();
  const loaded = loadConfig(
    // One key sends every request of a test, at rates no client would: the per-key limit (default
    // 600 a minute) is off unless a test sets it (test/integration/limits.test.ts does).
    {
      API_KEYS: API_KEY,
      LOG_LEVEL: 'info',
      PORT: String(port),
      HOST: '127.0.0.1',
      RATE_LIMIT_PER_MIN: '0',
      // The typing indicator at once, so a test of a fast bot sees it; typing tests set their own.
      TYPING_AFTER_MS: '0',
      ...env,
    },
    ADAPTERS,
  );
  const channels = { ...loaded.channels };
  for (const [name, deps] of Object.entries(channelDeps)) {
    if (channels[name]) channels[name] = { ...(channels[name] as object), ...deps };
  }
  const config = { ...loaded, channels };
  const logs = new LogCapture();
  const logger = createLogger(config.LOG_LEVEL, logs);
  const gateway = await createGateway(config, logger, opts);
  const url = await gateway.start(port, '127.0.0.1');
  return {
    url,
    gateway,
    logs,
    api: (path, init = {}) => apiFetch(url, path, init),
    stop: () => gateway.stop(),
  };
}

export interface SpawnedGateway {
  url: string;
  proc: ChildProcess;
  output: string[];
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Sends a signal and waits for the exit; resolves with the exit code (null when killed). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** Starts `src/main.ts` in its own Node process and waits until `/healthz` answers. */
export async function spawnGateway(env: Record<string, string>): Promise<SpawnedGateway> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      ...process.env,
      API_KEYS: API_KEY,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      // As in startGateway: the per-key limit is off and typing shows at once unless the test says.
      RATE_LIMIT_PER_MIN: '0',
      TYPING_AFTER_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway exited early:\n${output.join('')}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`gateway did not start:\n${output.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    proc,
    output,
    api: (path, init = {}) => apiFetch(url, path, init),
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
