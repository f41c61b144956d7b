/**
 * Renders the web-chat widget's screenshots for docs/channels/webchat.md: starts a gateway on the
 * embedded backend with a scripted bot, serves a small shop page on another origin that embeds the
 * widget (as a customer's site does, with its own token endpoint), drives headless Chromium (Debian's,
 * never a downloaded one) through a conversation with the bot and an agent, and writes
 * docs/images/webchat-desktop.png, webchat-mobile.png and webchat-attachment.png.
 *
 * Usage: npm run screenshots:webchat
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Page } from 'playwright-core';
import { ADAPTERS } from '../adapters/index.js';
import { loadConfig } from '../config/load.js';
import { createGateway } from '../src/gateway.js';
import { createLogger } from '../src/logger.js';
import type { Bot, BotResponse } from '../src/pipeline/bot/types.js';
import { answerToken, png } from '../test/helpers/shop-site.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'screenshot-key-0123456789abcdef';
const SECRET = 'screenshot-webchat-secret-0123456789abcdef';
const OUT = new URL('../docs/images/', import.meta.url);

/** A PNG with a soft diagonal gradient, standing in for a customer's photo. */
function photo(w: number, h: number): Buffer {
  return png(w, h, (x, y) => {
    const t = (x / w + y / h) / 2;
    return [Math.round(250 - 90 * t), Math.round(170 + 40 * t), Math.round(90 + 130 * t)];
  });
}

const bot: Bot = {
  kind: 'http',
  async reply({ message }): Promise<BotResponse> {
    if (message.attachments.length > 0) {
      return {
        replies: [
          {
            text: 'Thanks for the photo! Here is our returns form; an agent will confirm the replacement.',
            attachments: [
              {
                url: 'https://shop.example.com/returns-form.pdf',
                contentType: 'application/pdf',
                name: 'returns-form.pdf',
                size: 84_211,
              },
            ],
          },
        ],
      };
    }
    if (/order/i.test(message.text)) {
      return {
        replies: [
          { text: 'Order #1042 left our warehouse this morning and should arrive tomorrow.' },
          {
            text: 'Anything else I can help with?',
            quickReplies: [{ title: 'Change address' }, { title: 'Talk to a person' }],
          },
        ],
      };
    }
    return { replies: [{ text: 'Happy to help. Could you send a photo of the item?' }] };
  },
};

/** Where the widget is loaded from; known once the gateway listens (before any page is served). */
let gatewayUrl = '';

