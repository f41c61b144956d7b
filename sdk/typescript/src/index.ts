/**
 * @module Switchboard: a typed client for the gateway's `/v1` API and a verifier for its outbound
 * webhooks. No runtime dependencies: global `fetch` and WebCrypto (Node 20+).
 */
export { type OperationMethods, Paginator, Switchboard, type SwitchboardOptions, VERSION } from './client.js';
export {
  BadRequestError,
  ConflictError,
  type ErrorCode,
  type FieldError,
  ForbiddenError,
  InternalServerError,
  isSwitchboardError,
  NotFoundError,
  PayloadTooLargeError,
  type Problem,
  RateLimitedError,
  ServiceUnavailableError,
  SwitchboardConnectionError,
  SwitchboardError,
  UnauthorizedError,
  UnprocessableError,
  UnsupportedMediaTypeError,
} from './errors.js';
export { OPERATIONS } from './generated/operations.js';
export type * from './types.js';
export {
  type BodyLike,
  type HeadersLike,
  signWebhook,
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookEvent,
  type WebhookEventType,
  WebhookVerificationError,
} from './webhooks.js';
