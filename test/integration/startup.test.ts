/**
 * Starting the real process (`tsx src/main.ts`) the way a new user does: a `.env` file is read (the
 * environment wins), a generated API key is kept across restarts in development and never in
 * production, and a failed start says what is wrong in words, with a distinct exit code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis.js';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
// The tsx loader by absolute URL: the processes run in temporary directories without node_modules.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Run {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

/** Starts `src/main.ts` in `cwd` with exactly the given environment (plus PATH). */
function run(env: Record<string, string>, cwd: string): Run {
  const proc = spawn(process.execPath, ['--import', TSX, MAIN], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => stdout.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, stdout, stderr, exited };
}

/** Waits for `/healthz` on `port`, then returns the generated key printed at start (if any). */
async function started(r: Run, port: number): Promise<string | undefined> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (r.proc.exitCode !== null) throw new Error(`exited early:\n${r.stdout.join('')}${r.stderr.join('')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`did not start:\n${r.stdout.join('')}${r.stderr.join('')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The key line follows the listening line; give it a moment.
  for (let i = 0; i < 50 && !/generated API key/.test(r.stdout.join('')); i++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  return /generated API key[^:]*: (sk_\S+)/.exec(r.stdout.join(''))?.[1];
}

async function stop(r: Run): Promise<void> {
  if (r.proc.exitCode === null) r.proc.kill('SIGTERM');
  await r.exited;
}

const runs: Run[] = [];
afterAll(async () => {
  for (const r of runs) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
});

describe('start-up in development', () => {
  it('reads .env (the environment wins), keeps the generated key across restarts, warns about the embedded backend', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-start-'));
    const port = await freePort();
    const filePort = await freePort();
    writeFileSync(join(dir, '.env'), `PORT=${filePort}\nPUBLIC_URL=http://from-dotenv.example\n`);

    const first = run({ PORT: String(port), NODE_ENV: 'development' }, dir);
    runs.push(first);
    const key = await started(first, port);
    expect(key).toMatch(/^sk_[A-Za-z0-9_-]{32}$/);
    const out = first.stdout.join('');
    expect(out).toContain('kept in .switchboard/dev-api-key');
    const listening = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => String(l.msg).startsWith('gateway listening'));
    expect(listening).toMatchObject({
      level: 40,
      backend: 'embedded',
      publicUrl: 'http://from-dotenv.example',
    });
    expect(String(listening?.warning)).toMatch(/in memory/);
    const res = await fetch(`http://127.0.0.1:${port}/v1/conversations`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    await stop(first);

    const file = join(dir, '.switchboard', 'dev-api-key');
    expect(readFileSync(file, 'utf8').trim()).toBe(key);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = run({ PORT: String(port), NODE_ENV: 'development' }, dir);
    runs.push(second);
    expect(await started(second, port)).toBe(key);
    await stop(second);
  }, 60_000);
});

describe('start-up in production', () => {
  it('neither writes nor reads the kept development key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-prod-'));
    const port = await freePort();
    const r = run({ PORT: String(port), NODE_ENV: 'production' }, dir);
    runs.push(r);
    const key = await started(r, port);
    expect(key).toMatch(/^sk_/);
    expect(r.stdout.join('')).toContain('for this run only');
    await stop(r);
    expect(existsSync(join(dir, '.switchboard'))).toBe(false);

    // A kept key from a development run on the same checkout is not picked up either.
    const kept = join(dir, '.switchboard');
    mkdirSync(kept, { mode: 0o700 });
    writeFileSync(join(kept, 'dev-api-key'), 'sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n', { mode: 0o600 });
    const again = run({ PORT: String(port), NODE_ENV: 'production' }, dir);
    runs.push(again);
    expect(await started(again, port)).not.toBe('sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await stop(again);
  }, 60_000);
});

describe('a failed start, said for people', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-fail-'));

  it('lists every invalid setting with what was given and what is expected, secrets hidden (exit 78)', async () => {
    const r = run(
      {
        PORT: 'abc',
        BOT_URL: 'http://127.0.0.1:9/bot',
        BOT_SECRET: 'not-a-whsec-secret-4711',
        SLACK_SIGNING_SECRET: 'slack-signing-secret-0815',
      },
      dir,
    );
    runs.push(r);
    expect(await r.exited).toBe(78);
    const err = r.stderr.join('');
    expect(err).toMatch(/^Switchboard cannot start: 3 problems with the settings/);
    expect(err).toContain('PORT = "abc": expected a whole number from 0 to 65535');
    expect(err).toContain('BOT_SECRET = (hidden, 23 characters): expected a Standard Webhooks secret');
    expect(err).toContain(
      'SLACK_BOT_TOKEN (slack channel, not set): required when SLACK_SIGNING_SECRET is set',
    );
    expect(err).not.toContain('not-a-whsec-secret-4711');
    expect(err).not.toContain('slack-signing-secret-0815');
    expect(err).not.toMatch(/received NaN|\n\s+at /);
  }, 30_000);

  it('says in one line that the port is in use (exit 69)', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = run({ PORT: String(port), API_KEYS: 'a-configured-key-0123' }, dir);
      runs.push(r);
      expect(await r.exited).toBe(69);
      const err = r.stderr.join('').trim();
      expect(err).toBe(
        `Switchboard cannot start: port ${port} on 127.0.0.1 (PORT) is already in use; stop the other process or set PORT to a free port.`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 30_000);

  it("names the SMTP listener's setting when its port is the one in use (exit 69)", async () => {
    const port = await freePort();
    const smtpPort = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(smtpPort, '127.0.0.1', resolve));
    try {
      const r = run(
        {
          PORT: String(port),
          API_KEYS: 'a-configured-key-0123',
          EMAIL_FROM: 'support@example.com',
          EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
          SMTP_URL: 'smtp://127.0.0.1:9',
          EMAIL_SMTP_PORT: String(smtpPort),
          EMAIL_SMTP_HOST: '127.0.0.1',
        },
        dir,
      );
      runs.push(r);
      expect(await r.exited).toBe(69);
      expect(r.stderr.join('').trim()).toBe(
        `Switchboard cannot start: port ${smtpPort} on 127.0.0.1 (EMAIL_SMTP_PORT) is already in use; stop the other process or set EMAIL_SMTP_PORT to a free port.`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 30_000);
});
