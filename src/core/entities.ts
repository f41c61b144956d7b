/**
 * @module Detects personal data in message text (emails, phone numbers, payment cards, IBANs) and
 * reports where it is, so integrators can mask or route it. Precision over recall: a span is reported
 * only when it passes the format's own check (Luhn, IBAN mod-97 and country length) or, for phone
 * numbers, when its shape is clearly a phone number rather than a date, amount, address or id.
 */
import type { Entity } from './model.js';

type Detector = (text: string) => Entity[];

const EMAIL_RE =
  /(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-]|\.[A-Za-z0-9])/g;

function detectEmails(text: string): Entity[] {
  const spans: Entity[] = [];
  for (const m of text.matchAll(EMAIL_RE)) {
    const local = m[0].slice(0, m[0].indexOf('@'));
    // RFC 5321 dot-atoms: no leading, trailing or doubled dots.
    if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) continue;
    spans.push({ type: 'email', start: m.index, end: m.index + m[0].length });
  }
  return spans;
}

/** IBAN lengths by country (SWIFT IBAN registry). Other countries are checked by mod-97 alone. */
// biome-ignore format: a compact table reads better than one country per line
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27,
  GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26,
  IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24,
  ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
  RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24,
  TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

/** Country code, check digits, then up to 30 alphanumerics, each optionally after one space (print format). */
const IBAN_RE = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}/g;

/** ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 must be 1. */
export function isValidIban(compact: string): boolean {
  const iban = compact.toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected !== undefined && iban.length !== expected) return false;
  // 00, 01 and 99 pass mod-97 arithmetic for some numbers but are never issued.
  const check = Number(iban.slice(2, 4));
  if (check < 2 || check > 98) return false;
  let rest = 0;
  for (const ch of iban.slice(4) + iban.slice(0, 4)) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    rest = (rest * (value >= 10 ? 100 : 10) + value) % 97;
  }
  return rest === 1;
}

function detectIbans(text: string): Entity[] {
  const spans: Entity[] = [];
  const re = new RegExp(IBAN_RE);
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    // The pattern is greedy and may run into the next word ("... 0130 00 BERLIN"); cut it at the
    // country's length when known, and require a word boundary right after.
    const expected = IBAN_LENGTHS[m[0].slice(0, 2).toUpperCase()];
    let end = m[0].length;
    for (let i = 0, count = 0; i < m[0].length; i++) {
      if (m[0][i] !== ' ') count++;
      if (count === expected) {
        end = i + 1;
        break;
      }
    }
    const after = text[m.index + end];
    const bounded = after === undefined || !/[A-Za-z0-9]/.test(after);
    if (bounded && isValidIban(m[0].slice(0, end).replaceAll(' ', ''))) {
      spans.push({ type: 'iban', start: m.index, end: m.index + end });
      re.lastIndex = m.index + end;
    } else {
      // The cut-off tail may hold the next IBAN ("DE89… GB82…"): scan on from the next character.
      re.lastIndex = m.index + 1;
    }
  }
  return spans;
}

/** Luhn (mod-10) check over a string of digits. */
export function isLuhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** 13–19 digits, optionally separated by single spaces or dashes. */
const CARD_RE = /(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w]|[ -]\d)/g;
/** Printed card groupings: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4; one kind of separator. */
const CARD_GROUPS_RE = /^\d{4}(?:([ -])\d{3,6}(?:\1\d{3,6})*)?$/;

function detectCards(text: string): Entity[] {
  const spans: Entity[] = [];
  for (const m of text.matchAll(CARD_RE)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (/[ -]/.test(m[0]) && !CARD_GROUPS_RE.test(m[0])) continue;
    if (/^0+$/.test(digits) || !isLuhnValid(digits)) continue;
    spans.push({ type: 'card', start: m.index, end: m.index + m[0].length });
  }
  return spans;
}

/**
 * Digit groups joined by one separator (space, dot, dash), an optional leading `+`, and area codes in
 * parentheses (`(415) 555-2671`, `+44 (0)20 7946 0958`). Separators are mandatory between digit
 * groups, so a run of digits is one group and the pattern cannot backtrack badly. A candidate may not
 * start right after another number (`12 555…`) nor stop before one, so it is all or nothing.
 */
