/**
 * Twilio webhooks whose signature verifies but whose identifiers do not hold: a captured request
 * re-split into other parameters (Twilio signs names and values concatenated, with no separator),
 * SIDs of the wrong shape, another account's `AccountSid`. Signatures are made at run time with
 * twilio-node; each refusal is answered, logged once with its reason, counted, and stores nothing.
 */
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  newSid,
  type PostOptions,
  postWebhook,
  smsParams,
  statusParams,
  type WebhookParams,
} from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const PUBLIC_URL = 'https://chat.example.com';
const OTHER_ACCOUNT = `AC${'fedcba9876543210'.repeat(2)}`;

let fake: FakeTwilioApi;
let gw: TestGateway;

function post(path: string, params: WebhookParams, opts: PostOptions = {}) {
  return postWebhook(`${gw.url}${path}`, params, { signedUrl: `${PUBLIC_URL}${path}`, ...opts });
}

function refusals(reason: string) {
  return gw.logs.lines.filter((l) => l.msg === 'Twilio webhook refused' && l.reason === reason);
}

async function messagesFrom(from: string): Promise<Message[]> {
  const res = await gw.api('/v1/conversations?channel=sms&take=200');
  const conv = ((await res.json()) as { items: Conversation[] }).items.find((c) =>
    c.channelRef.endsWith(`|${from}`),
  );
  if (!conv) return [];
  const list = await gw.api(`/v1/conversations/${conv.id}/messages?take=200`);
  return ((await list.json()) as { items: Message[] }).items;
}

beforeAll(async () => {
  fake = await FakeTwilioApi.start();
  gw = await startGateway({
    PUBLIC_URL,
    // Upper-case hex in the setting: Twilio sends lower case, and the two must still match.
    TWILIO_ACCOUNT_SID: `AC${ACCOUNT_SID.slice(2).toUpperCase()}`,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: fake.url,
  });
});

afterAll(async () => {
  await gw?.stop();
  await fake?.close();
});

describe('a captured message re-split into other parameters', () => {
  it('verifies as Twilio signs it, and is refused instead of stored as a new message', async () => {
    const from = '+14155550201';
    const captured = smsParams({ From: from, Body: 'only once' });
    const signature = twilio.getExpectedTwilioSignature(
      AUTH_TOKEN,
      `${PUBLIC_URL}/webhooks/twilio`,
      captured,
    );
    expect((await post('/webhooks/twilio', captured, { signature })).status).toBe(200);
    await eventually(async () => ((await messagesFrom(from)).length === 2 ? true : undefined));

    // `MessageSid` swallows the `NumMedia` that follows it in the signed string.
    const { NumMedia, ...rest } = captured;
    const resplit = { ...rest, MessageSid: `${captured.MessageSid}NumMedia${NumMedia}` };
    expect(twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}/webhooks/twilio`, resplit)).toBe(
      signature,
    );
    const before = refusals('malformed_sid').length;
    const res = await post('/webhooks/twilio', resplit, { signature });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/MessageSid is not a Twilio message SID/);
    expect(refusals('malformed_sid')).toHaveLength(before + 1);

    await new Promise((r) => setTimeout(r, 200));
    expect((await messagesFrom(from)).map((m) => m.text)).toEqual(['only once', 'You said: only once']);
  });
});

describe('SID shapes', () => {
  it.each([
    ['MessageSid', 'SM1'],
    ['MessageSid', `SM${'A'.repeat(32)}`],
    ['MessageSid', `XX${'a'.repeat(32)}`],
    ['MessageSid', `SM${'a'.repeat(33)}`],
    ['AccountSid', 'AC123'],
    ['MessagingServiceSid', `MG${'z'.repeat(32)}`],
    ['OriginalRepliedMessageSid', 'SMnope'],
  ])('refuses %s=%s with 400 malformed_sid', async (name, value) => {
    const from = '+14155550202';
    const params = smsParams({ From: from, Body: `bad ${name}` });
    // A malformed MessageSid replaces its legacy duplicates too, so only the shape is wrong.
    const over: Record<string, string> = name === 'MessageSid' ? { SmsSid: value, SmsMessageSid: value } : {};
    const before = refusals('malformed_sid').length;
    const res = await post('/webhooks/twilio', { ...params, ...over, [name]: value });
    expect(res.status).toBe(400);
    expect(await res.text()).not.toContain(value);
    expect(refusals('malformed_sid')).toHaveLength(before + 1);
    expect(await messagesFrom(from)).toEqual([]);
  });

  it('refuses a MessageSid that disagrees with SmsSid, and one given twice', async () => {
    const params = smsParams({ From: '+14155550203' });
    expect((await post('/webhooks/twilio', { ...params, SmsSid: newSid() })).status).toBe(400);
    expect((await post('/webhooks/twilio', { ...params, MessageSid: [newSid(), newSid()] })).status).toBe(
      400,
    );
    expect(await messagesFrom('+14155550203')).toEqual([]);
  });

  it('accepts MM message SIDs and a Messaging Service SID', async () => {
    const sid = newSid('MM');
    const params = smsParams({
      From: '+14155550204',
      MessageSid: sid,
      SmsSid: sid,
      SmsMessageSid: sid,
      MessagingServiceSid: newSid('MG'),
    });
    expect((await post('/webhooks/twilio', params)).status).toBe(200);
  });

  it('refuses a status callback with a malformed SID', async () => {
    const res = await post('/webhooks/twilio/status', statusParams('SM1', 'delivered'));
    expect(res.status).toBe(400);
  });
});

describe('AccountSid', () => {
  it('refuses another account and a missing AccountSid with 403, messages and status callbacks alike', async () => {
    const from = '+14155550205';
    const before = refusals('account_mismatch').length;
    const other = await post('/webhooks/twilio', smsParams({ From: from, AccountSid: OTHER_ACCOUNT }));
    expect(other.status).toBe(403);
    expect(await other.text()).toMatch(/TWILIO_ACCOUNT_SID/);
    const { AccountSid: _dropped, ...without } = smsParams({ From: from });
    expect((await post('/webhooks/twilio', without)).status).toBe(403);
    const status = await post(
      '/webhooks/twilio/status',
      statusParams(newSid(), 'delivered', { AccountSid: OTHER_ACCOUNT }),
    );
    expect(status.status).toBe(403);
    expect(refusals('account_mismatch')).toHaveLength(before + 3);
    expect(await messagesFrom(from)).toEqual([]);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/channel="twilio",reason="account_mismatch"/);
    expect(metrics).toMatch(/channel="twilio",reason="malformed_sid"/);
  });
});
