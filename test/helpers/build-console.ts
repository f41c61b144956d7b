/**
 * Vitest global setup: builds the operator console's bundle (console/build.mjs, esbuild, about a
 * second) so the tests that load `/console` run on a clean checkout too. A bundle newer than every
 * source is kept, so runs side by side do not rebuild it under each other.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONSOLE = fileURLToPath(new URL('../../console/', import.meta.url));

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const index = join(CONSOLE, 'dist', 'index.html');
  const sources = Math.max(newestSource(join(CONSOLE, 'src')), statSync(join(CONSOLE, 'build.mjs')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs > sources) return;
  execFileSync(process.execPath, [join(CONSOLE, 'build.mjs')], { stdio: 'inherit' });
}
