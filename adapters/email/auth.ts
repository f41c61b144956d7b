/**
 * @module Sender authentication of inbound mail (SPF RFC 7208, DKIM RFC 6376, DMARC RFC 7489): is the
 * `From:` domain really the one that sent it? A mail passes when its DMARC result is not `fail` and it
 * has an aligned pass: SPF pass for a MAIL FROM (or HELO) domain, or a valid DKIM signature `d=`, whose
 * organizational domain is the `From:` one. Anything else fails, and {@link MailReceiver} keeps failed
 * mail out of existing threads and away from the bot.
 *
 * Three sources of results, one verdict shape:
 * - `dns`: the SMTP listener checks itself with mailauth (client IP, HELO, MAIL FROM, DNS);
 * - `authentication-results`: behind an upstream MTA (`EMAIL_TRUSTED_AUTHSERV_ID`), the top-most
 *   `Authentication-Results` header (RFC 8601) with exactly that authserv-id; all others are ignored,
 *   as any sender can write them;
 * - `mailgun`: Mailgun's own checks in the headers it adds (`X-Mailgun-Spf`, `X-Mailgun-Dkim-Check-Result`),
 *   read only from the block Mailgun prepended (above the first `Received`).
 * Only the `dns` source can be `temporary` (a DNS failure here, worth a retry by the sender).
 */
import { authenticate, type DNSResolver } from 'mailauth';
import { getAlignment } from 'mailauth/lib/tools.js';
import { messageAddress } from './inbound.js';

export type DnsResolver = DNSResolver;

/** The outcome stored as the message's `meta.auth`. */
export interface AuthVerdict {
  verdict: 'pass' | 'fail';
  via: 'dns' | 'authentication-results' | 'mailgun';
  /** Result words as the checks gave them (`pass`, `fail`, `softfail`, `none`, `temperror` ...). */
  spf: string;
  dkim: string;
  dmarc: string;
  /** Which aligned identifier passed, when one did. */
  aligned?: 'dkim' | 'spf';
  /** The `From:` address the checks were about (lower-cased), when there was exactly one. */
  from?: string;
  /** Why it failed: `dmarc_fail`, `not_aligned`, `from_header`, `from_mismatch`, `no_trusted_results`. */
  reason?: string;
  /** True when a check could not complete (DNS timeout): the SMTP listener asks the sender to retry. */
  temporary?: boolean;
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

function isAligned(fromDomain: string, domain: string | undefined): boolean {
  return Boolean(domain) && getAlignment(fromDomain, [domain!.toLowerCase()]) !== false;
}

/**
 * The single `From:` address of the header block, or null when there is not exactly one (RFC 7489
 * §6.6.1: several From addresses cannot be authenticated). `fallback` (a provider's parsed `from`
 * field) is used when the header list holds no `From` at all.
 */
export function singleFrom(
  headers: ReadonlyArray<readonly [string, string]>,
  fallback?: string,
): string | null {
  const fromHeaders = headers.filter(([k]) => k === 'from').map(([, v]) => v);
  if (fromHeaders.length === 0 && fallback) fromHeaders.push(fallback);
  if (fromHeaders.length !== 1) return null;
  const addresses = messageAddress(fromHeaders[0]!);
  return addresses.length === 1 ? addresses[0]!.toLowerCase() : null;
}

function decide(
  base: Omit<AuthVerdict, 'verdict' | 'aligned' | 'reason'>,
  dkimAligned: boolean,
  spfAligned: boolean,
): AuthVerdict {
  const dmarcFailed = base.dmarc === 'fail';
  if (!dmarcFailed && dkimAligned) return { ...base, verdict: 'pass', aligned: 'dkim' };
  if (!dmarcFailed && spfAligned) return { ...base, verdict: 'pass', aligned: 'spf' };
  // A lookup that could not complete may be why nothing passed (DMARC fails for want of an aligned
  // pass too): the sender is asked to retry rather than the mail being judged on half the checks.
  const temporary = [base.spf, base.dkim, base.dmarc].includes('temperror');
  return {
    ...base,
    verdict: 'fail',
    reason: dmarcFailed ? 'dmarc_fail' : 'not_aligned',
    ...(temporary ? { temporary: true } : {}),
  };
}

export interface SmtpAuthInput {
  /** The connecting client's address as smtp-server saw it. */
  ip: string;
  /** The EHLO/HELO name. */
  helo: string;
  /** MAIL FROM; null for the null sender `<>`. */
  mailFrom: string | null;
  /** This gateway's host name, for the check's comments. */
  mta: string;
  resolver?: DnsResolver;
}

/** Checks SPF, DKIM and DMARC of a raw message received over SMTP (mailauth; DNS by `resolver`). */
export async function authenticateSmtp(raw: Buffer, input: SmtpAuthInput): Promise<AuthVerdict> {
  const ip = input.ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  const helo = input.helo.replace(/^\[|\]$/g, '');
  const result = await authenticate(raw, {
    ip,
    helo,
    mta: input.mta,
    // RFC 7208 §2.4: with the null sender, SPF checks the HELO identity.
    sender: input.mailFrom || `postmaster@${helo}`,
    disableArc: true,
    disableBimi: true,
    ...(input.resolver ? { resolver: input.resolver } : {}),
  });
  const headerFrom = (result.dkim as { headerFrom?: string[] }).headerFrom ?? [];
  const dkimResults = result.dkim.results ?? [];
  const dkim = dkimResults.some((r) => r.status.result === 'pass')
    ? 'pass'
    : (dkimResults[0]?.status.result ?? 'none');
  const spf = result.spf ? result.spf.status.result : 'none';
  const dmarc = result.dmarc ? result.dmarc.status.result : 'none';
  if (headerFrom.length !== 1)
    return { via: 'dns', spf, dkim, dmarc, verdict: 'fail', reason: 'from_header' };
  const from = headerFrom[0]!.toLowerCase();
  const base = { via: 'dns' as const, spf, dkim, dmarc, from };
  const fromDomain = domainOf(from);
  const dkimAligned = dkimResults.some(
    (r) => r.status.result === 'pass' && isAligned(fromDomain, r.signingDomain),
  );
  const spfAligned = spf === 'pass' && isAligned(fromDomain, result.spf ? result.spf.domain : undefined);
  return decide(base, dkimAligned, spfAligned);
}

/** One `method=result` of an `Authentication-Results` header, with its `ptype.property=value` pairs. */
export interface AuthResultEntry {
  method: string;
  result: string;
  props: Record<string, string>;
}

/** Removes RFC 5322 comments (nested parentheses), keeping quoted strings intact. */
function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += c + (value[i + 1] ?? '');
      i++;
      continue;
    }
    if (depth === 0 && c === '"') quoted = !quoted;
    if (!quoted && c === '(') {
      depth++;
      continue;
    }
    if (!quoted && c === ')' && depth > 0) {
      depth--;
      out += ' ';
      continue;
    }
    if (depth === 0) out += c;
  }
  return out;
}

