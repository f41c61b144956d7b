/**
 * @module The web-chat HTTP routes: `GET /widget.js` (the embeddable widget, served as written),
 * `GET /` (the demo page) and, in demo mode only, `POST /webchat/demo-token`.
 */
import { readFileSync } from 'node:fs';
import express, { type Router } from 'express';
import type { DemoToken } from './demo.js';

// Read next to this module: the widget and page are plain files (the Dockerfile copies them into dist/).
const WIDGET = readFileSync(new URL('./widget/widget.js', import.meta.url), 'utf8');
const PAGE = readFileSync(new URL('./widget/demo.html', import.meta.url), 'utf8');

const DEMO_NOTICE =
  'Demo mode: no WEBCHAT_JWT_SECRET or WEBCHAT_JWT_PUBLIC_KEY is set, so this gateway mints short-lived ' +
  'visitor tokens for anyone at POST /webchat/demo-token. Configure a secret or public key before going live.';
const SITE_NOTICE =
  'Tokens come from this site’s own backend (WEBCHAT_JWT_SECRET or WEBCHAT_JWT_PUBLIC_KEY is set); ' +
  'this page has no token endpoint, so the widget below needs one configured with data-token-url.';

/**
 * The demo page's policy: only this origin's scripts and sockets; styles inline because the widget
 * styles its shadow root with a `<style>` element.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface RouteOptions {
  /** Mints a demo token for a returning visitor id (or a new one); absent outside demo mode. */
  mintDemoToken?: (visitorId: unknown) => DemoToken;
}

export function mountRoutes(router: Router, opts: RouteOptions): void {
  const demo = opts.mintDemoToken !== undefined;
  const page = PAGE.replace('{{NOTICE}}', demo ? DEMO_NOTICE : SITE_NOTICE).replace(
    '{{TOKEN_URL}}',
    demo ? '/webchat/demo-token' : '',
  );

  router.get('/widget.js', (_req, res) => {
    res.set({
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'public, max-age=300',
      // Sites embed it cross-origin, also ones that isolate themselves with COEP.
      'cross-origin-resource-policy': 'cross-origin',
      'x-content-type-options': 'nosniff',
    });
    res.send(WIDGET);
  });

  router.get('/', (_req, res) => {
    res.set({
      'content-security-policy': PAGE_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    res.type('html').send(page);
  });

  const mint = opts.mintDemoToken;
  if (mint) {
    router.post('/webchat/demo-token', express.json({ limit: 1024 }), (req, res) => {
      const token = mint((req.body as { visitorId?: unknown } | undefined)?.visitorId);
      res.set('cache-control', 'no-store').json(token);
    });
  }
}
