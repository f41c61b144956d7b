/**
 * Copies the files the compiled code reads next to itself into a build directory: the Redis store's
 * Lua scripts, the bench's wrk script and the web-chat widget and demo page. `tsc` emits only JavaScript.
 *
 * Usage: node scripts/copy-assets.mjs [outDir]   (default: dist)
 */
import { cpSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const outDir = process.argv[2] ?? 'dist';

/** Every file under `dir` whose path `wanted` accepts. */
function* files(dir, wanted) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path, wanted);
    else if (wanted(path)) yield path;
  }
}

const assets = [
  ...files('src', (p) => p.endsWith('.lua')),
  ...files('bench', (p) => p.endsWith('.lua')),
  ...files('adapters', (p) => /\/widget\/[^/]+\.(js|html|css)$/.test(p)),
];
for (const file of assets) cpSync(file, join(outDir, relative('.', file)));
console.log(`copied ${assets.length} assets into ${outDir}/`);
