/**
 * @module The one table of which scope each `/v1` route needs (SPEC §10; docs/keys.md). The gate
 * enforces it right after the key is accepted, and the OpenAPI document shows each operation's scope
 * from it, so the two cannot disagree; a test walks the router and finds a scope for every route.
 *
 * A rule names a method (`*` = any) and a path: the path itself and everything below it. Rules are
 * tried in order and the first match wins, so a method-specific rule goes before the `*` rule of the
 * same path. A request that matches no rule is answered 404 for a managed key without reaching any
 * route: a route added without a rule here stays closed to managed keys (keys in `API_KEYS` have every
 * scope and are not checked).
 */
import type { Scope } from './model.js';

export interface ScopeRule {
  /** Upper case; `GET` also covers `HEAD`; `*` any method. */
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | '*';
  /** Lower case, as under `/v1`: the path and every path below it. */
  path: string;
  scope: Scope;
}

export const SCOPE_RULES: readonly ScopeRule[] = [
  // The chatbot API: sessions and messages.
  { method: 'POST', path: '/v1/sessions', scope: 'messages' },
  { method: 'POST', path: '/v1/messages', scope: 'messages' },
  // Conversations, their messages, export, handoff, participants, sending out through the channel.
  { method: 'GET', path: '/v1/conversations', scope: 'conversations:read' },
  { method: '*', path: '/v1/conversations', scope: 'conversations:write' },
  // Email attachments belong to the messages of conversations.
  { method: 'GET', path: '/v1/attachments', scope: 'conversations:read' },
  { method: '*', path: '/v1/contacts', scope: 'contacts' },
  { method: '*', path: '/v1/webhooks', scope: 'webhooks' },
  { method: '*', path: '/v1/keys', scope: 'admin' },
  // Bot configuration, its health and the test request (SPEC §10).
  { method: '*', path: '/v1/bot', scope: 'admin' },
];

function covers(rule: ScopeRule, method: string, path: string): boolean {
  if (rule.method !== '*' && rule.method !== method && !(rule.method === 'GET' && method === 'HEAD')) {
    return false;
  }
  return path === rule.path || path.startsWith(`${rule.path}/`);
}

/**
 * The scope a request needs, or undefined when no rule covers it. `path` is the whole path
 * (`/v1/contacts/ct_…`, or an Express template such as `/v1/contacts/:id`); matched without regard
 * to case or a trailing slash, as the router matches.
 */
export function scopeFor(method: string, path: string): Scope | undefined {
  let p = path.toLowerCase();
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  const m = method.toUpperCase();
  for (const rule of SCOPE_RULES) if (covers(rule, m, p)) return rule.scope;
  return undefined;
}
