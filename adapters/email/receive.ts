/**
 * @module The one path both inbound routes (SMTP listener, Mailgun) take after their own checks:
 * normalize, find the thread, keep the attachments, accept (stored and queued), index the new
 * `Message-ID`, and mark our message `failed` when the mail is a bounce for it.
 *
 * Threading joins a known thread only when the mail passed sender authentication (auth.ts) and the
 * sender is the thread's customer (or the mail is automated, which is never answered): otherwise anyone
 * who learnt a `Message-ID` or a reply token could write into someone else's conversation and have the
 * bot's answer mailed to that customer. Mail that failed authentication gets a conversation of its own
 * (channel ref `unauth:…`, `meta.flagged: "unauthenticated_sender"` so agents can list them with
 * `GET /v1/conversations?meta[flagged]=unauthenticated_sender`, and `meta.email.unauthenticated: true`),
 * its message `meta.auth.verdict: 'fail'` with the results, and is never queued for the bot. A delivery report changes our message's status only when it came
 * to that message's bounce (VERP) address, whose HMAC token is checked here (verify.ts).
 */
import {
  type ChannelContext,
  type IngestResult,
  type Participant,
  type SenderIdentity,
  untrusted,
} from '../../src/core/index.js';
import type { AttachmentStore } from './attachments.js';
import type { AuthVerdict } from './auth.js';
import type { EmailConfig } from './config.js';
import { type MailInput, MailRejected, normalizeMail, oneLine } from './inbound.js';
import type { ThreadIndex, ThreadRef } from './threading.js';
import { bouncedMessageId, isAcceptedRecipient, isBounceAddress } from './verify.js';

/** The `meta.flagged` value of a conversation (and message) whose sender failed authentication. */
export const FLAG_UNAUTHENTICATED = 'unauthenticated_sender';

export interface ReceiveOutcome {
  duplicate: boolean;
  conversationId: string;
  messageId: string;
  /** False when the mail failed sender authentication (stored flagged, not answered). */
  authenticated: boolean;
  /** Set when the mail was stored as an automated `activity` message. */
  automated?: string;
}

export class MailReceiver {
  readonly #ctx: ChannelContext;
  readonly #config: EmailConfig;
  readonly #threads: ThreadIndex;
  readonly #attachments: AttachmentStore;

  constructor(ctx: ChannelContext, config: EmailConfig, threads: ThreadIndex, attachments: AttachmentStore) {
    this.#ctx = ctx;
    this.#config = config;
    this.#threads = threads;
    this.#attachments = attachments;
  }

  /** True for the gateway's own sending mailbox or any of its `+tag` variants. */
  isOwnAddress(address: string): boolean {
    const { local, domain } = this.#config.from;
    return isAcceptedRecipient(address, [{ kind: 'address', local, domain }]);
  }