/** Parses an `Authentication-Results` value (RFC 8601 §2.2); null when it has no authserv-id. */
export function parseAuthenticationResults(
  value: string,
): { authservId: string; results: AuthResultEntry[] } | null {
  const parts = stripComments(value)
    .split(';')
    .map((p) => p.trim());
  // "authserv-id [version]": the id is the first token.
  const authservId = parts[0]?.split(/\s+/, 1)[0]?.toLowerCase();
  if (!authservId) return null;
  const results: AuthResultEntry[] = [];
  for (const part of parts.slice(1)) {
    const m = /^([a-z0-9_-]+)(?:\/\d+)?\s*=\s*([a-z0-9_-]+)(.*)$/is.exec(part);
    if (!m) continue;
    const props: Record<string, string> = {};
    for (const p of m[3]!.matchAll(/([a-z0-9_-]+\.[a-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]+)/gi)) {
      const key = p[1]!.toLowerCase();
      if (!(key in props)) props[key] = p[2]!.replace(/^"|"$/g, '');
    }
    results.push({ method: m[1]!.toLowerCase(), result: m[2]!.toLowerCase(), props });
  }
  return { authservId, results };
}

/**
 * The verdict of the top-most `Authentication-Results` whose authserv-id is `authservId` (the trusted
 * upstream MTA's own); fails when there is none. Any other A-R header is ignored.
 */
