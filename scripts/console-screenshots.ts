/**
 * Renders the operator console's screenshots for README and docs/console.md: starts a gateway on the
 * embedded backend with demo data (conversations on every channel, a handoff, queued messages, a
 * webhook endpoint that fails), signs in with headless Chromium (Debian's, never a downloaded one) and
 * writes docs/images/console-inbox.png, console-conversation.png and console-operations.png.
 *
 * Usage: npm run screenshots   (builds the console first)
 */

import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import { ADAPTERS } from '../adapters/index.js';
import { loadConfig } from '../config/load.js';
import type { Attachment, ChannelName, DeliveryStatus, Direction, MessageType } from '../src/core/model.js';
import { createGateway } from '../src/gateway.js';
import { createConversation } from '../src/http/api/lookup.js';
import { createLogger } from '../src/logger.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'screenshot-key-0123456789abcdef';
const OUT = new URL('../docs/images/', import.meta.url);

// Two CRM endpoints on loopback: /down fails every delivery (dead-lettered, ready to replay), /ok takes them.
const crm = createServer((req, res) => {
  if (req.url?.startsWith('/ok')) res.writeHead(204).end();
  else res.writeHead(503).end('maintenance');
});
await new Promise<void>((resolve) => crm.listen(0, '127.0.0.1', resolve));
const crmUrl = `http://127.0.0.1:${(crm.address() as AddressInfo).port}`;

const config = loadConfig(
  {
    API_KEYS: KEY,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    RATE_LIMIT_PER_MIN: '0',
    WEBHOOKS_ALLOW_PRIVATE: 'true',
  },
  ADAPTERS,
);
// The engine stays off so the queued messages stay queued and the operations view has something to show.
const gateway = await createGateway(config, createLogger('warn'), {
  startEngine: false,
  webhooks: { retryCeilingsMs: [10], timeoutMs: 2_000 },
});
const url = await gateway.start(0, '127.0.0.1');
const { deps } = gateway;
const { store } = deps;

await deps.webhooks.create({
  url: `${crmUrl}/down/switchboard`,
  events: ['conversation.created', 'message.created'],
});
await deps.webhooks.create({
  url: `${crmUrl}/ok/contacts`,
  events: ['contact.merged'],
});

interface Line {
  type: MessageType;
  text: string;
  delivery?: DeliveryStatus;
  attachments?: Attachment[];
  name?: string;
  agent?: boolean;
}

async function demo(channel: ChannelName, customer: { name?: string; address: string }, lines: Line[]) {
  const conversation = await createConversation(deps, {
    channel,
    channelRef: `${channel}:${customer.address}`,
    participants: [
      {
        id: `u-${channel}`,
        role: 'user',
        address: customer.address,
        ...(customer.name ? { name: customer.name } : {}),
      },
    ],
  });
  let agentId: string | undefined;
  for (const line of lines) {
    if (line.agent && !agentId) {
      const added = await deps.participants.add(conversation.id, { role: 'agent', name: 'Sam Rivera' });
      agentId = added?.participant.id;
    }
    const direction: Direction =
      line.type === 'user' ? 'inbound' : line.type === 'activity' ? 'internal' : 'outbound';
    const message = await store.appendMessage(conversation.id, {
      type: line.type,
      text: line.text,
      direction,
      ...(line.name ? { name: line.name } : {}),
      ...(line.type === 'user' ? { participantId: `u-${channel}` } : {}),
      ...(line.agent && agentId ? { participantId: agentId, name: 'Sam Rivera' } : {}),
      ...(line.attachments ? { attachments: line.attachments } : {}),
      ...(line.delivery ? { delivery: { status: line.delivery, at: new Date().toISOString() } } : {}),
    });
    await deps.events.emit({
      type: 'message.created',
      conversationId: conversation.id,
      seq: message!.seq,
      message: message!,
    });
  }
  return { id: conversation.id, agentId };
}

const maya = await demo('webchat', { name: 'Maya Chen', address: 'maya.chen' }, [
  { type: 'user', text: "Hi! My order #4821 hasn't arrived yet." },
  {
    type: 'bot',
    text: 'Sorry to hear that. Order #4821 shipped on Monday with DHL, tracking JD014600003.',
    delivery: 'read',
  },
  {
    type: 'user',
    text: 'The tracking says delivered, but there is nothing at my door. Can I talk to a person?',
    attachments: [
      { url: 'https://files.example.com/porch.jpg', contentType: 'image/jpeg', name: 'porch.jpg' },
    ],
  },
  { type: 'activity', text: 'Handoff requested: the customer asked for a person' },
  {
    type: 'agent',
    text: "Hi Maya, Sam here. I'm sorry about that. I've opened a claim with DHL and a replacement ships today.",
    delivery: 'read',
    agent: true,
  },
  { type: 'user', text: 'Thank you, that was quick!' },
  {
    type: 'agent',
    text: "You're welcome! You'll get the new tracking number by email within the hour.",
    delivery: 'delivered',
    agent: true,
  },
]);
await deps.handoff.assign(maya.id, maya.agentId!);

