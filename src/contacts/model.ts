/**
 * @module Contacts and cross-channel identity (SPEC §9): the records, and the identity facts a
 * channel hands the core with each inbound message.
 */
import type { ChannelName, Meta } from '../core/model.js';

/**
 * Who vouches for an identity: `twilio` (the carrier's sender number), `twilio_waid` (WhatsApp's
 * `WaId`), `webchat_jwt` (a claim of the site's signed token, with its `*_verified` claim),
 * `smtp_dkim` (a DKIM signature the gateway verified for the From domain), `mailgun_dkim` (Mailgun's
 * DKIM check), `slack_profile` (the profile email Slack reports), `channel` (the channel's own id for
 * the sender, vouched for by nothing beyond the channel), `api` (set by hand), `none`.
 */
export type IdentitySource = string;

export interface Identity {
  channel: ChannelName;
  /** The channel's address for the person: E.164 number, email address, Slack `T:U`, visitor id. */
  address: string;
  /** True when a provider or the site vouched for it (the only identities that link on their own). */
  verified: boolean;
  source: IdentitySource;
}

/** One merge or unmerge, as recorded on the contact that took part in it. */
export interface ContactChange {
  op: 'merged' | 'unmerged';
  /** The other contact: the one merged in, or the one the identity went to. */
  contactId: string;
  identities: Array<Pick<Identity, 'channel' | 'address'>>;
  by: string;
  reason: string | null;
  at: string;
}

export interface Contact {
  id: string;
  name: string | null;
  identities: Identity[];
  meta: Meta;
  /** Merges and unmerges this contact took part in, oldest first. */
  history: ContactChange[];
  createdAt: string;
  updatedAt: string;
}

/** A pair of contacts that share an identifier not verified on both sides. */
export interface MergeSuggestion {
  contactIds: [string, string];
  /** E.g. `email:ann@example.com unverified on one side`. */
  reason: string;
  at: string;
}

/**
 * What a channel tells the core about the sender of an inbound message: the sender's own identity
 * and any further identifiers that come with it (a web-chat token's email claim, a Slack profile
 * email), each with whether it is vouched for and by whom.
 */
export interface InboundIdentity {
  verified: boolean;
  source: IdentitySource;
  /** Further identities the sender carries (`email` / `sms` addresses), each vouched for or not. */
  also?: Identity[];
}

/** The contact as the bot sees it (SPEC §9). */
export interface BotContact {
  id: string;
  name: string | null;
  identities: Identity[];
  meta: Meta;
}

export function identityKey(i: Pick<Identity, 'channel' | 'address'>): string {
  return `${i.channel}:${i.address}`;
}

/** Splits `<channel>:<address>` (the address may itself hold colons). */
export function parseIdentityKey(key: string): { channel: string; address: string } | undefined {
  const at = key.indexOf(':');
  if (at <= 0 || at === key.length - 1) return undefined;
  return { channel: key.slice(0, at), address: key.slice(at + 1) };
}