// The shop: its page (widget attributes from the query string) and its own token endpoint.
const shop = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://shop');
  if (url.pathname === '/token') {
    answerToken(req, res, { secret: SECRET, name: 'Sam' });
    return;
  }
  const attrs = [...url.searchParams].map(([k, v]) => ` data-${k}="${v.replace(/"/g, '&quot;')}"`).join('');
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Acme outdoor</title><link rel="icon" href="data:,">
<style>body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1b1f24;background:#fbfaf7}
nav{display:flex;gap:24px;padding:18px 40px;border-bottom:1px solid #e7e3da;font-weight:600}
main{max-width:760px;padding:48px 40px}h1{font-size:2.2rem;margin:0 0 .5rem}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:16px;margin-top:32px}
.cards div{height:150px;border-radius:12px;background:linear-gradient(135deg,#e9e4d8,#d8e3dc)}</style></head>
<body><nav><span>Acme outdoor</span><span style="font-weight:400">Tents</span><span style="font-weight:400">Packs</span></nav>
<main><h1>Gear for long weekends</h1><p>Free returns within 30 days. Questions? Ask us in the chat.</p>
<div class="cards"><div></div><div></div><div></div></div></main>
<script src="${gatewayUrl}/widget.js" data-token-url="/token"${attrs} async></script></body></html>`);
});
await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', resolve));
const shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;

// The shop's origin may embed the widget.
const config = loadConfig(
  {
    API_KEYS: KEY,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    RATE_LIMIT_PER_MIN: '0',
    WEBCHAT_JWT_SECRET: SECRET,
    WEBCHAT_ALLOWED_ORIGINS: shopUrl,
  },
  ADAPTERS,
);

const gateway = await createGateway(config, createLogger('warn'), { bot });
gatewayUrl = await gateway.start(0, '127.0.0.1');
const api = (path: string, json?: unknown) =>
  fetch(`${gatewayUrl}${path}`, {
    method: json === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
await fetch(`${gatewayUrl}/v1/bot`, {
  method: 'PATCH',
  headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    greeting: 'Hi there! I’m Sally, Acme’s assistant. Ask me about orders, sizes or returns.',
  }),
});

async function conversationOf(page: Page): Promise<string> {
  const visitorId = await page.evaluate(() => {
    for (const key of Object.keys(localStorage))
      if (key.startsWith('switchboard-chat:')) return JSON.parse(localStorage.getItem(key) ?? '{}').visitorId;
    return undefined;
  });
  const list = (await (await api('/v1/conversations?channel=webchat&take=200')).json()) as {
    items: Array<{ id: string; channelRef: string }>;
  };
  return list.items.find((c) => c.channelRef === visitorId)!.id;
}

async function say(page: Page, text: string, answer: string) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
  await page.getByRole('log').getByText(answer).waitFor({ timeout: 10_000 });
}

mkdirSync(OUT, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
});
try {
  const attrs = new URLSearchParams({ title: 'Acme support', 'bot-name': 'Sally', color: '#1f6f5c' });

  // 1. Desktop, open: the greeting, the bot, an agent joining, the agent typing.
  const desktop = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await desktop.goto(`${shopUrl}/?${attrs}`);
  await desktop.getByRole('button', { name: /Open chat/ }).click();
  await say(desktop, 'Hi! Where is my order #1042?', 'Anything else I can help with?');
  const id = await conversationOf(desktop);
  const agent = (await (
    await api(`/v1/conversations/${id}/participants`, { role: 'agent', name: 'Ana Reyes' })
  ).json()) as {
    id: string;
  };
  await api(`/v1/conversations/${id}/send`, {
    text: 'Hi Sam, Ana here from the team. I can also change the delivery address if you need.',
    from: { id: agent.id },
  });
  await desktop.getByRole('log').getByText('Ana here from the team', { exact: false }).waitFor();
  await api(`/v1/conversations/${id}/typing`, { from: { id: agent.id } });
  await desktop.locator('.typing').waitFor({ state: 'visible' });
  await desktop.waitForTimeout(300);
  await desktop.screenshot({ path: new URL('webchat-desktop.png', OUT).pathname });

  // 2. A phone: the panel fills the screen, the launcher is hidden.
  const phone = await (
    await browser.newContext({ viewport: { width: 390, height: 780 }, deviceScaleFactor: 2 })
  ).newPage();
  await phone.goto(`${shopUrl}/?${new URLSearchParams({ ...Object.fromEntries(attrs), color: '#c2410c' })}`);
  await phone.getByRole('button', { name: /Open chat/ }).click();
  await say(phone, 'Where is my order?', 'Anything else I can help with?');
  await phone.waitForTimeout(300);
  await phone.screenshot({ path: new URL('webchat-mobile.png', OUT).pathname });

  // 3. Files both ways: the visitor's photo (uploaded, shown from the gateway) and the bot's PDF.
  const files = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await files.goto(`${shopUrl}/?${attrs}`);
  await files.getByRole('button', { name: /Open chat/ }).click();
  await say(files, 'The tent pole arrived broken', 'Could you send a photo of the item?');
  await files
    .locator('input[type=file]')
    .setInputFiles({ name: 'broken-pole.png', mimeType: 'image/png', buffer: photo(440, 300) });
  await files.getByRole('log').getByText('returns-form.pdf').waitFor({ timeout: 10_000 });
  await files.waitForFunction(() => {
    const host = document.querySelector('#switchboard-chat');
    const img = host?.shadowRoot?.querySelector('img[alt="broken-pole.png"]') as {
      naturalWidth?: number;
    } | null;
    return (img?.naturalWidth ?? 0) > 0;
  });
  await files.waitForTimeout(300);
  await files.screenshot({ path: new URL('webchat-attachment.png', OUT).pathname });
  console.log('wrote docs/images/webchat-desktop.png, webchat-mobile.png, webchat-attachment.png');
} finally {
  await browser.close();
  await gateway.stop();
  shop.close();
}
