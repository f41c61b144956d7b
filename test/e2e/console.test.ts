/**
 * The operator console in a real browser (headless Debian Chromium driven by playwright-core; never a
 * downloaded browser), against a gateway in demo mode: sign-in refuses a wrong key and accepts the
 * right one; a customer's web-chat message shows in the inbox and the transcript without a reload;
 * the agent takes the conversation, replies, and the reply reaches the customer's widget in a second
 * browser context; after Hand back the bot answers the next message; a webhook delivery that failed
 * is replayed from the operations view and reaches the receiver.
 */
import { hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

/** The page's globals, for code run in the browser (this file is typed without the DOM library). */
type InPage = {
  document: { cookie: string; documentElement: { scrollWidth: number } };
  localStorage: Record<string, string>;
  sessionStorage: Record<string, string>;
};

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true')
    throw new Error(`CI=true but ${CHROMIUM} is missing (install Debian's chromium)`);
  console.warn(`[skip] console browser tests skipped: ${CHROMIUM} not found`);
}

describe.skipIf(!haveChromium)('operator console in Chromium', () => {
  let gw: TestGateway;
  let browser: Browser;
  let agentContext: BrowserContext;
  let customerContext: BrowserContext;
  let agent: Page;
  let customer: Page;
  let base: string;
  let receiver: WebhookReceiver;
  let webhookId: string;
  let conversationId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    // Every attempt fails until the test says otherwise: the first delivery dies after two attempts.
    receiver.mode = { kind: 'status', status: 500 };
    gw = await startGateway(
      { WEBHOOKS_ALLOW_PRIVATE: 'true' },
      { webhooks: { retryCeilingsMs: [20], timeoutMs: 2_000, breakerThreshold: 50 } },
    );
    base = `http://localhost:${new URL(gw.url).port}`;
    // Only conversation.created: the one delivery the test replays, and nothing else arrives later.
    const created = await gw.api('/v1/webhooks', {
      method: 'POST',
      json: { url: `${receiver.url}/crm`, events: ['conversation.created'] },
    });
    expect(created.status).toBe(201);
    const endpoint = (await created.json()) as { id: string; secret: string };
    webhookId = endpoint.id;
    receiver.secrets = [endpoint.secret];
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
    });
    agentContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    customerContext = await browser.newContext({ viewport: { width: 360, height: 740 } });
    agent = await agentContext.newPage();
    customer = await customerContext.newPage();
    for (const page of [agent, customer]) {
      page.on('pageerror', (err) => pageErrors.push(err.message));
      page.on('console', (msg) => {
        // A CSP violation is reported on the console: the page must cause none.
        if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text()))
          pageErrors.push(msg.text());
      });
    }
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await receiver?.close();
  });

  const conversations = () => agent.getByRole('region', { name: 'Conversations' });
  const transcript = () => agent.getByRole('log', { name: 'Transcript' });
  const widgetLog = () => customer.getByRole('log', { name: 'Messages' });

  async function say(text: string): Promise<void> {
    const input = customer.getByRole('textbox', { name: 'Message' });
    await input.fill(text);
    await input.press('Enter');
  }

  it('serves the console under a CSP with no inline script, and refuses a wrong key clearly', async () => {
    const res = await agent.goto(`${base}/console`);
    expect(res?.status()).toBe(200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await agent.getByLabel('API key').fill('not-the-right-key-at-all');
    await agent.getByRole('button', { name: 'Sign in' }).click();
    await agent.getByRole('alert').getByText('Sign-in refused').waitFor();
    // Nothing about the key is kept in the page's storage.
    const stored = await agent.evaluate(() => {
      const page = globalThis as unknown as InPage;
      return JSON.stringify({ ...page.localStorage, ...page.sessionStorage });
    });
    expect(stored).toBe('{}');
  });

  it('signs in with the right key and goes live', async () => {
    await agent.getByLabel('API key').fill(API_KEY);
    await agent.getByLabel('Your name').fill('Ada Agent');
    await agent.getByRole('button', { name: 'Sign in' }).click();
    await agent.getByRole('status').getByText('Live').waitFor();
    const stored = await agent.evaluate(() => {
      const page = globalThis as unknown as InPage;
      return JSON.stringify({ ...page.localStorage, ...page.sessionStorage });
    });
    expect(stored).not.toContain(API_KEY);
    const cookies = await agentContext.cookies();
    const session = cookies.find((c) => c.name === 'sb_console');
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    expect(await agent.evaluate(() => (globalThis as unknown as InPage).document.cookie)).toBe('');
  });

  it("shows a customer's web-chat message in the list and the transcript without a reload", async () => {
    await customer.goto(`${base}/`);
    await say('Where is my order 1234?');
    await widgetLog().getByText('You said: Where is my order 1234?').waitFor({ timeout: 10_000 });
    const item = conversations().getByRole('button', { name: /Where is my order 1234\?/ });
    await item.waitFor({ timeout: 10_000 });
    conversationId = (await item.getAttribute('data-conversation'))!;
    expect(conversationId).toMatch(/^conv_/);
    await item.click();
    await transcript().locator('[data-type="user"]', { hasText: 'Where is my order 1234?' }).waitFor();
    await transcript()
      .locator('[data-type="bot"]', { hasText: 'You said: Where is my order 1234?' })
      .waitFor();
    // A second message arrives live, into the open transcript.
    await say('It was due yesterday');
    await transcript().locator('[data-type="user"]', { hasText: 'It was due yesterday' }).waitFor();
  });

  it('takes the conversation, and the reply reaches the customer with the agent as its author', async () => {
    await agent.getByRole('button', { name: 'Take' }).click();
    await agent.getByText('With Ada Agent').waitFor();
    expect(await agent.getByRole('button', { name: 'Take' }).count()).toBe(0);
    const box = agent.getByLabel(/Reply as/);
    expect(await agent.locator('.reply-label').textContent()).toContain('Ada Agent');
    await box.fill('Hi, Ada here. Let me check that for you.');
    await box.press('Enter');
    await transcript().locator('[data-type="agent"]', { hasText: 'Ada here' }).waitFor();
    await widgetLog().getByText('Hi, Ada here. Let me check that for you.').waitFor({ timeout: 10_000 });
    // The bot is muted while the agent has it: the customer's next message gets no bot reply.
    await say('Thank you Ada');
    await transcript().locator('[data-type="user"]', { hasText: 'Thank you Ada' }).waitFor();
    const state = await gw.api(`/v1/conversations/${conversationId}`);
    const conversation = (await state.json()) as { status: string; handoff: { state: string } };
    expect(conversation.status).toBe('handoff');
    expect(conversation.handoff.state).toBe('assigned');
    expect(
      await transcript().locator('[data-type="bot"]', { hasText: 'You said: Thank you Ada' }).count(),
    ).toBe(0);
  });

  it('hands back, and the bot answers the next message', async () => {
    await agent.getByRole('button', { name: 'Hand back' }).click();
    await agent.getByText('The bot is answering').waitFor();
    await say('One more question');
    await widgetLog().getByText('You said: One more question').waitFor({ timeout: 10_000 });
    await transcript().locator('[data-type="bot"]', { hasText: 'You said: One more question' }).waitFor();
  });

  it('replays a failed webhook delivery from the operations view, and the receiver gets it', async () => {
    // The conversation.created delivery died after its attempts against the failing receiver.
    await receiver.waitFor((received) => received.length >= 2);
    expect(receiver.accepted).toEqual([]);
    await agent.getByRole('button', { name: 'Operations' }).click();
    const endpoint = agent.locator(`[data-webhook="${webhookId}"]`);
    await endpoint.getByText(`${receiver.url}/crm`, { exact: true }).waitFor();
    const replay = endpoint.getByRole('button', { name: 'Replay' });
    await replay.waitFor({ timeout: 15_000 });
    await agent.getByRole('region', { name: 'Bot' }).getByText('Healthy').waitFor();
    receiver.mode = { kind: 'ok' };
    await replay.click();
    const [delivered] = await receiver.waitFor((received) => received.some((d) => d.answered === 'ok'));
    const ok = receiver.accepted;
    expect(delivered).toBeDefined();
    expect(ok).toHaveLength(1);
    expect(ok[0]!.event.type).toBe('conversation.created');
    expect(ok[0]!.event.conversationId).toBe(conversationId);
    expect(ok[0]!.verifiedWith).toEqual([0]);
    // Replayed: it leaves the failed list.
    await endpoint.getByText('No failed deliveries.').waitFor();
  });

  it('counts unread messages of other conversations, and filters and searches the list', async () => {
    await agent.getByRole('button', { name: 'Inbox' }).click();
    await conversations().locator(`[data-conversation="${conversationId}"]`).click();
    const other = await browser.newContext({ viewport: { width: 360, height: 740 } });
    try {
      const visitor = await other.newPage();
      await visitor.goto(`${base}/`);
      const input = visitor.getByRole('textbox', { name: 'Message' });
      await input.fill('A second visitor asks');
      await input.press('Enter');
      const item = conversations().getByRole('button', { name: /A second visitor asks/ });
      await item.locator('.unread', { hasText: '1' }).waitFor({ timeout: 10_000 });
      // Search narrows the list to it; the handoff filter to none of the two.
      const search = agent.getByRole('searchbox', { name: 'Search conversations' });
      await search.fill('second visitor');
      await expect.poll(() => conversations().locator('.conv-item').count()).toBe(1);
      await search.fill('');
      await agent.getByRole('combobox', { name: 'Handoff' }).selectOption('waiting');
      await conversations().getByText('No conversation matches.').waitFor();
      await agent.getByRole('combobox', { name: 'Handoff' }).selectOption('');
      await expect.poll(() => conversations().locator('.conv-item').count()).toBe(2);
      // Opening it clears its count.
      await item.click();
      await transcript().locator('[data-type="user"]', { hasText: 'A second visitor asks' }).waitFor();
      expect(await item.locator('.unread').count()).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('works at 360 px wide: the list, then one conversation with a way back', async () => {
    await agent.setViewportSize({ width: 360, height: 740 });
    await agent.getByRole('button', { name: 'Inbox' }).click();
    // A conversation is open: at this width it fills the screen, with a way back to the list.
    await transcript().waitFor();
    expect(await conversations().isVisible()).toBe(false);
    await agent.getByRole('button', { name: 'Back to conversations' }).click();
    const item = conversations().locator(`[data-conversation="${conversationId}"]`);
    await item.waitFor();
    await item.click();
    await transcript().waitFor();
    expect(await conversations().isVisible()).toBe(false);
    const width = await agent.evaluate(
      () => (globalThis as unknown as InPage).document.documentElement.scrollWidth,
    );
    expect(width).toBeLessThanOrEqual(360);
    await agent.getByRole('button', { name: 'Back to conversations' }).click();
    await item.waitFor();
  });

  it('keeps a typed reply through an expired session, and sends it after signing in again', async () => {
    await agent.getByRole('button', { name: 'Inbox' }).click();
    await conversations().locator(`[data-conversation="${conversationId}"]`).click();
    const box = agent.getByLabel(/Reply as/);
    await box.fill('Typed before the session ran out');
    // The session ends on the server (as an idle expiry would): its record is gone from the store.
    const cookie = (await agentContext.cookies()).find((c) => c.name === 'sb_console')!;
    await gw.gateway.deps.store.kv.delete(`console:session:${hash('sha256', cookie.value, 'base64url')}`);
    await box.press('Enter');
    await agent.getByRole('heading', { name: 'Your session ended' }).waitFor();
    expect(await box.inputValue()).toBe('Typed before the session ran out');
    await agent.getByLabel('API key').fill(API_KEY);
    await agent.getByRole('button', { name: 'Sign in' }).click();
    await agent.getByRole('heading', { name: 'Your session ended' }).waitFor({ state: 'detached' });
    expect(await box.inputValue()).toBe('Typed before the session ran out');
    await box.press('Enter');
    await widgetLog().getByText('Typed before the session ran out').waitFor({ timeout: 10_000 });
    // The box is cleared when the console's own send is answered, which can come after the widget
    // has the message: the customer's socket may be told before the agent's request returns.
    await expect.poll(() => box.inputValue(), { timeout: 5_000 }).toBe('');
  });

  it('caused no script errors and no CSP violations', () => {
    expect(pageErrors).toEqual([]);
  });
});
