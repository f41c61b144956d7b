/**
 * The open-loop load of {@link pacedOffThread}, on its own thread: API message bodies over the given
 * conversations, each with a `clientMessageId` made unique by the spec's prefix.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type MessageLoad, paced } from './lib.js';

const spec = workerData as MessageLoad;
let n = 0;
const result = await paced({
  url: spec.url,
  headers: spec.headers,
  connections: spec.connections,
  durationS: spec.durationS,
  rate: spec.rate,
  request: () => {
    const i = n++;
    return {
      body: JSON.stringify({
        conversationId: spec.conversations[i % spec.conversations.length],
        text: `message ${i}`,
        clientMessageId: `${spec.idPrefix}${i}`,
        wait: 0,
      }),
    };
  },
});
parentPort!.postMessage(result);
