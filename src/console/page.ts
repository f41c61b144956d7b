/**
 * @module The console's page and assets (SPEC §11), built from `console/` by `npm run build:console`
 * (esbuild) into `console/dist/`: `index.html` and content-hashed files under `assets/`, so the page
 * is never cached and an asset can be cached for good. Nothing is loaded from another origin, and the
 * policy allows no inline script or style. Without a build the page says how to make one.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RequestHandler, Router } from 'express';

/**
 * Scripts, styles, images and fetches from this origin only; no inline script or style (`'self'`
 * without `'unsafe-inline'`), no frames, no plugins, no foreign form targets.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Where the build lands, from `src/console/` (tsx) or `dist/src/console/` (compiled). */
const CANDIDATES = ['../../console/dist', '../../../console/dist'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

export function consoleBuildDir(): string | undefined {
  return CANDIDATES.find((dir) => existsSync(join(dir, 'index.html')));
}

const ASSET_NAME = /^[A-Za-z0-9_-]+\.(js|css|svg|png|woff2)$/;

const NOT_BUILT = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Switchboard console: not built</title></head>
<body>
<h1>The console is not built</h1>
<p>This gateway was started without the console's bundle. Run <code>npm run build:console</code>
(or <code>npm run build</code>) in the repository and reload this page.</p>
</body>
</html>
`;

export const pageHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  next();
};

/**
 * Adds `GET /console` and `GET /console/assets/:name` to `router` (mounted at `/console`), served from
 * `buildDir` (default: {@link consoleBuildDir}).
 */
export function pageRoutes(router: Router, buildDir: () => string | undefined = consoleBuildDir): void {
  let index: { dir: string; html: string; mtimeMs: number } | undefined;
  const load = () => {
    const dir = buildDir();
    if (dir !== undefined && !existsSync(join(dir, 'index.html'))) return undefined;
    if (dir === undefined) return undefined;
    // Read again only after a rebuild, which writes a new index.html naming the new assets.
    const { mtimeMs } = statSync(join(dir, 'index.html'));
    if (index?.dir !== dir || index.mtimeMs !== mtimeMs)
      index = { dir, html: readFileSync(join(dir, 'index.html'), 'utf8'), mtimeMs };
    return index;
  };
  router.get('/', pageHeaders, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    const built = load();
    if (!built) {
      res.status(503).type('html').send(NOT_BUILT);
      return;
    }
    res.type('html').send(built.html);
  });
  router.get('/assets/:name', pageHeaders, (req, res, next) => {
    const name = String(req.params.name);
    const built = load();
    if (!built || !ASSET_NAME.test(name)) {
      next();
      return;
    }
    res.sendFile(
      name,
      { root: join(built.dir, 'assets'), immutable: true, maxAge: '365d', dotfiles: 'deny' },
      (err?: Error & { status?: number }) => {
        if (err && err.status === 404) next();
        else if (err) next(err);
      },
    );
  });
}
