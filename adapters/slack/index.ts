/**
 * @module The Slack channel (SPEC §2, §5): Events API and interactivity webhooks in, threaded
 * `chat.postMessage` replies out.
 *
 * Every request: read the raw bytes → verify the v0 signature and timestamp window → parse → classify
 * (inbound.ts) → accept into the queue → 200. Slack retries anything not acknowledged within 3 seconds
 * (CHANNELS.md §2.3), so nothing here waits for the bot; input deliberately ignored (other workspaces,
 * unknown event types, the bot's own posts) is answered 200 with nothing stored, which stops the retries.
 */
import express, { type Request, type Response, type Router } from 'express';
import {
  type ChannelAdapter,
  type ChannelContext,
  type ChannelSignal,
  type Conversation,
  defineAdapter,
  detectEntities,
  extend,
  isGatewayError,
  type Message,
  type SenderIdentity,
  type SendResult,
  untrusted,
} from '../../src/core/index.js';
import { LruCache } from '../../src/core/lru.js';
import type { GatewayDeps } from '../../src/deps.js';
import { pacingFor } from '../../src/pacing/index.js';
import { tracedCheck, tracingOn } from '../../src/tracing/index.js';
import { readPlainBody } from './body.js';
import { configure, SLACK_SETTINGS, type SlackConfig } from './config.js';
import { SlackDesk } from './desk.js';
import { classifyEvent, classifyInteraction, type SlackDecision, type SlackMessageRef } from './inbound.js';
import { createWebApi, type SlackApi, SlackCallError, SlackSender } from './outbound.js';
import { createStatusApi, type StatusApi, setTypingStatus } from './status.js';
import { verifySlackRequest } from './verify.js';

/** Events API Request URL path (SPEC §5). */
export const EVENTS_PATH = '/webhooks/slack/events';
/** Interactivity Request URL path (SPEC §5). */
export const INTERACTIONS_PATH = '/webhooks/slack/interactions';

/** Edits and deletes can come long after a message; its index entry lives as long as delivery ids do. */
const INDEX_TTL_S = 30 * 86_400;
/** Display names change rarely; a day keeps users.info calls off the ack path almost always. */
const NAME_TTL_S = 86_400;
/** A lookup Slack refused for good (e.g. no `users:read` scope) is not asked again for an hour. */
const NAME_MISS_TTL_S = 3_600;
/**
 * Profiles this process remembers, and for how long: the kv cache's answer is read once a minute per
 * person rather than before every message, which took a Redis round trip off most acks. A contact's
 * erasure in this process forgets them all at once; one in another process is outlived by a minute.
 */
const PROFILE_MEMO_MS = 60_000;
const PROFILE_MEMO_SIZE = 10_000;

/** kv key of a Slack message's stored copy: `{conversationId} {messageId}`. */
const messageKey = (ref: SlackMessageRef) => `slack:msg:${ref.team}:${ref.channel}:${ref.ts}`;
/** kv key marking a channel thread as a conversation with the bot. */
const threadKey = (channelRef: string) => `slack:thread:${channelRef}`;
/** kv key of a person's cached users.info answer: `{ name?, email? }` JSON. */
const nameKey = (team: string, user: string) => `slack:profile:${team}:${user}`;

function parseProfile(raw: string): { name?: string; email?: string } {
  try {
    const p = JSON.parse(raw) as { name?: unknown; email?: unknown };
    return {
      ...(typeof p.name === 'string' && p.name ? { name: p.name } : {}),
      ...(typeof p.email === 'string' && p.email ? { email: p.email } : {}),
    };
  } catch {
    return {};
  }
}

