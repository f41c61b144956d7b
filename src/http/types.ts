/** @module Express type augmentation: what the gateway's middleware attaches to each request. */
import type { Logger } from 'pino';

declare global {
  namespace Express {
    interface Request {
      /** The request id (inbound `X-Request-Id` when safe, else generated); echoed in the response. */
      id: string;
      /** A child logger bound to this request's id, made on first use (see `defineRequestLogger`). */
      log: Logger;
    }
  }
}
