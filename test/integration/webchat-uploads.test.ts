/**
 * Files in web chat over real HTTP and a real socket: a visitor's upload (the visitor token in the
 * Authorization header), the type read from the bytes, the limits as problem+json logged once, the
 * message that references it reaching the bot, the download routes (the visitor's own and the API's,
 * both `nosniff`), CORS for the allowed origins only, and the public `ready` extras (the bot
 * configuration's greeting and nothing else of it; the upload limits).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attachment } from '../../src/core/model.js';
import type { Bot, BotRequest, BotResponse } from '../../src/pipeline/bot/types.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, visitorToken } from '../helpers/webchat-client.js';

const SECRET = 'webchat-test-secret-0123456789-abcdefghij';
const MAX = 2048;
const PNG = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  Buffer.alloc(64, 7),
]);

const requests: BotRequest[] = [];
const bot: Bot = {
  kind: 'http',
  async reply(request): Promise<BotResponse> {
    requests.push(request);
    // Echoes the visitor's files back, so the outbound half is exercised too.
    return {
      replies: [
        {
          text: `Got ${request.message.attachments.length} file(s)`,
          attachments: request.message.attachments,
        },
      ],
    };
  },
};

let gw: TestGateway;
let n = 0;
const open: ChatClient[] = [];

async function visitor(): Promise<{ token: string; chat: ChatClient }> {
  const token = visitorToken({ sub: `up-${++n}-${Date.now()}` }, SECRET);
  const chat = await ChatClient.ready(gw.url, { token });
  open.push(chat);
  return { token, chat };
}

function upload(token: string | null, body: Buffer, headers: Record<string, string> = {}) {
  return fetch(`${gw.url}/webchat/uploads`, {
    method: 'POST',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      // The browser's claim; the gateway ignores it.
      'content-type': 'image/png',
      'x-file-name': encodeURIComponent('photo ü.png'),
      ...headers,
    },
    body,
  });
}

const refusedLines = (code: string) =>
  gw.logs.lines
    .filter((l) => l.msg === 'request rejected' || l.msg === 'request refused')
    .filter((l) => l.code === code).length;

beforeAll(async () => {
  gw = await startGateway(
    {
      WEBCHAT_JWT_SECRET: SECRET,
      WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
      WEBCHAT_UPLOAD_MAX_BYTES: String(MAX),
      WEBCHAT_UPLOAD_TYPES: 'image/png,text/plain',
    },
    { bot },
  );
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.end().catch(() => undefined)));
  await gw?.stop();
});

describe('web-chat uploads', () => {
  it('stores a file by its sniffed type, and the message that references it reaches the bot', async () => {
    const { token, chat } = await visitor();
    const res = await upload(token, PNG, { 'content-type': 'application/x-anything' });
    expect(res.status).toBe(201);
    const file = (await res.json()) as Attachment & { id: string };
    expect(file).toMatchObject({ contentType: 'image/png', name: 'photo ü.png', size: PNG.length });
    expect(file.id).toMatch(/^att_[0-9a-f]{32}$/);

    const from = chat.frames.length;
    chat.send({ type: 'message', clientMessageId: 'with-file', text: '', attachments: [{ id: file.id }] });
    await chat.next('ack', (f) => f.clientMessageId === 'with-file', from);
    const reply = await chat.next('message', (f) => f.message.type === 'bot', from);
    expect(reply.message.text).toBe('Got 1 file(s)');
    expect(reply.message.from).toMatchObject({ role: 'bot' });
    const seen = requests.at(-1)!.message.attachments;
    expect(seen).toEqual([
      { url: file.url, contentType: 'image/png', name: 'photo ü.png', size: PNG.length },
    ]);
    expect(file.url).toMatch(new RegExp(`/v1/attachments/${file.id}$`));

    // The bot (an API client) downloads it with an API key, served like a mail attachment.
    const api = await gw.api(`/v1/attachments/${file.id}`);
    expect(api.status).toBe(200);
    expect(api.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await api.arrayBuffer()).equals(PNG)).toBe(true);

    // The visitor downloads it with the visitor token.
    const mine = await fetch(`${gw.url}/webchat/attachments/${file.id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(mine.status).toBe(200);
    expect(mine.headers.get('x-content-type-options')).toBe('nosniff');
    expect(mine.headers.get('content-type')).toBe('image/png');
    expect(mine.headers.get('content-disposition')).toMatch(/^attachment;/);
    expect(Buffer.from(await mine.arrayBuffer()).equals(PNG)).toBe(true);

    // Another visitor cannot read it, nor send it as their own.
    const other = await visitor();
    const theirs = await fetch(`${gw.url}/webchat/attachments/${file.id}`, {
      headers: { authorization: `Bearer ${other.token}` },
    });
    expect(theirs.status).toBe(404);
    const at = other.chat.frames.length;
    other.chat.send({
      type: 'message',
      clientMessageId: 'stolen',
      text: 'x',
      attachments: [{ id: file.id }],
    });
    const err = await other.chat.next('error', (f) => f.clientMessageId === 'stolen', at);
    expect(err.code).toBe('invalid_frame');
  });

  it('refuses without a visitor token (401), over the size (413) and a type not allowed (415)', async () => {
    const { token } = await visitor();
    const before401 = refusedLines('GW_ERR_UNAUTHORIZED');
    const none = await upload(null, PNG);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const forged = await upload(visitorToken({ sub: 'x' }, 'another-secret-0123456789-0123456789-abc'), PNG);
    expect(forged.status).toBe(401);
    expect(refusedLines('GW_ERR_UNAUTHORIZED')).toBe(before401 + 2);

    const big = await upload(token, Buffer.concat([PNG, Buffer.alloc(MAX)]));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { code: string }).code).toBe('GW_ERR_PAYLOAD_TOO_LARGE');
    expect(refusedLines('GW_ERR_PAYLOAD_TOO_LARGE')).toBe(1);

    // HTML that claims to be a PNG, and a real PDF that is not allowed here.
    for (const body of [Buffer.from('<html><script>alert(1)</script>\u0000'), Buffer.from('%PDF-1.7\n')]) {
      const res = await upload(token, body);
      expect(res.status).toBe(415);
      expect(((await res.json()) as { code: string }).code).toBe('GW_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    expect(refusedLines('GW_ERR_UNSUPPORTED_MEDIA_TYPE')).toBe(2);
  });

  it('limits how many files one visitor sends a minute (429 with Retry-After)', async () => {
    const { token } = await visitor();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await upload(token, PNG)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(201));
    const over = await upload(token, PNG);
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('6');
    // Another visitor is not held back by this one.
    expect((await upload((await visitor()).token, PNG)).status).toBe(201);
  });

  it('erases a visitor’s files with the contact (SPEC §9)', async () => {
    const { token, chat } = await visitor();
    const file = (await (await upload(token, PNG)).json()) as { id: string };
    expect((await gw.api(`/v1/attachments/${file.id}`)).status).toBe(200);
    const conversation = (await (
      await gw.api(`/v1/conversations/${chat.frames[0]!.conversationId}`)
    ).json()) as { participants: Array<{ role: string; contactId?: string }> };
    const contactId = conversation.participants.find((p) => p.role === 'user')?.contactId;
    expect(contactId).toBeDefined();
    await chat.end();
    expect((await gw.api(`/v1/contacts/${contactId}`, { method: 'DELETE' })).status).toBe(200);
    expect((await gw.api(`/v1/attachments/${file.id}`)).status).toBe(404);
    const mine = await fetch(`${gw.url}/webchat/attachments/${file.id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(mine.status).not.toBe(200);
  });

  it('answers CORS for the allowed origins only', async () => {
    const ok = await fetch(`${gw.url}/webchat/uploads`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    const bad = await fetch(`${gw.url}/webchat/uploads`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.test', 'access-control-request-method': 'POST' },
    });
    expect(bad.status).toBe(403);
    expect(bad.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('says the greeting and the upload limits in ready, and nothing else of the bot configuration', async () => {
    const patched = await gw.api('/v1/bot', { method: 'PATCH', json: { greeting: 'Hi! Ask me anything.' } });
    expect(patched.status).toBe(200);
    const { chat } = await visitor();
    const ready = chat.frames[0]!;
    expect(ready.greeting).toBe('Hi! Ask me anything.');
    expect(ready.upload).toEqual({ maxBytes: MAX, types: ['image/png', 'text/plain'] });
    expect(Object.keys(ready).sort()).toEqual(
      ['conversationId', 'expiresAt', 'greeting', 'type', 'upload', 'visitorId'].sort(),
    );
  });
});