class SlackAdapter implements ChannelAdapter {
  readonly name = 'slack';
  readonly channels = ['slack'] as const;
  readonly #ctx: ChannelContext;
  readonly #config: SlackConfig;
  readonly #api: SlackApi;
  readonly #sender: SlackSender;
  readonly #raw: express.RequestHandler;
  readonly #bodyLimit: number;
  #botUserId: string | undefined;
  #identity: Promise<void> | undefined;
  /** The agents' desk, with SLACK_AGENT_CHANNEL. */
  readonly #desk: SlackDesk | undefined;
  /** Requests accepted in report mode although their signature did not verify. */
  readonly #unverified = new WeakSet<Request>();
  /** The assistant thread status, with SLACK_ASSISTANT=true. */
  readonly #status: StatusApi | undefined;
  /** users.info answers by `team:user`, with when they stop counting (see {@link PROFILE_MEMO_MS}). */
  #profiles = new LruCache<string, { profile: { name?: string; email?: string }; until: number }>(
    PROFILE_MEMO_SIZE,
  );

  constructor(ctx: ChannelContext, config: SlackConfig, api: SlackApi, status?: StatusApi) {
    this.#ctx = ctx;
    this.#status = config.assistant ? (status ?? createStatusApi(config)) : undefined;
    this.#config = config;
    this.#api = api;
    this.#sender = new SlackSender(api, { logger: ctx.logger, gate: pacingFor(ctx.store, ctx.logger).gate });
    // Any content type: the signature decides, and it is checked on exactly these bytes.
    this.#raw = express.raw({ type: () => true, limit: ctx.config.BODY_LIMIT_BYTES });
    this.#bodyLimit = ctx.config.BODY_LIMIT_BYTES;
    ctx.verificationMode('slack', config.verify, 'SLACK_VERIFY');
    this.#desk = config.agentChannel
      ? new SlackDesk({ channel: config.agentChannel, api, ctx, profile: (t, u) => this.#user(t, u) })
      : undefined;
  }

  attach(deps: GatewayDeps): void {
    this.#desk?.attach(deps);
    // An erased contact's profile goes from memory as it goes from the kv cache (contacts/sweep.ts).
    deps.events.on((event) => {
      if (event.type === 'contact.deleted') this.#profiles = new LruCache(PROFILE_MEMO_SIZE);
    });
  }

  routes(router: Router): void {
    router.post(EVENTS_PATH, (req, res) => this.#handle(req, res, 'event'));
    router.post(INTERACTIONS_PATH, (req, res) => this.#handle(req, res, 'interaction'));
  }

  /** Learns the bot's user id (auth.test) without holding up the start; events also name it. */
  async start(): Promise<void> {
    this.#identity = this.#api.authTest().then(
      (me) => {
        this.#botUserId = me.userId;
        this.#ctx.logger.info(
          { botUserId: me.userId, teamId: me.teamId },
          'slack: bot token verified (auth.test)',
        );
        if (this.#config.teamId && me.teamId && me.teamId !== this.#config.teamId) {
          this.#ctx.logger.warn(
            { teamId: me.teamId, configured: this.#config.teamId },
            'slack: SLACK_BOT_TOKEN belongs to another workspace than SLACK_TEAM_ID',
          );
        }
      },
      (err: unknown) => {
        const code = err instanceof SlackCallError ? err.slackError : 'unknown_error';
        this.#ctx.logger.error({ code }, 'slack: auth.test failed; check SLACK_BOT_TOKEN and SLACK_API_URL');
      },
    );
  }

  async stop(): Promise<void> {
    await Promise.all([this.#identity, this.#desk?.stop()]);
  }

  send(conversation: Conversation, message: Message): Promise<SendResult> {
    return this.#sender.send(conversation, message);
  }

  signal(conversation: Conversation, signal: ChannelSignal): Promise<void> | undefined {
    if (!this.#status || signal.type !== 'typing') return undefined;
    return setTypingStatus(this.#status, this.#ctx.logger, conversation, signal);
  }

  describe(): string[] {
    return [
      `slack: Event Subscriptions Request URL: ${this.#ctx.publicUrl}${EVENTS_PATH}`,
      `slack: Interactivity Request URL: ${this.#ctx.publicUrl}${INTERACTIONS_PATH}`,
    ];
  }

  // --- request handling --------------------------------------------------------------------------

  async #handle(req: Request, res: Response, kind: 'event' | 'interaction'): Promise<void> {
    let body: Buffer;
    try {
      body = await this.#readRaw(req, res);
    } catch (err) {
      const status = (err as { status?: number }).status === 413 ? 413 : 400;
      this.#refuse(req, res, status, status === 413 ? 'body_too_large' : 'unreadable_body');
      return;
    }
    const input = {
      signingSecret: this.#config.signingSecret,
      rawBody: body,
      signature: header(req, 'x-slack-signature'),
      timestamp: header(req, 'x-slack-request-timestamp'),
    };
    // SPEC §12: a `verify` span in the webhook's trace while tracing is on.
    const verified = tracingOn()
      ? tracedCheck(this.#config.verify, () => verifySlackRequest(input))
      : verifySlackRequest(input);
    if (!verified.ok) {
      this.#ctx.verificationFailed('slack', verified.reason, this.#config.verify, { path: req.path });
      if (this.#config.verify === 'enforce') {
        this.#refuse(req, res, 401, verified.reason);
        return;
      }
      // Report mode (SPEC §12): accepted, but nothing it says about the sender is trusted.
      this.#unverified.add(req);
    }
    const payload = kind === 'event' ? parseJson(body.toString('utf8')) : parseInteractionForm(body);
    if (!payload.ok) {
      this.#refuse(req, res, 400, payload.reason);
      return;
    }
    const opts = { botUserId: this.#botUserId, teamId: this.#config.teamId };
    const decision =
      kind === 'event' ? classifyEvent(payload.value, opts) : classifyInteraction(payload.value, opts);
    try {
      await this.#apply(req, res, decision);
    } catch (err) {
      // Not kept: a 5xx makes Slack retry, and the dedupe key makes the retry safe.
      const status = isGatewayError(err) && err.status >= 500 ? err.status : 500;
      const retryAfter = isGatewayError(err) ? err.extra.retryAfter : undefined;
      if (typeof retryAfter === 'number') res.set('Retry-After', String(retryAfter));
      this.#ctx.logger[status === 503 ? 'warn' : 'error'](
        { err, status, path: req.path, retryNum: header(req, 'x-slack-retry-num') },
        'slack request not accepted; Slack will retry',
      );
      res.status(status).end();
    }
  }

  #readRaw(req: Request, res: Response): Promise<Buffer> {
    const plain = readPlainBody(req, this.#bodyLimit);
    if (plain) return plain;
    return new Promise((resolve, reject) => {
      this.#raw(req, res, (err?: unknown) => {
        if (err) reject(err);
        else resolve(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
      });
    });
  }

  /** Answers a refused request: logged once at warn with the reason, counted, nothing stored. */
  #refuse(req: Request, res: Response, status: number, reason: string): void {
    this.#ctx.logger.warn({ reason, status, path: req.path }, 'slack request refused');
    this.#ctx.rejected('slack', reason);
    // Slack retries every non-2xx; a malformed body will not get better (CHANNELS.md §2.3).
    if (status === 400 || status === 413) res.set('X-Slack-No-Retry', '1');
    res.status(status).end();
  }

  async #apply(req: Request, res: Response, decision: SlackDecision): Promise<void> {
    switch (decision.kind) {
      case 'challenge':
        res.status(200).json({ challenge: decision.challenge });
        return;
      case 'invalid':
        this.#refuse(req, res, 400, decision.reason);
        return;
      case 'ignore':
        this.#ignored(req, decision.reason, decision.refused);
        break;
      case 'edit':
        await this.#edit(decision.ref, decision.text);
        break;
      case 'delete':
        await this.#delete(decision.ref);
        break;
      case 'accept':
        // An agent's reply or click acts with an agent's authority: never on an unverified request.
        if (this.#unverified.has(req) && this.#desk?.claims(decision)) {
          this.#refuse(req, res, 401, 'unverified_agent_action');
          return;
        }
        // No desk: straight to the accept, without a turn of the event loop's promise queue for it.
        if (!this.#desk || !(await this.#desk.handle(decision))) await this.#accept(req, decision);
        break;
    }
    res.status(200).end();
  }

  #ignored(req: Request, reason: string, refused: boolean): void {
    if (refused) {
      this.#ctx.logger.warn({ reason, path: req.path }, 'slack request ignored');
      this.#ctx.rejected('slack', reason);
    } else if (reason === 'app_rate_limited') {
      this.#ctx.logger.warn({ reason }, 'slack: event deliveries are being rate limited by Slack');
    } else if (this.#ctx.logger.isLevelEnabled('debug')) {
      this.#ctx.logger.debug({ reason, path: req.path }, 'slack event ignored');
    }
  }

  async #accept(req: Request, decision: Extract<SlackDecision, { kind: 'accept' }>): Promise<void> {
    const { inbound, ref } = decision;
    const kv = this.#ctx.store.kv;
    // Classification names the thread in the conversation's meta exactly when the key has one.
    const inThread = inbound.conversationMeta?.slackThreadTs !== undefined;
    if (decision.followUpOnly && (await kv.get(threadKey(inbound.channelRef))) === null) {
      this.#ignored(req, 'not_addressed', false);
      return;
    }
    // Almost always remembered (see PROFILE_MEMO_MS): read without an async call for it.
    const { name, email } =
      this.#rememberedUser(decision.team, decision.userId) ??
      (await this.#user(decision.team, decision.userId));
    // Slack signs the event, so the user id is Slack's word; so is the profile email (SPEC §9).
    const signed: SenderIdentity = email
      ? {
          verified: true,
          source: 'slack',
          also: [{ channel: 'email', address: email, verified: true, source: 'slack_profile' }],
        }
      : SLACK_SIGNED;
    const identity = this.#unverified.has(req) ? untrusted(signed)! : signed;
    const result = await this.#ctx.ingest.accept(
      extend(inbound, { from: name ? extend(inbound.from, { name }) : inbound.from, identity }),
    );
    // Written after the accept and before the 200: if they fail, Slack retries and the dedupe key
    // turns the retry into a no-op that writes them again.
    const { conversationId, id } = result.message;
    // Most accepts write one of the two (a DM message's index): no array and Promise.all for those.
    const indexed = ref && kv.set(messageKey(ref), `${conversationId} ${id}`, INDEX_TTL_S);
    if (inThread)
      await Promise.all([indexed, kv.set(threadKey(inbound.channelRef), conversationId, INDEX_TTL_S)]);
    else await indexed;
    // The fields are gathered only when the line is written (LOG_LEVEL=debug).
    if (!this.#ctx.logger.isLevelEnabled('debug')) return;
    this.#ctx.logger.debug(
      {
        conversationId,
        messageId: id,
        duplicate: result.duplicate,
        retryNum: header(req, 'x-slack-retry-num'),
      },
      'slack message accepted',
    );
  }

  async #stored(ref: SlackMessageRef): Promise<Message | null> {
    const entry = await this.#ctx.store.kv.get(messageKey(ref));
    if (!entry) return null;
    const [conversationId = '', messageId = ''] = entry.split(' ');
    return this.#ctx.store.getMessage(conversationId, messageId);
  }

  /** message_changed: the stored copy follows the edit; an unchanged text (unfurls, retries) is a no-op. */
  async #edit(ref: SlackMessageRef, text: string): Promise<void> {
    const message = await this.#stored(ref);
    if (!message || message.text === text) return;
    const updated = await this.#ctx.store.updateMessage(message.conversationId, message.id, {
      text,
      entities: detectEntities(text),
    });
    if (!updated) return;
    await this.#ctx.events.emit({
      type: 'message.updated',
      conversationId: updated.conversationId,
      seq: updated.seq,
      message: updated,
      changes: ['text', 'entities'],
    });
  }

  /** message_deleted: the stored copy goes too; a repeated delete finds nothing and does nothing. */
  async #delete(ref: SlackMessageRef): Promise<void> {
    const message = await this.#stored(ref);
    if (message && (await this.#ctx.store.deleteMessage(message.conversationId, message.id))) {
      await this.#ctx.events.emit({
        type: 'message.deleted',
        conversationId: message.conversationId,
        seq: message.seq,
        message,
      });
    }
    await this.#ctx.store.kv.delete(messageKey(ref));
  }

  /** What {@link #user} answered for this person within the last {@link PROFILE_MEMO_MS}, if anything. */
  #rememberedUser(team: string, user: string): { name?: string; email?: string } | undefined {
    const memo = this.#profiles.get(nameKey(team, user));
    return memo && memo.until > Date.now() ? memo.profile : undefined;
  }

  /**
   * The person's display name and profile email via users.info, cached; a failed lookup never
   * fails the request.
   */
  async #user(team: string, user: string): Promise<{ name?: string; email?: string }> {
    const remembered = this.#rememberedUser(team, user);
    if (remembered) return remembered;
    const key = nameKey(team, user);
    const remember = (profile: { name?: string; email?: string }) => {
      this.#profiles.set(key, { profile, until: Date.now() + PROFILE_MEMO_MS });
      return profile;
    };
    const kv = this.#ctx.store.kv;
    const cached = await kv.get(key);
    if (cached !== null) return remember(parseProfile(cached));
    try {
      const info = this.#api.userInfo
        ? await this.#api.userInfo(user)
        : { name: await this.#api.userName(user) };
      await kv.set(key, JSON.stringify(info), NAME_TTL_S);
      return remember(info);
    } catch (err) {
      const e = err instanceof SlackCallError ? err : undefined;
      this.#ctx.logger.warn(
        { user, code: e?.slackError },
        'slack: users.info failed; participant kept without a name',
      );
      if (e?.kind === 'permanent') await kv.set(key, '{}', NAME_MISS_TTL_S);
      return {};
    }
  }
}

/** Slack's word for a signed request's sender: no profile email, so the same every time. */
const SLACK_SIGNED: SenderIdentity = Object.freeze({ verified: true, source: 'slack' });

/**
 * A request header as `req.get` reads it, without its name handling: the names here are lower-case
 * already, and Node joins a repeated `x-` header into one string.
 */
function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

type Parsed = { ok: true; value: unknown } | { ok: false; reason: string };

function parseJson(text: string): Parsed {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, reason: 'malformed_json' };
  }
}

/** Interactivity posts `payload=<url-encoded JSON>` as a form (CHANNELS.md §2.6). */
function parseInteractionForm(body: Buffer): Parsed {
  const payload = new URLSearchParams(body.toString('utf8')).get('payload');
  return payload === null ? { ok: false, reason: 'missing_payload' } : parseJson(payload);
}

export default defineAdapter<SlackConfig>({
  name: 'slack',
  settings: SLACK_SETTINGS,
  configure,
  create(ctx, config) {
    return new SlackAdapter(ctx, config, createWebApi(config, ctx.logger));
  },
});
