/**
 * @module The channel contract. A channel adapter is one folder under `adapters/` exporting an
 * {@link AdapterModule}; registering it is one line in `adapters/index.ts`. The core never names a
 * concrete channel.
 *
 * Flow for an inbound provider webhook:
 *   1. the adapter's route receives the raw bytes and verifies the provider signature (fail closed);
 *   2. it normalizes the payload into {@link InboundMessage}s (conversation key + dedupe key);
 *   3. `ctx.ingest.accept()` resolves the conversation, dedupes, stores and queues in one step;
 *   4. only then the adapter answers the provider 2xx (a thrown error becomes a 5xx: the provider retries);
 *   5. the engine hands the message to the bot in order and calls the adapter's `send()` for each reply;
 *   6. provider status callbacks go through `ctx.delivery.report()` (monotonic).
 */
import type { Server } from 'node:http';
import type { RequestHandler, Router } from 'express';
import type { Logger } from 'pino';
import type { AppConfig } from '../../config/schema.js';
import type { GatewayDeps } from '../deps.js';
import type { EventHub } from './events.js';
import type { ChannelName, Conversation, DeliveryStatus, Message, Meta, Participant } from './model.js';
import type { AcceptResult, NewMessage, Store } from './store.js';
import type { VerifyMode } from './verify-mode.js';

/** An inbound message's content; `type` defaults to `user`, `direction` is always `inbound`. */
export type NewMessageInput = Omit<NewMessage, 'direction' | 'type' | 'delivery' | 'replyTo'> & {
  type?: 'user' | 'activity' | 'context';
};

/** One identity a sender carries, and who vouches for it (SPEC §9; see `src/contacts/`). */
export interface SenderIdentityFact {
  channel: ChannelName;
  address: string;
  verified: boolean;
  source: string;
}

/**
 * What the channel can say about the sender for contacts (SPEC §9): whether the provider or the site
 * vouches for the sender's own address, and further identities that come with them (a web-chat
 * token's `email` claim, a Slack profile email). Only verified identities ever link contacts.
 */
export interface SenderIdentity {
  verified: boolean;
  source: string;
  /** The sender's own address on the channel, when it is not `from.address` (web chat: the visitor). */
  address?: string;
  also?: SenderIdentityFact[];
}

/** A normalized inbound message, ready for the accept step. */
export interface InboundMessage {
  channel: ChannelName;
  /** The channel's key for the conversation (phone pair, Slack thread, email root, visitor). */
  channelRef: string;
  /** The provider's id for this message, unique within the channel (dedupe key). */
  dedupeKey: string;
  /** The customer who wrote; upserted into the conversation's participants. */
  from: Participant;
  /**
   * Other people the message is addressed to who are part of the conversation (an email's To/Cc
   * other than the gateway's own addresses): added as user participants when new.
   */
  participants?: Participant[];
  message: NewMessageInput;
  /** What the channel vouches for about the sender; without it the sender's address is unverified. */
  identity?: SenderIdentity;
  /** Meta to set on a newly created conversation. */
  conversationMeta?: Meta;
  /**
   * Automated mail, bounces, system notices: stored (as `activity` unless the type says otherwise)
   * but never queued for the bot.
   */
  skipBot?: boolean;
}

/** What an adapter learns from an accept: the message as stored (its `conversationId` included). */
export type IngestResult = AcceptResult;

export interface Ingest {
  /** @throws QueueFullError, StoreUnavailableError, ShuttingDown (all map to 503). */
  accept(inbound: InboundMessage): Promise<IngestResult>;
  /** Accepts into a conversation that is already known (the API channel, web chat's open conversation). */
  acceptInto(
    conversation: Pick<Conversation, 'id'>,
    channel: ChannelName,
    dedupeKey: string,
    message: NewMessage,
    options?: AcceptOptions,
  ): Promise<AcceptResult>;
  /**
   * For channels that resolve their conversation themselves (web chat): the sender with their
   * `contactId`, and, once the conversation is known, the conversation attached to that contact.
   */
  contactOf(channel: ChannelName, from: Participant, identity?: SenderIdentity): Promise<Participant>;
  /**
   * The conversation of a channel thread for a sender `contactOf` answered: the thread's own in
   * channel scope, the contact's in contact scope (SPEC §9).
   */
  resolveConversation(input: {
    channel: ChannelName;
    channelRef: string;
    from: Participant;
    identity?: SenderIdentity;
    meta?: Meta;
  }): Promise<{ conversation: Conversation; created: boolean }>;
  attachContact(
    conversation: Conversation,
    channel: ChannelName,
    from: Participant,
    identity?: SenderIdentity,
  ): Promise<Conversation>;
}

export interface AcceptOptions {
  /** Store the message without queueing it for the bot. */
  skipQueue?: boolean;
  /** The caller waits for the outcome (see `AcceptInput.notify`). */
  notify?: boolean;
  /** The channel thread the message came by; recorded on it in contact scope (SPEC §9). */
  channelRef?: string;
}

export interface DeliveryReporter {
  /** Records that the provider message `externalId` of `channel` moved to `status`; monotonic. */
  report(
    channel: ChannelName,
    externalId: string,
    status: DeliveryStatus,
    error?: { code?: string; message: string },
  ): Promise<{ found: boolean; changed: boolean }>;
  /**
   * Remembers which stored message a provider id belongs to (called by the engine after a send, unless
   * the adapter did it: {@link SendResult.remembered}).
   */
  remember(
    channel: ChannelName,
    externalId: string,
    conversationId: string,
    messageId: string,
  ): Promise<void>;
}

