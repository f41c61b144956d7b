/**
 * Vitest global setup: builds the operator console's bundle (console/build.mjs, esbuild, well under a
 * second) so the tests that load `/console` run on a clean checkout too.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../console/build.mjs', import.meta.url))], {
    stdio: 'inherit',
  });
}