  /**
   * True for any address of the gateway itself: its sending mailbox (and `+tag` variants, the reply
   * tokens among them), every accepted inbound address (EMAIL_ACCEPT) and the bounce addresses. Such an
   * address is never a participant and never mailed (SPEC §8: never to ourselves).
   */
  isGatewayAddress(address: string): boolean {
    return (
      this.isOwnAddress(address) ||
      isAcceptedRecipient(address, this.#config.accept) ||
      isBounceAddress(address, this.#config.from.domain)
    );
  }

  /**
   * The people a mail is also addressed to (its To and Cc) other than its sender and the gateway's own
   * addresses: user participants of the conversation (SPEC §8 multi-party).
   */
  #others(recipients: readonly string[], sender: string): Participant[] {
    const out = new Map<string, Participant>();
    for (const raw of recipients) {
      const address = oneLine(raw).trim();
      const key = address.toLowerCase();
      if (!key.includes('@') || key === sender || out.has(key) || this.isGatewayAddress(address)) continue;
      out.set(key, { id: `email:${key}`, role: 'user', address });
    }
    return [...out.values()];
  }

  /** The message id (`msg_…`) of ours that one of `rcptTo`, a valid bounce address, was made for. */
  #bouncedMessage(rcptTo: readonly string[]): { addressed: boolean; messageId: string | null } {
    const { domain } = this.#config.from;
    const addressed = rcptTo.filter((a) => isBounceAddress(a, domain));
    for (const a of addressed) {
      const id = bouncedMessageId(a, this.#config.bounceSecret, domain);
      if (id) return { addressed: true, messageId: id };
    }
    return { addressed: addressed.length > 0, messageId: null };
  }

  /**
   * Stores one received mail. `auth` is the sender check of the path it came by: mail that failed it
   * never joins an existing thread and is never answered (it is stored flagged for agents); a delivery
   * report marks our message failed only when it came back to that message's bounce address.
   * @throws MailRejected for mail refused for good (nothing stored).
   * @throws whatever `ingest.accept` or the store throws (the sender should retry).
   */
  /**
   * `trusted: false` marks mail that came by a provider post whose signature did not verify, accepted
   * in report mode (SPEC §12): its sender identity never counts as verified.
   */
  async receive(input: MailInput, auth: AuthVerdict, trusted = true): Promise<ReceiveOutcome> {
    const mail = normalizeMail(input, {
      accept: this.#config.accept,
      isOwnAddress: (a) => this.isOwnAddress(a),
    });
    const sender = mail.from.address.toLowerCase();
    const log = this.#ctx.logger;
    // The checks must be about the very From the conversation is attributed to.
    const verdict: AuthVerdict =
      auth.verdict === 'pass' && auth.from !== sender
        ? { ...auth, verdict: 'fail', reason: 'from_mismatch' }
        : auth;
    const bounced = this.#bouncedMessage(input.envelope.rcptTo);
    if (bounced.addressed && !bounced.messageId) {
      throw new MailRejected('bad_bounce_token', 'No such bounce address here');
    }
    const ours = bounced.messageId ? `<${bounced.messageId}@${this.#config.from.domain}>` : null;

    let thread: ThreadRef;
    let dedupeKey = mail.dedupeKey;
    const failed = verdict.verdict === 'fail';
    if (ours) {
      // Mail to a verified bounce address is about that answer: it goes into its thread, never answered.
      thread = (await this.#threads.lookup([ours], [])) ?? { ref: mail.rootRef, addr: sender };
    } else if (failed) {
      // Its own conversation, and its own dedupe key: a forgery cannot take a genuine Message-ID either.
      thread = { ref: `unauth:${mail.dedupeKey}`, addr: sender };
      dedupeKey = `unauth:${mail.dedupeKey}`;
      log.warn(
        {
          messageId: mail.messageId,
          auth: { via: verdict.via, spf: verdict.spf, dkim: verdict.dkim, dmarc: verdict.dmarc },
          reason: verdict.reason,
        },
        'email: sender authentication failed; stored flagged in a new conversation, not answered',
      );
    } else {
      const known = await this.#threads.lookup(mail.threadIds, mail.tokens);
      // Someone else on the thread answering all (they had our mail, with its reply address, and the
      // thread's customer is still addressed) joins the thread rather than starting one of their own.
      const replyAll =
        known !== null &&
        known.addr !== sender &&
        mail.tokens.length > 0 &&
        input.recipients.some((a) => a.toLowerCase() === known.addr) &&
        (await this.#threads.lookup([], mail.tokens))?.ref === known.ref;
      thread =
        known && (mail.automated || known.addr === sender || replyAll)
          ? known
          : { ref: mail.rootRef, addr: sender };
      if (known && thread !== known) {
        log.info(
          { messageId: mail.messageId },
          'email: reply from another address than the thread customer; starting a new conversation',
        );
      }
    }
    const flagged = failed && !ours;
    const automated = mail.automated ?? (ours ? 'bounce-address' : undefined);
    const skipBot = Boolean(automated) || failed;
    const scope = `${thread.ref}\n${dedupeKey}`;
    const attachments = [];
    for (const [i, file] of mail.attachments.entries())
      attachments.push(await this.#attachments.put(scope, i, file));

    const result: IngestResult = await this.#ctx.ingest.accept({
      channel: 'email',
      channelRef: thread.ref,
      dedupeKey,
      from: {
        id: `email:${sender}`,
        role: 'user',
        address: mail.from.address,
        ...(mail.from.name ? { name: mail.from.name } : {}),
      },
      identity: trusted ? senderIdentity(verdict) : untrusted(senderIdentity(verdict)),
      message: {
        type: automated ? 'activity' : 'user',
        text: mail.visibleText,
        ...(automated ? { description: `Automated mail (${automated}); not answered` } : {}),
        meta: { email: mail.meta, auth: verdict, ...(flagged ? { flagged: FLAG_UNAUTHENTICATED } : {}) },
        ...(mail.messageId ? { externalId: mail.messageId } : {}),
        attachments,
      },
      conversationMeta: {
        ...(flagged ? { flagged: FLAG_UNAUTHENTICATED } : {}),
        email: {
          subject: mail.subject,
          address: thread.addr,
          ...(flagged ? { unauthenticated: true } : {}),
        },
      },
      ...(skipBot ? { skipBot: true } : {}),
      ...(automated || failed ? {} : { participants: this.#others(input.recipients, sender) }),
    });

    // Unauthenticated mail is indexed nowhere, and no inbound mail may claim one of our own ids (a
    // sender could otherwise point a reply, or a bounce, of our answer into its own conversation).
    const id = mail.messageId ?? '';
    const ownId = /^<msg_[^@]*@/i.test(id) && id.toLowerCase().endsWith(`@${this.#config.from.domain}>`);
    if (!result.duplicate && mail.messageId && !flagged && !ownId)
      await this.#threads.remember(mail.messageId, thread);
    if (mail.bounce?.failed) {
      if (ours) {
        const report = await this.#ctx.delivery.report('email', ours, 'failed', {
          code: mail.bounce.status ?? 'bounced',
          message: mail.bounce.diagnostic ?? 'The message bounced',
        });
        if (report.found)
          log.info(
            { externalId: ours, status: mail.bounce.status },
            'email: bounce marked our message failed',
          );
      } else {
        log.info(
          { messageId: mail.messageId },
          'email: delivery report not sent to a bounce address of ours; no delivery status changed',
        );
      }
    }
    return {
      duplicate: result.duplicate,
      conversationId: result.message.conversationId,
      messageId: result.message.id,
      authenticated: !failed,
      ...(automated ? { automated } : {}),
    };
  }
}

/**
 * What the mail's checks vouch for about the From address (SPEC §9, docs/contacts.md): only a DKIM
 * signature that verified for the From domain (checked here for SMTP, by Mailgun for its route).
 * SPF is about the envelope, not the person, and upstream `Authentication-Results` are another
 * server's word: neither verifies the sender for linking.
 */
export function senderIdentity(verdict: AuthVerdict): SenderIdentity {
  if (verdict.verdict === 'pass' && verdict.aligned === 'dkim') {
    if (verdict.via === 'dns') return { verified: true, source: 'smtp_dkim' };
    if (verdict.via === 'mailgun') return { verified: true, source: 'mailgun_dkim' };
  }
  return { verified: false, source: 'none' };
}
