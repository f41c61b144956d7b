/**
 * The open-loop load of {@link pacedOffThread}, on its own thread: the API message bodies of
 * {@link messageBody}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type MessageLoad, messageBody, paced } from './lib.js';

const spec = workerData as MessageLoad;
let n = 0;
const result = await paced({
  url: spec.url,
  headers: spec.headers,
  connections: spec.connections,
  durationS: spec.durationS,
  rate: spec.rate,
  request: () => ({ body: messageBody(spec.conversations, spec.idPrefix, n++) }),
});
parentPort!.postMessage(result);
