/**
 * @module The one path both inbound routes (SMTP listener, Mailgun) take after their own checks:
 * normalize, find the thread, keep the attachments, accept (stored and queued), index the new
 * `Message-ID`, and mark our message `failed` when the mail is a bounce for it.
 *
 * Threading joins a known thread only when the sender is the thread's customer (or the mail is
 * automated, which is never answered): otherwise anyone who learnt a `Message-ID` or a reply token
 * could write into someone else's conversation and have the bot's answer mailed to that customer.
 */
import type { ChannelContext, IngestResult } from '../../src/core/index.js';
import type { AttachmentStore } from './attachments.js';
import type { EmailConfig } from './config.js';
import { type MailInput, normalizeMail } from './inbound.js';
import type { ThreadIndex, ThreadRef } from './threading.js';
import { isAcceptedRecipient } from './verify.js';

export interface ReceiveOutcome {
  duplicate: boolean;
  conversationId: string;
  messageId: string;
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
   * Stores one received mail.
   * @throws MailRejected for mail refused for good (nothing stored).
   * @throws whatever `ingest.accept` or the store throws (the sender should retry).
   */
  async receive(input: MailInput): Promise<ReceiveOutcome> {
    const mail = normalizeMail(input, {
      accept: this.#config.accept,
      isOwnAddress: (a) => this.isOwnAddress(a),
    });
    const sender = mail.from.address.toLowerCase();
    const known = await this.#threads.lookup(mail.threadIds, mail.tokens);
    const thread: ThreadRef =
      known && (mail.automated || known.addr === sender) ? known : { ref: mail.rootRef, addr: sender };
    if (known && thread !== known) {
      this.#ctx.logger.info(
        { messageId: mail.messageId },
        'email: reply from another address than the thread customer; starting a new conversation',
      );
    }
    const scope = `${thread.ref}\n${mail.dedupeKey}`;
    const attachments = [];
    for (const [i, file] of mail.attachments.entries())
      attachments.push(await this.#attachments.put(scope, i, file));

    const result: IngestResult = await this.#ctx.ingest.accept({
      channel: 'email',
      channelRef: thread.ref,
      dedupeKey: mail.dedupeKey,
      from: {
        id: `email:${sender}`,
        role: 'user',
        address: mail.from.address,
        ...(mail.from.name ? { name: mail.from.name } : {}),
      },
      message: {
        type: mail.automated ? 'activity' : 'user',
        text: mail.visibleText,
        ...(mail.automated ? { description: `Automated mail (${mail.automated}); not answered` } : {}),
        meta: { email: mail.meta },
        ...(mail.messageId ? { externalId: mail.messageId } : {}),
        attachments,
      },
      conversationMeta: { email: { subject: mail.subject, address: thread.addr } },
      ...(mail.automated ? { skipBot: true } : {}),
    });

    if (!result.duplicate && mail.messageId) await this.#threads.remember(mail.messageId, thread);
    if (mail.bounce?.failed) {
      for (const id of mail.bounce.originalMessageIds) {
        const report = await this.#ctx.delivery.report('email', id, 'failed', {
          code: mail.bounce.status ?? 'bounced',
          message: mail.bounce.diagnostic ?? 'The message bounced',
        });
        if (report.found) {
          this.#ctx.logger.info(
            { externalId: id, status: mail.bounce.status },
            'email: bounce marked our message failed',
          );
        }
      }
    }
    return {
      duplicate: result.duplicate,
      conversationId: result.message.conversationId,
      messageId: result.message.id,
      ...(mail.automated ? { automated: mail.automated } : {}),
    };
  }
}
