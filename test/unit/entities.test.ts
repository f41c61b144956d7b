import { describe, expect, it } from 'vitest';
import { detectEntities, isLuhnValid, isValidIban } from '../../src/core/entities.js';

/** The detected spans as `type:text` strings, in order. */
function found(text: string): string[] {
  return detectEntities(text).map((e) => `${e.type}:${text.slice(e.start, e.end)}`);
}

describe('detectEntities', () => {
  it('finds email addresses', () => {
    expect(found('write to jane.doe+tag@example.co.uk today')).toEqual(['email:jane.doe+tag@example.co.uk']);
    expect(found('<ops@mail.example.org>, then stop.')).toEqual(['email:ops@mail.example.org']);
    expect(found('end of sentence: jo@example.com.')).toEqual(['email:jo@example.com']);
  });

  it('rejects malformed email addresses', () => {
    expect(found('a..b@example.com')).toEqual([]);
    expect(found('user@localhost')).toEqual([]);
    expect(found('user@example.c')).toEqual([]);
    expect(found('@example.com')).toEqual([]);
  });

  it.each([
    '+1 415-555-2671',
    '+14155552671',
    '+1 (415) 555-2671',
    '+44 20 7946 0958',
    '+44 (0)20 7946 0958',
    '+491701234567',
    '+41 44 668 18 00',
    '(415) 555-2671',
    '415-555-2671',
    '415.555.2671',
    '020 7946 0958',
    '030 12345678',
    '01 23 45 67 89',
    '0049 30 1234 5678',
  ])('finds the phone number %s', (phone) => {
    expect(found(`call ${phone} now`)).toEqual([`phone:${phone}`]);
  });

  it.each([
    ['an ISO date', 'due 2024-01-15'],
    ['a European date', 'due 15.01.2024'],
    ['an IPv4 address', 'host 192.168.100.254'],
    ['a bare digit run', 'order 12345678'],
    ['a dotted amount', 'EUR 10.000.000'],
    ['a version', 'version 1.2.3'],
    ['a ZIP+4 code', 'CA 94105-1234'],
    ['a year range', 'from 2019-2024'],
    ['too few digits', 'call 555-12'],
    ['a country code starting with 0', '+0 123 456 789'],
    ['a Luhn-failing 15-digit card', '3782 822463 10006'],
    ['a Luhn-failing 16-digit card', '4111 1111 1111 1112'],
  ])('finds no phone number in %s', (_label, text) => {
    expect(found(text)).toEqual([]);
  });

  it.each([
    '4111 1111 1111 1111',
    '4111-1111-1111-1111',
    '4111111111111111',
    '5555555555554444',
    '378282246310005',
    '3782 822463 10005',
    '6011 0009 9013 9424',
  ])('finds the card number %s', (card) => {
    expect(found(`card ${card} exp 12/29`)).toEqual([`card:${card}`]);
  });

  it('rejects card numbers that fail Luhn or are oddly grouped', () => {
    expect(found('card 4111 1111 1111 1112')).toEqual([]);
    expect(found('card 4111111111111112')).toEqual([]);
    expect(found('card 41 11 11 11 11 11 11 11')).toEqual([]);
    expect(found('card 0000 0000 0000 0000')).toEqual([]);
    expect(found('id 12345678901234567890123')).toEqual([]);
  });

  it.each([
    'DE89 3704 0044 0532 0130 00',
    'DE89370400440532013000',
    'GB82WEST12345698765432',
    'GB82 WEST 1234 5698 7654 32',
    'FR14 2004 1010 0505 0001 3M02 606',
    'NL91ABNA0417164300',
    'BE68539007547034',
    'CH9300762011623852957',
  ])('finds the IBAN %s', (iban) => {
    expect(found(`pay to ${iban}, thanks`)).toEqual([`iban:${iban}`]);
  });

  it('rejects IBANs with a bad checksum or the wrong length for the country', () => {
    expect(found('DE89 3704 0044 0532 0130 01')).toEqual([]);
    expect(found('DE88 3704 0044 0532 0130 00')).toEqual([]);
    expect(found('GB82WEST1234569876543')).toEqual([]);
    expect(found('DE89370400440532013000X')).toEqual([]);
  });

  it('cuts an IBAN at its country length and finds the next one', () => {
    expect(found('IBAN DE89 3704 0044 0532 0130 00 BERLIN')).toEqual(['iban:DE89 3704 0044 0532 0130 00']);
    expect(found('DE89370400440532013000 GB82 WEST 1234 5698 7654 32')).toEqual([
      'iban:DE89370400440532013000',
      'iban:GB82 WEST 1234 5698 7654 32',
    ]);
  });

  it('returns sorted, non-overlapping spans in UTF-16 offsets', () => {
    const text =
      'Zürich 😀 mail a@b.io or +1 (415) 555-2671, card 4111111111111111, IBAN DE89370400440532013000.';
    const entities = detectEntities(text);
    expect(entities.map((e) => e.type)).toEqual(['email', 'phone', 'card', 'iban']);
    expect(text.slice(entities[0]!.start, entities[0]!.end)).toBe('a@b.io');
    expect(entities[0]!.start).toBe(text.indexOf('a@b.io'));
    for (let i = 1; i < entities.length; i++)
      expect(entities[i]!.start).toBeGreaterThanOrEqual(entities[i - 1]!.end);
  });

  it('lets an email keep the digits of its local part', () => {
    expect(found('mail +14155552671@sms.example.com')).toEqual(['email:+14155552671@sms.example.com']);
  });

  it('returns nothing for plain text and stays fast on large input', () => {
    expect(detectEntities('')).toEqual([]);
    expect(detectEntities('hello, how are you?')).toEqual([]);
    const noisy = '1-2-3-4-5-6-7-8-9 aaaa@ 12 34 56 '.repeat(20_000);
    const started = performance.now();
    detectEntities(noisy);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('checksums', () => {
  it('isLuhnValid', () => {
    expect(isLuhnValid('79927398713')).toBe(true);
    expect(isLuhnValid('79927398710')).toBe(false);
  });

  it('isValidIban', () => {
    expect(isValidIban('DE89370400440532013000')).toBe(true);
    expect(isValidIban('de89370400440532013000')).toBe(true);
    expect(isValidIban('DE8937040044053201300')).toBe(false);
    // Check digits 99 pass mod-97 wherever 02 does, but are never issued.
    expect(isValidIban('DE02370400440532013014')).toBe(true);
    expect(isValidIban('DE99370400440532013014')).toBe(false);
  });
});
