/**
 * @module Typed errors for the gateway's problem+json answers (RFC 9457). Every refusal is a
 * `SwitchboardError` carrying the stable `code` (`GW_ERR_...`) to branch on; a subclass per status
 * lets callers `catch` by kind, and `isSwitchboardError(err, code)` narrows by code.
 */
import type { components } from './generated/openapi.js';

/** Every problem `code` the document lists. */
export type ErrorCode = components['schemas']['Problem']['code'];

/** One failing field of a `GW_ERR_VALIDATION` answer. */
export interface FieldError {
  field: string;
  message: string;
}

/** The problem document as answered (unknown members kept). */
export type Problem = Partial<components['schemas']['Problem']> & Record<string, unknown>;

export interface SwitchboardErrorInit {
  status?: number;
  code?: ErrorCode | (string & {});
  title?: string;
  detail?: string;
  requestId?: string;
  retryAfter?: number;
  errors?: FieldError[];
  problem?: Problem;
  cause?: unknown;
}

/**
 * A request the gateway refused, or one that got no answer. `status` is the HTTP status (undefined
 * when no answer arrived), `code` the stable problem code, `detail` the text for people, `requestId`
 * the `X-Request-Id` to quote, `retryAfter` the seconds the gateway asked to wait (429/503/409 in
 * flight), `errors` the `{ field, message }` list of a validation error, `problem` the whole document.
 */
export class SwitchboardError extends Error {
  readonly status: number | undefined;
  readonly code: ErrorCode | (string & {}) | undefined;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  readonly requestId: string | undefined;
  readonly retryAfter: number | undefined;
  readonly errors: FieldError[];
  readonly problem: Problem;

  constructor(message: string, init: SwitchboardErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.title = init.title;
    this.detail = init.detail;
    this.requestId = init.requestId;
    this.retryAfter = init.retryAfter;
    this.errors = init.errors ?? [];
    this.problem = init.problem ?? {};
  }

  /** The fields a validation error names (dotted paths, query parameters or `(body)`). */
  get fields(): string[] {
    return this.errors.map((e) => e.field);
  }
}

/** No answer: the connection was refused or reset, or the attempt timed out (after the retries). */
export class SwitchboardConnectionError extends SwitchboardError {}
/** 400: validation (`GW_ERR_VALIDATION`, see `errors`), bad JSON, bad cursor, refused target. */
export class BadRequestError extends SwitchboardError {}
/** 401: missing or wrong API key. */
export class UnauthorizedError extends SwitchboardError {}
/** 403: the key may not do this. */
export class ForbiddenError extends SwitchboardError {}
/** 404: the conversation, message, contact, webhook or delivery does not exist. */
export class NotFoundError extends SwitchboardError {}
/** 409: conflicts with the current state (e.g. `GW_ERR_NOT_IN_HANDOFF`). */
export class ConflictError extends SwitchboardError {}
/** 413: the body is over the gateway's limit. */
export class PayloadTooLargeError extends SwitchboardError {}
/** 415: the body is not `application/json`. */
export class UnsupportedMediaTypeError extends SwitchboardError {}
/** 422: understood but refused (e.g. `GW_ERR_MERGE_SELF`, `GW_ERR_IDEMPOTENCY_KEY_REUSED`). */
export class UnprocessableError extends SwitchboardError {}
/** 429: over the key's rate limit; `retryAfter` says when to come back. */
export class RateLimitedError extends SwitchboardError {}
/** 500: the gateway failed; quote `requestId`. */
export class InternalServerError extends SwitchboardError {}
/** 503: queue full, store unavailable or shutting down; `retryAfter` says when to come back. */
export class ServiceUnavailableError extends SwitchboardError {}

const BY_STATUS: Readonly<Record<number, typeof SwitchboardError>> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableError,
  429: RateLimitedError,
  500: InternalServerError,
  503: ServiceUnavailableError,
};

/** True when `err` is a `SwitchboardError`, and with `code` when it carries that code. */
export function isSwitchboardError<C extends ErrorCode>(
  err: unknown,
  code?: C,
): err is SwitchboardError & { code: C } {
  return err instanceof SwitchboardError && (code === undefined || err.code === code);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The error for one non-2xx answer. */
export function errorFor(
  status: number,
  problem: Problem,
  requestId: string | undefined,
  retryAfter: number | undefined,
): SwitchboardError {
  const Class = BY_STATUS[status] ?? SwitchboardError;
  const code = str(problem.code);
  const detail = str(problem.detail);
  const errors = Array.isArray(problem.errors)
    ? problem.errors.filter((e): e is FieldError => typeof e === 'object' && e !== null && 'field' in e)
    : [];
  const retry = retryAfter ?? (typeof problem.retryAfter === 'number' ? problem.retryAfter : undefined);
  return new Class(`${status} ${code ?? 'HTTP error'}${detail ? `: ${detail}` : ''}`, {
    status,
    code,
    title: str(problem.title),
    detail,
    requestId: requestId ?? str(problem.requestId),
    retryAfter: retry,
    errors,
    problem,
  });
}
