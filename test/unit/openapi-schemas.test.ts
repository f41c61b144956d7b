/**
 * The response schemas the OpenAPI document is built from say the same as the records the code
 * answers with: each schema's type and the record's type are assignable both ways, so a field added
 * to a record (or a schema) without the other fails the type check. The runtime half, real answers
 * against the document, is in test/integration/api-openapi.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { Contact, MergeSuggestion } from '../../src/contacts/model.js';
import type { Conversation, Message, Participant } from '../../src/core/model.js';
import type { Page } from '../../src/core/store.js';
import type { contactResponse, suggestionsResponse } from '../../src/http/api/contacts.js';
import { buildOpenApiDocument } from '../../src/http/api/openapi.js';
import type {
  conversationResponse,
  messageResponse,
  pageResponse,
  participantResponse,
} from '../../src/http/api/schemas.js';
import type { deliveryResponse, endpointResponse } from '../../src/webhooks/routes.js';
import type { DeliveryView, EndpointView } from '../../src/webhooks/service.js';

/**
 * `true` exactly when `A` and `B` are the same type, optional members included (mutual assignability
 * would let a schema miss an optional field).
 */
type Same<A, B> =
  (<T>() => T extends Flat<A> ? 1 : 2) extends <T>() => T extends Flat<B> ? 1 : 2 ? true : false;
/** `A` with its members spelled out, nested objects too, so interfaces and inferred types compare. */
type Flat<A> = A extends readonly (infer I)[]
  ? Flat<I>[]
  : A extends object
    ? { [K in keyof A]: Flat<A[K]> }
    : A;

const same: [
  Same<z.output<typeof conversationResponse>, Conversation>,
  Same<z.output<typeof messageResponse>, Message>,
  Same<z.output<typeof participantResponse>, Participant>,
  Same<z.output<ReturnType<typeof pageResponse<typeof conversationResponse>>>, Page<Conversation>>,
  Same<z.output<typeof contactResponse>, Contact>,
  Same<z.output<typeof suggestionsResponse>['items'][number], MergeSuggestion>,
  Same<z.output<typeof endpointResponse>, EndpointView>,
  Same<z.output<typeof deliveryResponse>, DeliveryView>,
] = [true, true, true, true, true, true, true, true];

describe('response schemas', () => {
  it('match the records they describe', () => {
    expect(same.every(Boolean)).toBe(true);
  });

  it('give the same document every time', () => {
    expect(JSON.stringify(buildOpenApiDocument('1'))).toBe(JSON.stringify(buildOpenApiDocument('1')));
  });
});
