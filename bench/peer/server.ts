/**
 * The peer of the `peer` scenario, in a process of its own: the published Chat SDK (`chat`,
 * `@chat-adapter/twilio`, `@chat-adapter/state-ioredis`, the versions pinned in package.json) running
 * the echo bot of its own documentation (`onDirectMessage` → `thread.post("You said: …")`) behind a
 * plain node:http server, the way its docs mount `bot.webhooks.twilio(request)` on a route.
 *
 * Settings, from the environment: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER (the
 * adapter's documented variables), PEER_REDIS_URL and PEER_KEY_PREFIX (the state adapter's Redis and
 * key prefix), PEER_TWILIO_API_URL (the adapter's `apiUrl`, where the fake REST API listens),
 * PEER_WEBHOOK_URL (the public URL Twilio signs; signature checks stay on with the account's auth
 * token), PEER_LOCK_SCOPE (`thread`, or `default` for the adapter's own, which is `channel`). The
 * concurrency strategy is the SDK's default (`drop`). Sends `{ url }` over IPC when listening and
 * exits on the message `stop`.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIoRedisState } from '@chat-adapter/state-ioredis';
import { createTwilioAdapter } from '@chat-adapter/twilio';
import { Chat, ConsoleLogger } from 'chat';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const lockScope = process.env.PEER_LOCK_SCOPE ?? 'thread';
if (lockScope !== 'thread' && lockScope !== 'default') {
  throw new Error(`PEER_LOCK_SCOPE must be thread or default, not ${lockScope}`);
}
const logger = new ConsoleLogger('silent');
const state = createIoRedisState({
  url: required('PEER_REDIS_URL'),
  keyPrefix: process.env.PEER_KEY_PREFIX ?? 'chat-sdk',
  logger,
});
const bot = new Chat({
  userName: 'echo',
  adapters: {
    twilio: createTwilioAdapter({
      accountSid: required('TWILIO_ACCOUNT_SID'),
      authToken: required('TWILIO_AUTH_TOKEN'),
      phoneNumber: required('TWILIO_PHONE_NUMBER'),
      apiUrl: required('PEER_TWILIO_API_URL'),
      webhookUrl: required('PEER_WEBHOOK_URL'),
      logger,
    }),
  },
  state,
  logger,
  ...(lockScope === 'thread' ? { lockScope: 'thread' as const } : {}),
});
bot.onDirectMessage(async (thread, message) => {
  await thread.post(`You said: ${message.text}`);
});
await bot.initialize();

async function toRequest(req: IncomingMessage): Promise<Request> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) for (const v of value) headers.append(name, v);
  }
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers,
    body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
  });
}

const server = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/webhooks/twilio') {
    res.writeHead(404).end();
    return;
  }
  toRequest(req)
    .then((request) => bot.webhooks.twilio(request))
    .then(async (response) => {
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
process.send?.({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
process.on('message', (message) => {
  if (message !== 'stop') return;
  server.closeAllConnections();
  server.close(() => {
    void bot.shutdown?.().finally(() => process.exit(0));
  });
});
