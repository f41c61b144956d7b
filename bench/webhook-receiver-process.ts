/**
 * A CRM's webhook endpoint for the `webhooks` scenario, in a process of its own so that the gateway
 * measured does not pay for receiving its own deliveries: answers every POST 204 after reading its
 * body, and counts deliveries and distinct `webhook-id`s. The signatures are checked by the tests
 * (test/helpers/webhook-receiver.ts, with the `standardwebhooks` package), not here.
 * Answers IPC messages `{ id, op: 'stats' | 'reset' }` with `{ id, stats? }`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceiverStats {
  deliveries: number;
  distinct: number;
}

let deliveries = 0;
let ids = new Set<string>();

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    deliveries += 1;
    const id = req.headers['webhook-id'];
    if (typeof id === 'string') ids.add(id);
    res.statusCode = 204;
    res.end();
  });
});
server.keepAliveTimeout = 65_000;

process.on('message', (message: { id: number; op: 'stats' | 'reset' }) => {
  if (message.op === 'reset') {
    deliveries = 0;
    ids = new Set();
    process.send!({ id: message.id });
  } else {
    process.send!({ id: message.id, stats: { deliveries, distinct: ids.size } satisfies ReceiverStats });
  }
});
process.on('disconnect', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
server.listen(0, '127.0.0.1', () => {
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks` });
});