/** What the core hands every adapter. */
export interface ChannelContext {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly store: Store;
  readonly ingest: Ingest;
  readonly delivery: DeliveryReporter;
  readonly events: EventHub;
  /** `PUBLIC_URL` without a trailing slash. */
  readonly publicUrl: string;
  /**
   * The `/v1` API key check (`Authorization: Bearer <key>`, constant time, never logged), for adapter
   * routes that serve API clients rather than providers (e.g. attachment downloads).
   */
  readonly requireApiKey: RequestHandler;
  /** Counts a refused provider request (bad signature, stale timestamp ...) for `/metrics`. */
  rejected(channel: string, reason: string): void;
  /**
   * Records the verification mode a provider webhook runs in (SPEC §12) for `/metrics`, and warns at
   * start-up when it is `report`. Called once by each adapter that verifies provider signatures.
   */
  verificationMode(channel: string, mode: VerifyMode, setting: string): void;
  /**
   * Counts a request whose signature did not verify (`mode` tells whether it was refused or, in report
   * mode, accepted). In report mode it also logs the reason at warn; in enforce mode the adapter's
   * refusal does that, so each request is logged once.
   */
  verificationFailed(
    channel: string,
    reason: string,
    mode: VerifyMode,
    fields?: Record<string, unknown>,
  ): void;
}

export interface SendResult {
  /** The provider's id for the sent message (Twilio SID, Slack ts, Message-ID ...). */
  externalId?: string;
  /** Usually `sent`; `delivered` where handing over is delivery (web chat with an open socket). */
  status: 'sent' | 'delivered';
  /**
   * The adapter has mapped every provider id of the message itself ({@link DeliveryReporter.remember},
   * part by part, so a callback for an early part finds it while later ones are sent): the engine then
   * does not map `externalId` again.
   */
  remembered?: true;
}

/** Thrown by `send()` when the provider refused for good; the message ends `failed` with this reason. */
export class PermanentSendError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentSendError';
    this.code = code;
  }
}

/** Live signals a channel may render (web chat shows typing); optional for adapters. */
export type ChannelSignal = {
  type: 'typing';
  on: boolean;
  /** Who is typing, when it is a person (an agent, SPEC §8); the bot otherwise. */
  from?: { id: string; name?: string };
  /**
   * The customer message being answered, when the bot is (src/typing/): WhatsApp's indicators refer
   * to it by its provider id (`externalId`), Slack's assistant status to its thread.
   */
  about?: Pick<Message, 'id' | 'externalId' | 'meta'>;
};

export interface ChannelAdapter {
  /** Adapter name, e.g. `twilio`. */
  readonly name: string;
  /** Conversation channels this adapter serves, e.g. `['sms', 'whatsapp']`. */
  readonly channels: readonly ChannelName[];
  /** Mounts provider webhook routes. Mounted before any body parser: verify raw bytes yourself. */
  routes?(router: Router): void;
  /** Starts non-HTTP listeners or attaches to the HTTP server (WebSocket upgrade, SMTP). */
  start?(server: Server): Promise<void>;
  /** Stops taking work (SIGTERM); resolves when listeners are closed. */
  stop?(): Promise<void>;
  /**
   * Sends one outbound message. Retries transient failures itself; throws PermanentSendError when done
   * trying. Omitted by a channel with no transport of its own (the API channel: the app reads replies
   * through the API): storing a reply is delivering it, so the engine records such replies as `sent`
   * in the same store step that completes the message they answer.
   */
  send?(conversation: Conversation, message: Message): Promise<SendResult>;
  /**
   * Shows a live signal where the channel can (see src/channels/capabilities.ts). Best effort: a
   * returned promise settles when the provider request is done (the typing room waits for it before a
   * reply leaves, so no indicator follows the reply), and it does not reject.
   */
  signal?(conversation: Conversation, signal: ChannelSignal): void | Promise<void>;
  /**
   * Hands the adapter the gateway's services once they are all built (the engine, handoffs,
   * participants), for adapters that act for agents as well as customers (the Slack agents' desk).
   */
  attach?(deps: GatewayDeps): void;
  /** Lines for the start-up log: the URLs to paste into the provider's console. */
  describe(): string[];
}

/** The result of reading an adapter's settings. */
export type AdapterConfigResult<C> =
  | { enabled: false }
  | { enabled: true; config: C }
  | { enabled: false; errors: string[] };

export type Env = Readonly<Record<string, string | undefined>>;

export interface AdapterModule<C = unknown> {
  readonly name: string;
  /** The settings this adapter reads, for README/env.example checks. */
  readonly settings: readonly string[];
  /**
   * Reads and validates the adapter's settings. Enabled exactly when its required settings are present;
   * partially configured (e.g. a missing secret) is an error that stops the start (fail closed).
   */
  configure(env: Env): AdapterConfigResult<C>;
  create(ctx: ChannelContext, config: C): ChannelAdapter;
}

/** Helper so adapter modules are typed without casts. */
export function defineAdapter<C>(module: AdapterModule<C>): AdapterModule<C> {
  return module;
}