const jonas = await demo('whatsapp', { name: 'Jonas Weber', address: '+491701234567' }, [
  { type: 'user', text: 'Hallo, can I change the delivery address for my order?' },
  { type: 'bot', text: 'I can help with that. Which order is it about?', delivery: 'delivered' },
  { type: 'user', text: 'Order 5530, I moved last week' },
]);
await deps.handoff.request(jonas.id, { reason: 'Address change needs an agent', requestedBy: 'bot' });

await demo('sms', { address: '+14155550142' }, [
  { type: 'user', text: 'STATUS 7781' },
  {
    type: 'bot',
    text: 'Order 7781 is out for delivery and arrives today before 6 pm.',
    delivery: 'delivered',
  },
]);
await demo('email', { name: 'Priya Nair', address: 'priya.nair@example.com' }, [
  { type: 'user', text: 'Invoice for March: could you send it as PDF?' },
  {
    type: 'bot',
    text: 'Here is your March invoice.',
    delivery: 'sent',
    attachments: [
      {
        url: 'https://files.example.com/inv-0323.pdf',
        contentType: 'application/pdf',
        name: 'invoice-2026-03.pdf',
      },
    ],
  },
]);
await demo('slack', { name: 'Alex Kim', address: 'U024BE7LH' }, [
  { type: 'user', text: 'Is the status page down for anyone else?' },
  { type: 'bot', text: 'All systems are operational. Last incident: 3 days ago.', delivery: 'failed' },
]);

// Two messages waiting for the bot, accepted a while ago: depth and lag in the operations view.
for (const [channel, address, age] of [
  ['webchat', 'leo.park', 4],
  ['sms', '+14155550199', 2],
] as const) {
  const conversation = await createConversation(deps, {
    channel,
    channelRef: `${channel}:${address}`,
    participants: [{ id: `u-${address}`, role: 'user', address }],
  });
  await store.accept({
    conversationId: conversation.id,
    dedupeKey: `demo:${address}`,
    dedupeTtlS: 60,
    sessionIdleS: 3600,
    message: {
      type: 'user',
      text: age > 3 ? 'Do you ship to Canada?' : 'HELP',
      direction: 'inbound',
      participantId: `u-${address}`,
    },
  });
}

// The failing CRM has dead-lettered its deliveries by now.
const deadline = Date.now() + 15_000;
for (;;) {
  const [endpoint] = (await deps.webhooks.list({ take: 1, order: 'asc' })).items;
  const dead = await deps.webhooks.deliveries(endpoint!.id, { take: 5, order: 'desc', status: 'dead' });
  if (dead.items.length >= 3 || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 100));
}

mkdirSync(OUT, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 820 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(`${url}/console`);
  await page.getByLabel('API key').fill(KEY);
  await page.getByLabel('Your name').fill('Sam Rivera');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('status').getByText('Live').waitFor();
  await page.locator(`[data-conversation="${maya.id}"]`).click();
  await page.getByRole('log', { name: 'Transcript' }).getByText('new tracking number').waitFor();
  await page.getByRole('complementary', { name: 'Contact' }).getByText('Identities').waitFor();
  // A new message from Jonas while Maya's conversation is open: its unread count shows.
  const late = await store.appendMessage(jonas.id, {
    type: 'user',
    text: 'Are you there?',
    direction: 'inbound',
    participantId: 'u-whatsapp',
  });
  await deps.events.emit({
    type: 'message.created',
    conversationId: jonas.id,
    seq: late!.seq,
    message: late!,
  });
  await page.locator(`[data-conversation="${jonas.id}"] .unread`).waitFor();
  await page.getByLabel(/Reply as/).fill('Let me know if there is anything else');
  await page.screenshot({ path: new URL('console-inbox.png', OUT).pathname });

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  const mobile = await phone.newPage();
  await mobile.goto(`${url}/console`);
  await mobile.getByLabel('API key').fill(KEY);
  await mobile.getByLabel('Your name').fill('Sam Rivera');
  await mobile.getByRole('button', { name: 'Sign in' }).click();
  await mobile.locator(`[data-conversation="${maya.id}"]`).click();
  await mobile.getByRole('log', { name: 'Transcript' }).getByText('new tracking number').waitFor();
  await mobile.screenshot({ path: new URL('console-conversation.png', OUT).pathname });

  await page.getByRole('button', { name: 'Operations' }).click();
  await page.getByRole('button', { name: 'Replay' }).first().waitFor();
  await page.screenshot({ path: new URL('console-operations.png', OUT).pathname, fullPage: true });
  console.log('wrote docs/images/console-inbox.png, console-conversation.png, console-operations.png');
} finally {
  await browser.close();
  await gateway.stop();
  crm.close();
}
