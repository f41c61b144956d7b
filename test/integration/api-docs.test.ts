/**
 * `GET /docs` (SPEC §10): an HTML reference page that loads only same-origin assets, served from the
 * swagger-ui-dist package under a strict Content-Security-Policy; and, where Debian's Chromium is
 * installed, that the page really renders the document's operations with no CSP violation and no
 * request to another origin.
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;

beforeAll(async () => {
  app = await startApiApp();
});
afterAll(async () => {
  await app.close();
});

/** `src` and `href` values of a page's tags. */
function references(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1] as string);
}

describe('GET /docs', () => {
  it('answers HTML under a CSP that allows this origin only, without an API key', async () => {
    const res = await fetch(`${app.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    // No inline script: every script has a src.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style/);
    const refs = references(html);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      expect(ref, 'same-origin path').toMatch(/^\/[^/]/);
      const asset = await fetch(`${app.url}${ref}`);
      expect(asset.status, ref).toBe(200);
      await asset.arrayBuffer();
    }
  });

  it('serves the package files the page needs and nothing else of it', async () => {
    const css = await fetch(`${app.url}/docs/assets/swagger-ui.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    await css.arrayBuffer();
    const init = await fetch(`${app.url}/docs/init.js`);
    expect(init.headers.get('content-type')).toMatch(/javascript/);
    expect(await init.text()).toContain("url: '/v1/openapi.json'");
    for (const name of ['package.json', 'index.html', '..%2Fpackage.json', 'swagger-initializer.js']) {
      const res = await fetch(`${app.url}/docs/assets/${name}`);
      expect(res.status, name).toBe(404);
      await res.arrayBuffer();
    }
  });
});

const CHROMIUM = '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('/docs in Chromium', () => {
  it('renders the operations, loading nothing from another origin and breaking no CSP rule', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage();
      const origin = new URL(app.url).origin;
      const foreign: string[] = [];
      const problems: string[] = [];
      page.on('request', (req) => {
        const url = req.url();
        if (!url.startsWith(origin) && !url.startsWith('data:')) foreign.push(url);
      });
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(msg.text());
      });
      page.on('pageerror', (err) => problems.push(err.message));
      await page.goto(`${app.url}/docs`);
      await page
        .getByText('/v1/conversations/{id}/messages', { exact: true })
        .first()
        .waitFor({ timeout: 15_000 });
      await page.getByText('Switchboard API', { exact: false }).first().waitFor();
      expect(foreign).toEqual([]);
      expect(problems.filter((p) => /Content Security Policy|Refused/i.test(p))).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 30_000);
});
