/**
 * @module The one coded-error registry. Every error the gateway reports has a stable `GW_ERR_*` code,
 * an HTTP status and a title; the README's error table is checked against this list by a test.
 */

export interface ErrorSpec {
  status: number;
  title: string;
}

export const ERRORS = {
  GW_ERR_UNAUTHORIZED: { status: 401, title: 'Missing or invalid API key' },
  GW_ERR_INSUFFICIENT_SCOPE: { status: 403, title: 'The API key lacks the scope this route needs' },
  GW_ERR_NOT_FOUND: { status: 404, title: 'Resource not found' },
  GW_ERR_ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  GW_ERR_BAD_REQUEST: { status: 400, title: 'Malformed request' },
  GW_ERR_INVALID_JSON: { status: 400, title: 'Request body is not valid JSON' },
  GW_ERR_VALIDATION: { status: 400, title: 'Request failed validation' },
  GW_ERR_INVALID_CURSOR: { status: 400, title: 'Malformed pagination cursor' },
  GW_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  GW_ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  GW_ERR_CONFLICT: { status: 409, title: 'Conflicting state' },
  GW_ERR_CHANNEL_UNAVAILABLE: { status: 409, title: 'The conversation has no channel that can send' },
  GW_ERR_NOT_IN_HANDOFF: { status: 409, title: 'The conversation is not in handoff' },
  GW_ERR_NOT_AN_AGENT: { status: 422, title: 'The participant is not an agent' },
  GW_ERR_QUEUE_FULL: { status: 503, title: 'Queue limit reached, retry later' },
  GW_ERR_STORE_UNAVAILABLE: { status: 503, title: 'Storage backend unavailable' },
  GW_ERR_SHUTTING_DOWN: { status: 503, title: 'Gateway is shutting down' },
  GW_ERR_SIGNATURE_INVALID: { status: 403, title: 'Webhook signature did not verify' },
  GW_ERR_CSRF_REFUSED: { status: 403, title: 'Cross-site request refused' },
  GW_ERR_WEBHOOK_TARGET_REFUSED: { status: 400, title: 'Webhook target address not allowed' },
  GW_ERR_MERGE_SELF: { status: 422, title: 'A contact cannot be merged into itself' },
  GW_ERR_IDENTITY_NOT_FOUND: { status: 404, title: 'The contact has no such identity' },
  GW_ERR_UNMERGE_LAST_IDENTITY: { status: 422, title: 'The contact has no other identity to split it from' },
  GW_ERR_RATE_LIMITED: { status: 429, title: 'Rate limit exceeded for this API key' },
  GW_ERR_IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key reused for another request' },
  GW_ERR_WHATSAPP_WINDOW_CLOSED: {
    status: 422,
    title: "Outside the WhatsApp customer's 24-hour window only a template can be sent",
  },
  GW_ERR_IDEMPOTENCY_IN_FLIGHT: { status: 409, title: 'A request with this Idempotency-Key is in progress' },
  GW_ERR_PRECONDITION_FAILED: { status: 412, title: 'The resource changed since it was read (If-Match)' },
  GW_ERR_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error the HTTP layer renders as `application/problem+json`. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  /** Extra members for the problem body (e.g. `field`, `retryAfter`). */
  readonly extra: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    detail?: string,
    extra: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(detail ?? ERRORS[code].title, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.title = ERRORS[code].title;
    this.extra = extra;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Thrown by a store when the configured queue limit is reached (SPEC §4.5). */
export class QueueFullError extends GatewayError {
  constructor(retryAfterS: number) {
    super('GW_ERR_QUEUE_FULL', 'The queue is at its configured limit', { retryAfter: retryAfterS });
  }
}

/** The Retry-After of a store that cannot serve now: failovers and reconnects take seconds. */
export const STORE_RETRY_AFTER_S = 1;

/**
 * Thrown by a store when its backend cannot be reached or cannot serve now (failover, a write its
 * replicas did not confirm in time). The caller retries; dedupe makes a retried accept safe.
 */
export class StoreUnavailableError extends GatewayError {
  constructor(cause: unknown) {
    super(
      'GW_ERR_STORE_UNAVAILABLE',
      'The storage backend is unreachable',
      { retryAfter: STORE_RETRY_AFTER_S },
      { cause },
    );
  }
}
