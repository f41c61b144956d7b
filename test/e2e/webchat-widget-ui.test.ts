/**
 * The widget as a customer's site embeds it, in a real browser (Debian's Chromium driven by
 * playwright-core; never a downloaded browser): a shop page on its own origin loads `widget.js` from
 * the gateway (through a TCP proxy the test can take away, as a gateway that goes down), mints tokens
 * from its own backend, and talks to the gateway cross-origin (CORS for uploads and files).
 *
 * Checked: the greeting from the bot configuration and from `data-greeting`; senders' names and
 * avatars with messages grouped per sender and minute; the typing dots (and no motion when the
 * visitor asks for reduced motion); the theming attributes as computed styles; full screen at 480 px
 * and below with the launcher hidden while open; a focus ring in the theme's colour; the offline state
 * while the gateway is away, cleared when it is back; a file sent end to end (stored, seen by the bot)
 * and refused ones explained; the bot's files rendered.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bot, BotRequest, BotResponse } from '../../src/pipeline/bot/types.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/redis.js';
import { answerToken, solidPng } from '../helpers/shop-site.js';

// What the functions run in the page use of the browser's globals (the project compiles without the DOM lib).
declare const getComputedStyle: (el: unknown) => {
  getPropertyValue(name: string): string;
  outlineWidth: string;
  outlineStyle: string;
  outlineColor: string;
};
declare const localStorage: { getItem(key: string): string | null };
declare const document: { documentElement: { style: { overflow: string } } };
declare class DataTransfer {
  items: { add(file: unknown): void };
}
declare class File {
  constructor(parts: string[], name: string, options: { type: string });
}
type HTMLElement = { dataset: Record<string, string | undefined> };
type HTMLImageElement = { naturalWidth: number };

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true')
    throw new Error(`CI=true but ${CHROMIUM} is missing (install Debian's chromium)`);
  console.warn(`[skip] web-chat widget UI tests skipped: ${CHROMIUM} not found`);
}

const SECRET = 'webchat-ui-secret-0123456789-abcdefghijkl';
const MAX_UPLOAD = 200_000;

/** A TCP proxy in front of the gateway: `down()` is the gateway going away, `up()` it coming back. */
class GatewayLink {
  readonly #target: number;
  readonly #sockets = new Set<Socket>();
  #server: ReturnType<typeof createTcpServer> | null = null;
  port = 0;
  constructor(target: number) {
    this.#target = target;
  }
  async up(): Promise<void> {
    const server = createTcpServer((client) => {
      const upstream = connect(this.#target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }
  async down(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

const requests: BotRequest[] = [];
let site = '';
const bot: Bot = {
  kind: 'http',
  async reply(request): Promise<BotResponse> {
    requests.push(request);
    const { message } = request;
    if (message.attachments.length > 0) {
      return { replies: [{ text: 'Thanks, got your file', attachments: message.attachments }] };
    }
    if (message.text === 'photo please') {
      return {
        replies: [
          {
            text: 'Here is our shop and the catalogue',
            attachments: [
              { url: `${site}/shop.png`, contentType: 'image/png', name: 'shop.png' },
              {
                url: `${site}/catalogue.pdf`,
                contentType: 'application/pdf',
                name: 'catalogue.pdf',
                size: 48_213,
              },
            ],
          },
        ],
      };
    }
    return { replies: [{ text: `You said: ${message.text}` }] };
  },
};

describe.skipIf(!haveChromium)('web-chat widget, embedded on a site, in Chromium', () => {
  let gw: TestGateway;
  let proxy: GatewayLink;
  let shop: Server;
  let browser: Browser;
  let context: BrowserContext | null = null;
  const SHOP_PNG = solidPng(8, 6, [200, 60, 40]);

  beforeAll(async () => {
    const shopPort = await freePort();
    site = `http://127.0.0.1:${shopPort}`;
    gw = await startGateway(
      {
        WEBCHAT_JWT_SECRET: SECRET,
        WEBCHAT_ALLOWED_ORIGINS: site,
        WEBCHAT_UPLOAD_MAX_BYTES: String(MAX_UPLOAD),
        WEBCHAT_UPLOAD_TYPES: 'image/png,application/pdf,text/plain',
      },
      { bot },
    );
    proxy = new GatewayLink(Number(new URL(gw.url).port));
    await proxy.up();
    // The shop: its page (the widget's attributes from the query string), its token endpoint, its files.
    shop = createServer((req, res) => {
      const url = new URL(req.url ?? '/', site);
      if (url.pathname === '/token' && req.method === 'POST') {
        answerToken(req, res, { secret: SECRET, name: 'Sam Shopper' });
        return;
      }
      if (url.pathname === '/shop.png') {
        res.setHeader('content-type', 'image/png');
        res.end(SHOP_PNG);
        return;
      }
      if (url.pathname === '/') {
        const attrs = [...url.searchParams]
          .map(([k, v]) => ` data-${k}="${v.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`)}"`)
          .join('');
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Acme shop</title><link rel="icon" href="data:,"></head>
<body style="margin:0;font:16px system-ui"><main style="padding:2rem"><h1>Acme shop</h1><p>Fresh goods daily.</p></main>
<script src="http://127.0.0.1:${proxy.port}/widget.js" data-token-url="/token"${attrs} async></script></body></html>`);
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => shop.listen(shopPort, '127.0.0.1', resolve));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterEach(async () => {
    await context?.close();
    context = null;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (shop ? shop.close(() => resolve()) : resolve()));
    await proxy?.down();
    await gw?.stop();
  });

  /** A fresh visitor (own storage) on the shop page with these widget attributes. */
  async function visit(
    attrs: Record<string, string> = {},
    viewport = { width: 1280, height: 800 },
    before?: (page: Page) => Promise<void>,
  ): Promise<Page> {
    context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await before?.(page);
    await page.goto(`${site}/?${new URLSearchParams(attrs)}`);
    await page.locator('#switchboard-chat').waitFor({ state: 'attached' });
    return page;
  }

  async function openChat(page: Page): Promise<void> {
    await page.getByRole('button', { name: /Open chat/ }).click();
    await expect
      .poll(() => page.locator('.panel').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('online');
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.getByRole('textbox', { name: 'Message' }).fill(text);
    await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  }

  const log = (page: Page) => page.getByRole('log', { name: 'Messages' });
  const style = (page: Page, selector: string, prop: string) =>
    page
      .locator(selector)
      .first()
      .evaluate((el, p) => getComputedStyle(el).getPropertyValue(p), prop);

  /** The conversation of the page's visitor (the id the shop's token endpoint handed out). */
  async function conversationOf(page: Page): Promise<string> {
    const visitorId = await page.evaluate(() => {
      for (const key of Object.keys(localStorage))
        if (key.startsWith('switchboard-chat:'))
          return JSON.parse(localStorage.getItem(key) ?? '{}').visitorId;
      return undefined;
    });
    const res = await gw.api('/v1/conversations?channel=webchat&take=200');
    const list = (await res.json()) as { items: Array<{ id: string; channelRef: string }> };
    const found = list.items.find((c) => c.channelRef === visitorId);
    expect(found).toBeDefined();
    return found!.id;
  }

  it('greets with the bot configuration’s greeting, or with data-greeting when the page sets one', async () => {
    expect(
      (await gw.api('/v1/bot', { method: 'PATCH', json: { greeting: 'Hello from the bot settings' } }))
        .status,
    ).toBe(200);
    try {
      let page = await visit();
      await openChat(page);
      const greeting = log(page).locator('.msg.greeting');
      await expect.poll(() => greeting.textContent()).toBe('Hello from the bot settings');
      // The greeting comes first, from the bot.
      expect(await log(page).locator('li').first().locator('.who').textContent()).toBe('Assistant');
      await context?.close();

      page = await visit({ greeting: 'Hi! Questions about your order?' });
      // Shown before any connection: it is the page's own.
      await page.getByRole('button', { name: /Open chat/ }).click();
      await expect
        .poll(() => log(page).locator('.msg.greeting').textContent())
        .toBe('Hi! Questions about your order?');
      await expect
        .poll(() => page.locator('.panel').getAttribute('data-state'), { timeout: 10_000 })
        .toBe('online');
      expect(await log(page).locator('.msg.greeting').textContent()).toBe('Hi! Questions about your order?');
    } finally {
      await gw.api('/v1/bot', { method: 'PATCH', json: { greeting: null } });
    }
  });

  it('shows who wrote what, with avatars, and groups a sender’s messages within a minute', async () => {
    // The socket passes through the test, which gives the agent's second message the first one's time
    // (the same minute, whatever the clock), moves the third two minutes later, and notes every
    // message's time as the browser got it.
    const delivered = new Map<string, string>();
    const page = await visit({ 'bot-name': 'Sally' }, undefined, (p) =>
      p.routeWebSocket(/\/webchat$/, (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((m) => server.send(m));
        server.onMessage((m) => {
          const f = JSON.parse(String(m));
          if (f.type === 'message') {
            if (f.message.text === 'One moment') f.message.createdAt = delivered.get('Ana here');
            if (f.message.text === 'Anything else?')
              f.message.createdAt = new Date(Date.parse(f.message.createdAt) + 120_000).toISOString();
            delivered.set(f.message.text, f.message.createdAt);
          }
          ws.send(JSON.stringify(f));
        });
      }),
    );
    await openChat(page);
    await send(page, 'first question');
    await log(page).getByText('You said: first question').waitFor({ timeout: 10_000 });
    // Marked in the DOM: the log is a live region, so what is shown must stay the same nodes (a node
    // removed and added again is read out again by screen readers).
    await log(page)
      .locator('.item')
      .first()
      .evaluate((el) => {
        (el as unknown as HTMLElement).dataset.probe = 'kept';
      });
    await send(page, 'second question');
    await log(page).getByText('You said: second question').waitFor({ timeout: 10_000 });
    const id = await conversationOf(page);
    const agent = (await (
      await gw.api(`/v1/conversations/${id}/participants`, {
        method: 'POST',
        json: { role: 'agent', name: 'Ana Agent' },
      })
    ).json()) as { id: string };
    await gw.api(`/v1/conversations/${id}/send`, {
      method: 'POST',
      json: { text: 'Ana here', from: { id: agent.id } },
    });
    await log(page).getByText('Ana here').waitFor({ timeout: 10_000 });
    await gw.api(`/v1/conversations/${id}/send`, {
      method: 'POST',
      json: { text: 'One moment', from: { id: agent.id } },
    });
    await log(page).getByText('One moment').waitFor({ timeout: 10_000 });
    await gw.api(`/v1/conversations/${id}/send`, {
      method: 'POST',
      json: { text: 'Anything else?', from: { id: agent.id } },
    });
    await log(page).getByText('Anything else?').waitFor({ timeout: 10_000 });

    const groups = await log(page)
      .locator('li.group')
      .evaluateAll((lis) =>
        lis.map((li) => ({
          sender: (li as HTMLElement).dataset.sender ?? '',
          minute: (li as HTMLElement).dataset.minute ?? '',
          who: li.querySelector('.who')?.textContent ?? null,
          avatar: li.querySelector('.avatar')?.textContent?.trim() ?? null,
          hasGlyph: li.querySelector('.avatar svg') !== null,
          times: li.querySelectorAll('time').length,
          texts: [...li.querySelectorAll('.msg .body')].map((b) => b.textContent),
        })),
      );
    // What the grouping must be, from the messages' times as the browser got them.
    const stored = (
      (await (await gw.api(`/v1/conversations/${id}/messages?take=200`)).json()) as {
        items: Array<{ type: string; text: string; createdAt: string; participantId?: string }>;
      }
    ).items.filter((m) => ['user', 'bot', 'agent'].includes(m.type));
    const expected: Array<{ sender: string; minute: string; texts: string[] }> = [];
    for (const m of stored) {
      const sender = m.type === 'user' ? 'me' : m.type === 'bot' ? 'bot' : `agent:${m.participantId}`;
      const minute = String(Math.floor(Date.parse(delivered.get(m.text) ?? m.createdAt) / 60_000));
      const last = expected.at(-1);
      if (last && last.sender === sender && last.minute === minute) last.texts.push(m.text);
      else expected.push({ sender, minute, texts: [m.text] });
    }
    expect(groups.map(({ sender, minute, texts }) => ({ sender, minute, texts }))).toEqual(expected);
    // The agent's first two messages share a minute: one group; the third, minutes later, is another.
    const agentGroups = groups.filter((g) => g.sender.startsWith('agent:'));
    expect(agentGroups.map((g) => g.texts)).toEqual([['Ana here', 'One moment'], ['Anything else?']]);
    for (const g of groups) expect(g.times).toBe(1);
    for (const g of groups.filter((g) => g.sender === 'bot')) {
      expect(g.who).toBe('Sally');
      expect(g.hasGlyph).toBe(true);
    }
    for (const g of agentGroups) {
      expect(g.who).toBe('Ana Agent');
      expect(g.avatar).toBe('AA');
    }
    expect(await log(page).locator('.item[data-probe=kept]').textContent()).toMatch(/^first question/);
    // The visitor's own messages: no avatar, and no visible name.
    for (const g of groups.filter((g) => g.sender === 'me')) expect(g.avatar).toBeNull();
  });

  it('shows animated typing dots while someone types and hides them when the message comes', async () => {
    const page = await visit();
    await openChat(page);
    await send(page, 'hi');
    await log(page).getByText('You said: hi').waitFor({ timeout: 10_000 });
    const id = await conversationOf(page);
    const agent = (await (
      await gw.api(`/v1/conversations/${id}/participants`, {
        method: 'POST',
        json: { role: 'agent', name: 'Ana Agent' },
      })
    ).json()) as { id: string };
    const typing = page.locator('.typing');
    expect(await typing.isVisible()).toBe(false);
    await gw.api(`/v1/conversations/${id}/typing`, { method: 'POST', json: { from: { id: agent.id } } });
    await typing.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await typing.locator('.dots i').count()).toBe(3);
    expect(await style(page, '.dots i', 'animation-name')).toBe('sb-blink');
    expect(await page.locator('.typing-label').textContent()).toBe('Ana Agent is typing…');
    expect(await typing.locator('.avatar').textContent()).toBe('AA');
    await gw.api(`/v1/conversations/${id}/send`, {
      method: 'POST',
      json: { text: 'Here I am', from: { id: agent.id } },
    });
    await log(page).getByText('Here I am').waitFor({ timeout: 10_000 });
    await typing.waitFor({ state: 'hidden' });

    // A visitor who asked for less motion gets still dots.
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await gw.api(`/v1/conversations/${id}/typing`, { method: 'POST', json: { from: { id: agent.id } } });
    await typing.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await style(page, '.dots i', 'animation-name')).toBe('none');
  });

  it('applies data-color, data-position and data-title, with readable text on any colour', async () => {
    let page = await visit({ color: '#0a7d45', position: 'left', title: 'Acme support' });
    const launcher = page.getByRole('button', { name: /Open chat/ });
    expect(await style(page, '.launcher', 'background-color')).toBe('rgb(10, 125, 69)');
    expect(await style(page, '.launcher', 'color')).toBe('rgb(255, 255, 255)');
    const box = (await launcher.boundingBox())!;
    expect(box.x).toBe(20);
    await openChat(page);
    expect(await page.locator('#sb-title').textContent()).toBe('Acme support');
    expect(await style(page, 'header', 'background-color')).toBe('rgb(10, 125, 69)');
    expect((await page.locator('.panel').boundingBox())!.x).toBe(20);
    await send(page, 'colour check');
    await log(page).getByText('You said: colour check').waitFor({ timeout: 10_000 });
    expect(await style(page, '.mine .msg', 'background-color')).toBe('rgb(10, 125, 69)');
    await context?.close();

    // A pale colour gets dark text; something that is not a colour is ignored.
    page = await visit({ color: '#ffd400' });
    expect(await style(page, '.launcher', 'color')).toBe('rgb(27, 31, 36)');
    expect((await page.getByRole('button', { name: /Open chat/ }).boundingBox())!.x).toBe(1280 - 20 - 58);
    await context?.close();
    page = await visit({ color: 'url(javascript:alert(1))' });
    expect(await style(page, '.launcher', 'background-color')).toBe('rgb(35, 87, 217)');
  });

  it('fills the screen at 480 px and below, with the launcher hidden while it is open', async () => {
    const page = await visit({}, { width: 390, height: 760 });
    const launcher = page.getByRole('button', { name: /Open chat/ });
    expect(await launcher.isVisible()).toBe(true);
    await openChat(page);
    // (Polled: the panel slides in.)
    const box = async () => {
      const b = (await page.locator('.panel').boundingBox())!;
      return [b.x, b.y, b.width, b.height].map(Math.round);
    };
    await expect.poll(box).toEqual([0, 0, 390, 760]);
    expect(await launcher.isVisible()).toBe(false);
    // The page behind does not scroll while covered.
    const pageOverflow = () => page.evaluate(() => document.documentElement.style.overflow);
    expect(await pageOverflow()).toBe('hidden');
    await page.getByRole('button', { name: 'Close chat' }).click();
    expect(await launcher.isVisible()).toBe(true);
    expect(await pageOverflow()).toBe('');
    // Wider than that it is a panel beside the launcher, which stays.
    await page.setViewportSize({ width: 800, height: 760 });
    await launcher.click();
    expect((await page.locator('.panel').boundingBox())!.width).toBe(380);
    expect(await launcher.isVisible()).toBe(true);
  });

  it('draws a visible focus ring in the theme colour for keyboard users', async () => {
    const page = await visit({ color: '#0a7d45' });
    const launcher = page.getByRole('button', { name: /Open chat/ });
    // The shop page has nothing else to focus: the first Tab lands on the launcher.
    await page.keyboard.press('Tab');
    const ring = (selector: string) =>
      page
        .locator(selector)
        .first()
        .evaluate((el) => {
          const s = getComputedStyle(el);
          return {
            visible: el.matches(':focus-visible'),
            outline: `${s.outlineWidth} ${s.outlineStyle} ${s.outlineColor}`,
          };
        });
    expect(await ring('.launcher')).toEqual({ visible: true, outline: '3px solid rgb(10, 125, 69)' });
    await page.keyboard.press('Enter');
    await expect.poll(() => launcher.getAttribute('aria-expanded')).toBe('true');
    await expect
      .poll(() => page.locator('.panel').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('online');
    await page.getByRole('textbox', { name: 'Message' }).fill('x');
    await page.keyboard.press('Tab');
    expect(await ring('.send')).toEqual({ visible: true, outline: '3px solid rgb(10, 125, 69)' });
    // On the coloured header the ring takes the header's text colour.
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    expect(await ring('.close')).toEqual({ visible: true, outline: '3px solid rgb(255, 255, 255)' });
  });

  it('says it is offline while the gateway is away, and clears it when the gateway is back', async () => {
    const page = await visit();
    await openChat(page);
    const banner = page.getByRole('status');
    expect(await banner.count()).toBe(0);
    await proxy.down();
    try {
      await expect
        .poll(() => page.locator('.panel').getAttribute('data-state'), { timeout: 10_000 })
        .toBe('offline');
      await expect.poll(() => banner.textContent()).toMatch(/Reconnecting/);
      expect(await page.locator('.sub').textContent()).toBe('Reconnecting…');
      // Written while away: kept and sent once the gateway is back.
      await send(page, 'are you there?');
    } finally {
      await proxy.up();
    }
    await expect
      .poll(() => page.locator('.panel').getAttribute('data-state'), { timeout: 20_000 })
      .toBe('online');
    expect(await banner.count()).toBe(0);
    await log(page).getByText('You said: are you there?').waitFor({ timeout: 10_000 });
  });

  it('sends a file end to end, refuses oversized and unaccepted ones with a reason, and renders the bot’s files', async () => {
    const page = await visit();
    await openChat(page);
    const picture = solidPng(24, 16, [20, 120, 220]);
    const fileInput = page.locator('input[type=file]');
    expect(await page.getByRole('button', { name: 'Attach a file' }).isVisible()).toBe(true);
    const before = requests.length;
    await fileInput.setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: picture });

    // Shown as a thumbnail, fetched with the visitor token (CORS, from the shop's origin).
    const mine = log(page).locator('.mine img[alt="receipt.png"]');
    await expect
      .poll(() => mine.evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 })
      .toBe(24);
    // The bot saw it, and the bytes are in the store behind the API's attachment route.
    await expect.poll(() => requests.length, { timeout: 10_000 }).toBeGreaterThan(before);
    const seen = requests.at(-1)!.message.attachments;
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ contentType: 'image/png', name: 'receipt.png', size: picture.length });
    const stored = await gw.api(new URL(seen[0]!.url).pathname);
    expect(stored.status).toBe(200);
    expect(Buffer.from(await stored.arrayBuffer()).equals(picture)).toBe(true);
    // The bot's reply carries the file back: rendered on the bot's side too.
    await log(page).getByText('Thanks, got your file').waitFor({ timeout: 10_000 });
    const echoed = log(page).locator('.theirs img[alt="receipt.png"]');
    await expect
      .poll(() => echoed.evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 })
      .toBe(24);

    // Refused: too large, and a page pretending to be a picture. The visitor is told why.
    const alert = page.getByRole('alert');
    await fileInput.setInputFiles({
      name: 'huge.png',
      mimeType: 'image/png',
      buffer: Buffer.concat([picture, Buffer.alloc(MAX_UPLOAD)]),
    });
    await expect
      .poll(() => alert.textContent(), { timeout: 10_000 })
      .toMatch(/^huge\.png is too large: files up to 195 KB/);
    await fileInput.setInputFiles({
      name: 'invoice.png',
      mimeType: 'image/png',
      buffer: Buffer.from('<html><script>alert(1)</script></html>\u0000'),
    });
    await expect.poll(() => alert.textContent(), { timeout: 10_000 }).toMatch(/^invoice\.png can’t be sent/);
    expect(await log(page).locator('img[alt="huge.png"], img[alt="invoice.png"]').count()).toBe(0);
    expect(gw.logs.lines.filter((l) => l.code === 'GW_ERR_PAYLOAD_TOO_LARGE')).toHaveLength(1);

    // A file dropped on the panel is sent too.
    const drop = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['pick-up at 5pm\n'], 'notes.txt', { type: 'text/plain' }));
      return dt;
    });
    await page.locator('.panel').dispatchEvent('drop', { dataTransfer: drop });
    await log(page).locator('.mine a.file', { hasText: 'notes.txt' }).waitFor({ timeout: 10_000 });
    await expect
      .poll(() => requests.at(-1)?.message.attachments[0]?.name, { timeout: 10_000 })
      .toBe('notes.txt');

    // The bot's own files (its URLs): a picture shown, a document as a link with its size.
    await send(page, 'photo please');
    await log(page).getByText('Here is our shop and the catalogue').waitFor({ timeout: 10_000 });
    const shopImg = log(page).locator('img[alt="shop.png"]');
    await expect
      .poll(() => shopImg.evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 })
      .toBe(8);
    const pdf = log(page).locator('a.file', { hasText: 'catalogue.pdf' });
    expect(await pdf.getAttribute('href')).toBe(`${site}/catalogue.pdf`);
    expect(await pdf.getAttribute('rel')).toBe('noopener noreferrer');
    expect(await pdf.locator('small').textContent()).toBe('47 KB');
  });
});