const PHONE_RE =
  /(?<![\w+.-]|\d[ .-])\+?(?:\(\d{1,5}\)|\d{1,15})(?:(?:[ .-]|(?<=\))|(?=\())(?:\(\d{1,5}\)|\d{1,15}))*(?![\w]|[ .-]?\d)/g;
/**
 * Shapes that look like phone numbers but are not: ISO and European dates, IPv4 addresses, dotted
 * amounts, US ZIP+4 codes and year ranges.
 */
const NOT_PHONE = [
  /^\d{4}[-. ]\d{1,2}[-. ]\d{1,2}$/,
  /^\d{1,2}[-. ]\d{1,2}[-. ]\d{4}$/,
  /^\d{1,3}(?:\.\d{1,3}){3}$/,
  /^\d{1,3}(?:\.\d{3}){2,}$/,
  /^\d{5}-\d{4}$/,
  /^(?:19|20)\d\d-(?:19|20)\d\d$/,
];

function detectPhones(text: string): Entity[] {
  const spans: Entity[] = [];
  for (const m of text.matchAll(PHONE_RE)) {
    const raw = m[0];
    const digits = raw.replace(/\D/g, '');
    if (digits.length < 7 || digits.length > 15) continue;
    if (raw.startsWith('+')) {
      // E.164: country codes never start with 0.
      if (digits.startsWith('0')) continue;
    } else {
      // Without `+`, a bare digit run is an id or an amount as often as a phone number: national
      // formats are recognised by their separators. Thirteen digits and more are card-like unless they
      // start with the international prefix 00.
      if (!/[ .()-]/.test(raw)) continue;
      if (digits.length >= 13 && !digits.startsWith('00')) continue;
      if (NOT_PHONE.some((re) => re.test(raw))) continue;
    }
    spans.push({ type: 'phone', start: m.index, end: m.index + raw.length });
  }
  return spans;
}

/**
 * A detector with what any text it can find something in must hold: an email has an `@`; an IBAN is
 * at least 15 characters with its 2 check digits; a card has 13 digits and a phone number 7.
 */
interface Format {
  detect: Detector;
  possible(text: string, digits: number): boolean;
}

// The order is the precedence when spans overlap: checksummed formats win over phone shapes, and an
// email address keeps the digits of its local part.
const FORMATS: readonly Format[] = [
  { detect: detectEmails, possible: (text) => text.includes('@') },
  { detect: detectIbans, possible: (text, digits) => digits >= 2 && text.length >= 15 },
  { detect: detectCards, possible: (_, digits) => digits >= 13 },
  { detect: detectPhones, possible: (_, digits) => digits >= 7 },
];

function countDigits(text: string): number {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 48 && code <= 57) digits++;
  }
  return digits;
}

/**
 * Finds emails, phone numbers, payment cards and IBANs in `text`.
 *
 * @returns non-overlapping spans sorted by `start`; `start`/`end` are UTF-16 offsets (`text.slice(start, end)`).
 * @example
 * detectEntities('mail me at jo@example.com'); // [{ type: 'email', start: 11, end: 25 }]
 */
export function detectEntities(text: string): Entity[] {
  let taken: Entity[] = [];
  const digits = countDigits(text);
  for (const { detect, possible } of FORMATS) {
    // Most texts hold no personal data at all: a format they cannot hold is not scanned for.
    if (!possible(text, digits)) continue;
    // Both lists are sorted and free of overlaps, so one merge pass keeps this linear in the number of
    // spans even for a body full of addresses.
    const merged: Entity[] = [];
    let j = 0;
    for (const span of detect(text)) {
      while (j < taken.length && taken[j]!.end <= span.start) merged.push(taken[j++]!);
      const next = taken[j];
      if (next === undefined || next.start >= span.end) merged.push(span);
    }
    taken = merged.concat(taken.slice(j));
  }
  return taken;
}
