/**
 * @module The linking rules (SPEC §9), pure. An identity links to another contact on its own only
 * through a verified identifier both sides share: the same E.164 number for SMS and WhatsApp (Twilio's
 * or Meta's Cloud API), the same email address for mail, a web-chat claim or a Slack profile. Anything
 * else is at most a suggestion.
 */
import type { Identity } from './model.js';

const E164 = /^\+[1-9]\d{5,14}$/;

/** Channels whose address is the customer's phone number: Twilio SMS and WhatsApp, and Meta's Cloud API. */
const PHONE_CHANNELS: ReadonlySet<string> = new Set(['sms', 'whatsapp', 'whatsapp_cloud']);

/**
 * The identifier an identity shares with other channels, if any: `phone:+E164` for SMS and WhatsApp
 * numbers, `email:<address>` for mail addresses. Web-chat visitors and Slack users have none of their
 * own: what links them is the email or number that comes with them.
 */
export function linkKeyOf(i: Pick<Identity, 'channel' | 'address'>): string | null {
  if (PHONE_CHANNELS.has(i.channel) && E164.test(i.address)) return `phone:${i.address}`;
  if (i.channel === 'email' && i.address.includes('@')) return `email:${i.address.toLowerCase()}`;
  return null;
}

/**
 * The index key of an identity. An unverified identity is kept apart from the verified one with the
 * same address, and apart from unverified ones that came another way (`~<source>:` in front): mail
 * that merely claims an address (no passing DKIM signature) never lands on the contact that proved
 * it, nor on the contact of a web-chat visitor who claimed the same address unverified. Each is its
 * own contact; what they share becomes a merge suggestion.
 */
export function indexKeyOf(i: Pick<Identity, 'channel' | 'address' | 'verified' | 'source'>): string {
  return `${i.verified ? '' : `~${i.source}:`}${i.channel}:${i.address}`;
}

/** Addresses compared as the channel compares them: mail addresses case-insensitively. */
export function normalizeAddress(channel: string, address: string): string {
  return channel === 'email' ? address.trim().toLowerCase() : address.trim();
}

/** The same identity (channel, address and whether it is verified). */
export function sameIdentity(a: Identity, b: Identity): boolean {
  return indexKeyOf(a) === indexKeyOf(b);
}
