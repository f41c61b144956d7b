/**
 * The widget in a real browser (headless Debian Chromium driven by playwright-core; never a downloaded
 * browser): the demo page works out of the box, history survives a reload, and a cut connection is
 * re-established with the replies produced meanwhile caught up; an agent's typing and messages are
 * shown with the agent's name.
 */
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true')
    throw new Error(`CI=true but ${CHROMIUM} is missing (install Debian's chromium)`);
  console.warn(`[skip] web-chat browser tests skipped: ${CHROMIUM} not found`);
}

describe.skipIf(!haveChromium)('web-chat widget in Chromium', () => {
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;
  let base: string;
  /** Raw TCP sockets of upgraded web-chat connections, so the test can cut them server-side. */
  const upgraded: Socket[] = [];

  beforeAll(async () => {
    // Demo mode, embedded backend, demo bot: exactly what `npm start` runs.
    gw = await startGateway({});
    gw.gateway.server.on('upgrade', (_req, socket: Socket) => upgraded.push(socket));
    // PUBLIC_URL defaults to http://localhost:<port>: load the page from there, as a user would.
    base = `http://localhost:${new URL(gw.url).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 360, height: 740 } });
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  const input = () => page.getByRole('textbox', { name: 'Message' });
  const log = () => page.getByRole('log', { name: 'Messages' });

  async function send(text: string): Promise<void> {
    await input().fill(text);
    await input().press('Enter');
  }

  it('serves the demo page with a CSP and the widget, and says it is in demo mode', async () => {
    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await expect.poll(() => page.getByText('Demo mode').count()).toBe(1);
    // data-open="true": the panel is open and the input has focus.
    await expect
      .poll(() =>
        input().evaluate(
          (el) => el === (el.getRootNode() as unknown as { activeElement: unknown }).activeElement,
        ),
      )
      .toBe(true);
  });

  it('sends a message and shows the reply', async () => {
    await send('hello from chromium');
    await log().getByText('You said: hello from chromium').waitFor({ timeout: 10_000 });
    await log().getByText('hello from chromium', { exact: true }).waitFor();
  });

  it('shows the history after a reload', async () => {
    await page.reload();
    await log().getByText('You said: hello from chromium').waitFor({ timeout: 10_000 });
    expect(await log().getByText('hello from chromium', { exact: true }).count()).toBe(1);
  });

  it('reconnects after the connection is cut and catches up on what happened meanwhile', async () => {
    await input().waitFor();
    const context = page.context();
    // Cut: the browser goes offline (no reconnect possible) and the server drops the TCP connections.
    await context.setOffline(true);
    for (const socket of upgraded.splice(0)) socket.destroy();
    await expect
      .poll(() => page.getByRole('status').first().textContent(), { timeout: 10_000 })
      .toMatch(/Offline|Reconnecting/);

    // While the widget is away, an agent writes through the API (delivered to nobody, stored), and
    // the visitor types a message that waits in the widget's outbox.
    const list = (await (await gw.api('/v1/conversations?channel=webchat')).json()) as {
      items: Array<{ id: string }>;
    };
    expect(list.items).toHaveLength(1);
    const res = await gw.api(`/v1/conversations/${list.items[0]!.id}/send`, {
      method: 'POST',
      json: { text: 'An agent wrote while you were away' },
    });
    expect(res.status).toBe(201);
    await send('typed while offline');
    await log().getByText('typed while offline').waitFor();
    expect(await log().getByText('An agent wrote while you were away').count()).toBe(0);

    await context.setOffline(false);
    await log().getByText('An agent wrote while you were away').waitFor({ timeout: 15_000 });
    expect(upgraded.length).toBeGreaterThanOrEqual(1);
    await log().getByText('You said: typed while offline').waitFor({ timeout: 15_000 });
    // Nothing shown twice after the replay.
    expect(await log().getByText('You said: hello from chromium').count()).toBe(1);
  });

  it('is keyboard accessible: Escape closes the panel and returns focus to the launcher', async () => {
    await input().focus();
    await page.keyboard.press('Escape');
    const launcher = page.getByRole('button', { name: /Open chat/ });
    await expect.poll(() => launcher.getAttribute('aria-expanded')).toBe('false');
    expect(await input().isVisible()).toBe(false);
    await page.keyboard.press('Enter');
    // Open at this width the panel fills the screen and the launcher is hidden (no longer a role).
    await expect.poll(() => page.locator('.launcher').getAttribute('aria-expanded')).toBe('true');
    expect(await launcher.count()).toBe(0);
  });

  it("shows an agent's typing and message with the agent's name", async () => {
    const list = (await (await gw.api('/v1/conversations?channel=webchat')).json()) as {
      items: Array<{ id: string }>;
    };
    const id = list.items[0]!.id;
    const added = await gw.api(`/v1/conversations/${id}/participants`, {
      method: 'POST',
      json: { role: 'agent', name: 'Ana Agent' },
    });
    expect(added.status).toBe(201);
    const agent = (await added.json()) as { id: string };
    const typing = await gw.api(`/v1/conversations/${id}/typing`, {
      method: 'POST',
      json: { from: { id: agent.id } },
    });
    expect(typing.status).toBe(204);
    await page.getByText('Ana Agent is typing…').waitFor({ timeout: 10_000 });
    const sent = await gw.api(`/v1/conversations/${id}/send`, {
      method: 'POST',
      json: { text: 'Ana here, I can help', from: { id: agent.id } },
    });
    expect(sent.status).toBe(201);
    const bubble = log().locator('li', { hasText: 'Ana here, I can help' });
    await bubble.waitFor({ timeout: 10_000 });
    expect(await bubble.locator('.who').textContent()).toBe('Ana Agent');
    // The agent's message ends the agent's typing.
    await expect.poll(() => page.getByText('Ana Agent is typing…').count()).toBe(0);
  });
});
