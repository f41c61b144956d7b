#!/usr/bin/env node
/**
 * Builds the operator console (src/console/ serves it at /console) with esbuild: `src/main.tsx` and
 * the stylesheet it imports into content-hashed files under `dist/assets/`, and `dist/index.html`
 * naming them. No inline script or style, so the page runs under a CSP of `script-src 'self'`.
 *
 * Usage: node console/build.mjs   (npm run build:console)
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const final = join(root, 'dist');
// Built beside the old bundle and swapped in at the end, so a running gateway is never without one
// for longer than the swap.
const out = join(root, `dist-${process.pid}.tmp`);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
process.on('exit', () => rmSync(out, { recursive: true, force: true }));

const result = await build({
  entryPoints: [join(root, 'src/main.tsx')],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: 'app-[hash]',
  outdir: join(out, 'assets'),
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((name) => name.endsWith('.js'));
const style = outputs.find((name) => name.endsWith('.css'));
if (!script || !style) throw new Error(`esbuild produced no script or stylesheet: ${outputs.join(', ')}`);

writeFileSync(
  join(out, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>Switchboard console</title>
<link rel="stylesheet" href="/console/assets/${style}">
<script type="module" src="/console/assets/${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Switchboard console needs JavaScript.</noscript>
</body>
</html>
`,
);
rmSync(final, { recursive: true, force: true });
renameSync(out, final);
console.log(`console built: dist/assets/${script}, dist/assets/${style}`);
