/**
 * Compiled gateway processes (`src/main.js` as production runs it) for the scenarios that need real
 * roles: started on a free port with the settings given, ready once `/readyz` answers, killed after.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/redis.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
}

/** Starts `ROLE=role` with `env` (on top of this process's environment) and waits until it is ready. */
export async function spawnGateway(
  role: 'all' | 'web' | 'worker',
  env: Record<string, string>,
): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...env, ROLE: role, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`ROLE=${role} gateway exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ROLE=${role} gateway did not start`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child };
}

export function stopGateway(proc: GatewayProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.child.exitCode !== null) return resolve();
    proc.child.once('exit', () => resolve());
    proc.child.kill('SIGKILL');
  });
}

/** `switchboard_queue_pending` from a process's `/metrics`. */
export async function pendingOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^switchboard_queue_pending (\d+)/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}
