/**
 * The console API client. The CSRF token lives in this module only (never in the page's storage),
 * and so does nothing else of the session: the session itself is an HttpOnly cookie the page cannot
 * read. Any 401 tells the app the session is gone; what the agent typed stays where it is.
 */

export type { Contact, Identity, MergeSuggestion } from '../../src/contacts/model.js';
export type {
  Attachment,
  ChannelName,
  Conversation,
  DeliveryStatus,
  Message,
  Participant,
} from '../../src/core/model.js';

export interface SessionInfo {
  agent: string;
  keyName: string;
  scopes: string[];
  csrfToken: string;
  createdAt: string;
}

export interface Page<T> {
  items: T[];
  cursor: string | null;
}

export interface ChannelQueue {
  channel: string;
  depth: number;
  lagMs: number;
  handoff: number;
}

export interface FailedDelivery {
  id: string;
  webhookId: string;
  eventType: string;
  conversationId: string | null;
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
  deadAt: string | null;
  createdAt: string;
}

export interface Operations {
  at: string;
  queue: { pending: number; channels: ChannelQueue[]; scanned: number };
  bot: {
    kind: 'demo' | 'http';
    breaker: 'closed' | 'open' | 'half-open' | 'none';
    healthy: boolean;
    outcomes: Record<string, number>;
  };
  webhooks: Array<{
    endpoint: { id: string; url: string; enabled: boolean; description: string | null; events: string[] };
    failed: FailedDelivery[];
    retrying: number;
  }>;
}

/** A refusal from the gateway, with its problem+json detail. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(message: string, status: number, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Thrown for a 401: the session is unknown or expired. */
export class SignedOut extends ApiError {}

let csrfToken: string | undefined;
let onSignedOut: () => void = () => {};

/** Called once by the app: what to do when any request finds the session gone. */
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

async function problem(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => ({}))) as { detail?: string; code?: string };
  const message = body.detail ?? `${res.status} ${res.statusText}`;
  return res.status === 401
    ? new SignedOut(message, 401, body.code)
    : new ApiError(message, res.status, body.code);
}

async function request<T>(url: string, method: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw await problem(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** A call to `/console/api`; a 401 signs the page out (and still throws). */
export async function api<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
  try {
    return await request<T>(`/console/api${path}`, method, body);
  } catch (err) {
    if (err instanceof SignedOut) onSignedOut();
    throw err;
  }
}

/** The current session, or undefined when signed out. */
export async function currentSession(): Promise<SessionInfo | undefined> {
  try {
    const session = await request<SessionInfo>('/console/session', 'GET');
    csrfToken = session.csrfToken;
    return session;
  } catch (err) {
    if (err instanceof SignedOut) return undefined;
    throw err;
  }
}

export async function signIn(key: string, name: string): Promise<SessionInfo> {
  const session = await request<SessionInfo>('/console/session', 'POST', {
    key,
    ...(name.trim() ? { name: name.trim() } : {}),
  });
  csrfToken = session.csrfToken;
  return session;
}

export async function signOut(): Promise<void> {
  await request<void>('/console/session', 'DELETE').catch(() => {});
  csrfToken = undefined;
}
