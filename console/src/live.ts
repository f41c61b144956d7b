/**
 * The live feed: Server-Sent Events from `/console/api/stream`. A broken stream is reopened with
 * exponential backoff (1 s doubling to 30 s, with jitter); before reopening, the session is checked,
 * and a signed-out session hands over to the sign-in instead of retrying.
 */
import { currentSession } from './api.js';

export interface Notice {
  type: string;
  conversationId: string;
  seq: number;
  at: string;
  messageId?: string;
  changes?: string[];
}

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LiveHandlers {
  notice(notice: Notice): void;
  state(state: LiveState): void;
  signedOut(): void;
  /** The stream (re)opened: anything missed meanwhile should be read again. */
  resync(): void;
}

export function connectLive(handlers: LiveHandlers): () => void {
  let source: EventSource | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let closed = false;

  const open = () => {
    if (closed) return;
    handlers.state(failures === 0 ? 'connecting' : 'reconnecting');
    source = new EventSource('/console/api/stream');
    source.addEventListener('ready', () => {
      if (failures > 0) handlers.resync();
      failures = 0;
      handlers.state('live');
    });
    source.addEventListener('change', (event) => {
      try {
        handlers.notice(JSON.parse((event as MessageEvent<string>).data) as Notice);
      } catch {
        // A notice that does not parse is skipped; the next read catches up.
      }
    });
    source.addEventListener('signed-out', () => {
      stop();
      handlers.signedOut();
    });
    source.onerror = () => {
      source?.close();
      source = undefined;
      failures += 1;
      handlers.state('reconnecting');
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5));
      timer = setTimeout(
        () => {
          void currentSession()
            .then((session) => {
              if (closed) return;
              if (session) open();
              else {
                stop();
                handlers.signedOut();
              }
            })
            .catch(() => open());
        },
        delay / 2 + Math.random() * (delay / 2),
      );
    };
  };

  const stop = () => {
    closed = true;
    clearTimeout(timer);
    source?.close();
    source = undefined;
  };

  open();
  return stop;
}
