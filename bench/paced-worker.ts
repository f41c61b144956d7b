/**
 * The open-loop load of {@link pacedOffThread}, in its own process: the API message bodies of
 * {@link messageBody}. The load's description comes as the first IPC message; its result goes back
 * as one.
 */
import { once } from 'node:events';
import { type MessageLoad, messageBody, paced } from './lib.js';

const [spec] = (await once(process, 'message')) as [MessageLoad];
let n = 0;
const result = await paced({
  url: spec.url,
  headers: spec.headers,
  connections: spec.connections,
  durationS: spec.durationS,
  rate: spec.rate,
  request: () => ({ body: messageBody(spec.conversations, spec.idPrefix, n++) }),
});
process.send!(result, () => process.disconnect());