export function verdictFromAuthResults(
  headers: ReadonlyArray<readonly [string, string]>,
  authservId: string,
  fromField?: string,
): AuthVerdict {
  const wanted = authservId.toLowerCase();
  let trusted: ReturnType<typeof parseAuthenticationResults> = null;
  for (const [k, v] of headers) {
    if (k !== 'authentication-results') continue;
    const parsed = parseAuthenticationResults(v);
    if (parsed?.authservId === wanted) {
      trusted = parsed;
      break;
    }
  }
  const via = 'authentication-results' as const;
  if (!trusted)
    return { via, verdict: 'fail', spf: 'none', dkim: 'none', dmarc: 'none', reason: 'no_trusted_results' };
  const pick = (method: string) => trusted.results.filter((r) => r.method === method);
  const dkims = pick('dkim');
  const spfs = pick('spf');
  const results = {
    via,
    spf: spfs[0]?.result ?? 'none',
    dkim: dkims.some((r) => r.result === 'pass') ? 'pass' : (dkims[0]?.result ?? 'none'),
    dmarc: pick('dmarc')[0]?.result ?? 'none',
  };
  const from = singleFrom(headers, fromField);
  if (!from) return { ...results, verdict: 'fail', reason: 'from_header' };
  const base = { ...results, from };
  const fromDomain = domainOf(from);
  if (base.dmarc === 'pass') {
    // The upstream evaluated alignment itself; its header.from must be this mail's From domain.
    const checked = pick('dmarc')[0]!.props['header.from'];
    if (!checked || checked.toLowerCase() === fromDomain) return { ...base, verdict: 'pass' };
  }
  const dkimAligned = dkims.some((r) => {
    const d = r.props['header.d'] ?? (r.props['header.i'] ? domainOf(r.props['header.i']) : undefined);
    return r.result === 'pass' && isAligned(fromDomain, d);
  });
  const spfAligned = spfs.some((r) => {
    const mailFrom = r.props['smtp.mailfrom'];
    const d = mailFrom ? domainOf(mailFrom) : r.props['smtp.helo'];
    return r.result === 'pass' && isAligned(fromDomain, d);
  });
  const verdict = decide(base, dkimAligned, spfAligned);
  // The upstream's header is fixed: a retry would carry the same results, so it is never temporary.
  delete verdict.temporary;
  return verdict;
}

/**
 * Mailgun's verdict headers: only the block Mailgun itself prepended counts, the headers above the
 * first `Received` (Mailgun adds its `Received` and puts its `X-Mailgun-*` results on top of it). A
 * header of that name further down came with the mail, so anyone could have written it; one that
 * appears twice in Mailgun's block is no verdict at all.
 */
function mailgunHeader(headers: ReadonlyArray<readonly [string, string]>, name: string): string | null {
  const firstReceived = headers.findIndex(([k]) => k === 'received');
  const block = firstReceived === -1 ? [] : headers.slice(0, firstReceived);
  const values = block.filter(([k]) => k === name).map(([, v]) => v.trim().toLowerCase());
  return values.length === 1 ? values[0]! : null;
}

/**
 * The verdict from Mailgun's checks (the route post's `message-headers`, or the headers of `body-mime`):
 * `X-Mailgun-Spf` is for the envelope sender Mailgun saw (`sender`); `X-Mailgun-Dkim-Check-Result`
 * says a signature verified without naming it, so it counts as aligned only when every
 * `DKIM-Signature` of the mail is for the `From:` domain. Mailgun reports no DMARC result: the aligned
 * pass that DMARC asks for is checked here.
 */
export function verdictFromMailgun(
  headers: ReadonlyArray<readonly [string, string]>,
  sender: string | null | undefined,
  fromField?: string,
): AuthVerdict {
  const spf = mailgunHeader(headers, 'x-mailgun-spf') ?? 'none';
  const dkim = mailgunHeader(headers, 'x-mailgun-dkim-check-result') ?? 'none';
  const results = { via: 'mailgun' as const, spf, dkim, dmarc: 'none' };
  const from = singleFrom(headers, fromField);
  if (!from) return { ...results, verdict: 'fail', reason: 'from_header' };
  const base = { ...results, from };
  const fromDomain = domainOf(from);
  const signers = headers
    .filter(([k]) => k === 'dkim-signature')
    .map(([, v]) => /(?:^|;)\s*d\s*=\s*([^;\s]+)/i.exec(v)?.[1]);
  const dkimAligned = dkim === 'pass' && signers.length > 0 && signers.every((d) => isAligned(fromDomain, d));
  const spfAligned = spf === 'pass' && Boolean(sender) && isAligned(fromDomain, domainOf(sender!));
  const verdict = decide(base, dkimAligned, spfAligned);
  // Mailgun accepted the mail already: asking it to retry cannot change the results it recorded.
  delete verdict.temporary;
  return verdict;
}
