/**
 * @module The email channel (SPEC §2, §5): inbound by the built-in SMTP listener and/or the Mailgun
 * route webhook, both into one receive path; answers by SMTP (`SMTP_URL`) as replies in the
 * customer's thread; attachments served at `GET /v1/attachments/:id` (API key required).
 */
import nodemailer from 'nodemailer';
import { defineAdapter } from '../../src/core/index.js';
import { AttachmentStore, attachmentRoute } from './attachments.js';
import { configure, type EmailConfig, redactUrl, SETTINGS } from './config.js';
import { mailgunRoute } from './mailgun.js';
import { EmailSender, transportOptions } from './outbound.js';
import { MailReceiver } from './receive.js';
import { SmtpListener } from './smtp.js';
import { ThreadIndex } from './threading.js';

export default defineAdapter<EmailConfig>({
  name: 'email',
  settings: SETTINGS,
  configure,
  create(ctx, config) {
    const threads = new ThreadIndex(ctx.store.kv);
    const attachments = new AttachmentStore(ctx.store.kv, ctx.publicUrl);
    const receiver = new MailReceiver(ctx, config, threads, attachments);
    const transport = nodemailer.createTransport(transportOptions(config.smtpUrl));
    const sender = new EmailSender({
      from: config.from,
      store: ctx.store,
      threads,
      transport,
      bounceSecret: config.bounceSecret,
      isOwnAddress: (a) => receiver.isGatewayAddress(a),
    });
    const listener = new SmtpListener({
      config,
      logger: ctx.logger,
      receiver,
      rejected: (reason) => ctx.rejected('email', reason),
    });
    if (config.mailgunSigningKey) ctx.verificationMode('email', config.mailgunVerify, 'MAILGUN_VERIFY');
    return {
      name: 'email',
      channels: ['email'],
      routes(router) {
        if (config.mailgunSigningKey) {
          router.post(
            '/webhooks/email/mailgun',
            mailgunRoute({ ctx, config, signingKey: config.mailgunSigningKey, receiver }),
          );
        }
        router.get('/v1/attachments/:id', ctx.requireApiKey, attachmentRoute(attachments));
      },
      start: () => listener.start(),
      // The transport is not closed here: the engine may still send answers for messages in flight
      // after the adapters stopped taking mail (SPEC §4.6); a non-pooled transport holds no connection.
      stop: () => listener.stop(),
      send: (conversation, message) => sender.send(conversation, message),
      describe() {
        const lines = [`email: answers sent as ${config.from.address} via ${redactUrl(config.smtpUrl)}`];
        if (config.listener) {
          const port = listener.port ?? config.listener.port;
          lines.push(
            `email: SMTP listener on ${config.listener.host}:${port} (${config.listener.tls ? 'STARTTLS' : 'no STARTTLS'}); point your MX at it`,
          );
        }
        lines.push(
          config.trustedAuthservId
            ? `email: sender authentication from the Authentication-Results of ${config.trustedAuthservId} only`
            : 'email: sender authentication by SPF/DKIM/DMARC (DNS); unauthenticated mail is flagged, never answered',
        );
        if (config.mailgunSigningKey) {
          lines.push(`email: Mailgun route forward("${ctx.publicUrl}/webhooks/email/mailgun")`);
        }
        return lines;
      },
    };
  },
});
