/**
 * @module Types derived from the generated document types: the options an operation takes (`path`,
 * `query`, `body`), what it answers, and the item of a paginated list. Nothing here is written per
 * operation, so an operation added to the document is typed as soon as the types are regenerated.
 */
import type { components, operations, paths } from './generated/openapi.js';
import type { OPERATIONS } from './generated/operations.js';

export type { components, operations, paths };

export type Schemas = components['schemas'];
export type Conversation = Schemas['Conversation'];
export type Message = Schemas['Message'];
export type Participant = Schemas['Participant'];
export type Contact = Schemas['Contact'];
export type Webhook = Schemas['Webhook'];
export type WebhookWithSecret = Schemas['WebhookWithSecret'];
export type Delivery = Schemas['Delivery'];

/** Every `operationId` of the document. */
export type OperationId = keyof operations & keyof typeof OPERATIONS;
/** The operations answering a cursor-paginated `{ items, cursor }` list. */
export type PaginatedOperationId = {
  [K in OperationId]: (typeof OPERATIONS)[K]['paginated'] extends true ? K : never;
}[OperationId];

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

type ParametersOf<O> = O extends { parameters: infer P } ? P : never;
/** The path parameters of an operation (`{ id }`), or never. */
export type PathParamsOf<O> = ParametersOf<O> extends { path: infer X } ? X : never;
/** The query parameters of an operation, or never. */
export type QueryOf<O> = ParametersOf<O> extends { query?: infer Q } ? Exclude<Q, undefined> : never;
/** The JSON body of an operation, or never. */
export type BodyOf<O> = O extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;

/** The gateway reads query parameters as strings; numbers and booleans are sent as their text. */
export type LooseQuery<T> = {
  [K in keyof T]: string extends T[K] ? T[K] | number | boolean : 'true' extends T[K] ? T[K] | boolean : T[K];
};

type Success = 200 | 201 | 202 | 204;
type ResponsesOf<O> = O extends { responses: infer R } ? R : never;
type ContentOf<R> = R extends { content: infer C }
  ? 'application/json' extends keyof C
    ? C['application/json' & keyof C]
    : Uint8Array
  : undefined;
/** What an operation resolves with: the JSON of its 2xx answers (a union when several), bytes for a download. */
export type AnswerOf<O> = {
  [S in keyof ResponsesOf<O> & Success]: ContentOf<ResponsesOf<O>[S]>;
}[keyof ResponsesOf<O> & Success];
/** The item of a paginated list. */
export type ItemOf<O> = AnswerOf<O> extends { items: (infer I)[] } ? I : never;

/** Options every call takes besides its parameters. */
export interface RequestOptions {
  /** The `Idempotency-Key` of a write (default: a new random one). Every retry reuses it. */
  idempotencyKey?: string;
  /** Extra request headers (e.g. `X-Request-Id`). */
  headers?: Record<string, string>;
  /** Cancels the call, retries included. */
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` (per attempt) for this call. */
  timeoutMs?: number;
  /** Overrides the client's `retries` for this call. */
  retries?: number;
}

type Optional<T> = Partial<T> extends T ? true : false;

/** The options of one operation: `path`, `query`, `body` as the document types them. */
export type CallOptions<O> = RequestOptions &
  ([PathParamsOf<O>] extends [never] ? { path?: undefined } : { path: PathParamsOf<O> }) &
  ([QueryOf<O>] extends [never]
    ? { query?: undefined }
    : Optional<QueryOf<O>> extends true
      ? { query?: LooseQuery<QueryOf<O>> }
      : { query: LooseQuery<QueryOf<O>> }) &
  ([BodyOf<O>] extends [never]
    ? { body?: undefined }
    : Optional<BodyOf<O>> extends true
      ? { body?: BodyOf<O> }
      : { body: BodyOf<O> });

type NeedsOptions<O> = [PathParamsOf<O>] extends [never]
  ? [BodyOf<O>] extends [never]
    ? [QueryOf<O>] extends [never]
      ? false
      : Optional<QueryOf<O>> extends true
        ? false
        : true
    : Optional<BodyOf<O>> extends true
      ? false
      : true
  : true;

/** The argument list of one operation: its options, optional when nothing in them is required. */
export type CallArgs<O> =
  NeedsOptions<O> extends true ? [options: CallOptions<O>] : [options?: CallOptions<O>];

/** The operation behind `method` + `path` (the document's `{id}` templates). */
export type PathOperation<P extends keyof paths, M extends HttpMethod> = Exclude<paths[P][M], undefined>;
/** The paths that have an operation for `method`. */
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: [PathOperation<P, M>] extends [never] ? never : P;
}[keyof paths];
