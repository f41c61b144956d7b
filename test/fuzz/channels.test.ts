/**
 * Fuzzing the provider webhooks with requests that pass their signature checks: Twilio message and
 * status webhooks with random parameters, signed at run time with twilio-node's own function, and
 * Slack events and interactions with random content, signed with Slack's documented scheme. A valid
 * signature proves who sent a request, not that its content is sane: whatever it holds, the answer is
 * below 500, nothing is logged at error level, and the gateway is healthy afterwards.
 */
import fc from 'fast-check';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_TOKEN, FakeSlackApi, nextTs, SIGNING_SECRET, signSlack, TEAM_ID } from '../fakes/slack-api.js';
import { ACCOUNT_SID, AUTH_TOKEN, encodeForm, FakeTwilioApi, newSid } from '../fakes/twilio-api.js';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import {
  describeRequest,
  errorLines,
  expectHealthy,
  fuzzParams,
  type RawRequest,
  rawRequest,
} from './harness.js';

const PUBLIC_URL = 'https://chat.example.com';

let twilioApi: FakeTwilioApi;
let slackApi: FakeSlackApi;
let gw: TestGateway;

beforeAll(async () => {
  [twilioApi, slackApi] = await Promise.all([FakeTwilioApi.start(), FakeSlackApi.start()]);
  gw = await startGateway({
    PUBLIC_URL,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: twilioApi.url,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_API_URL: slackApi.url,
    SLACK_TEAM_ID: TEAM_ID,
  });
});
afterAll(async () => {
  await gw?.stop();
  await Promise.all([twilioApi?.close(), slackApi?.close()]);
});

/** Answers seen per status, per suite: the fuzzing must reach past the signature checks. */
const statuses = new Map<number, number>();

async function expectNo5xx(req: RawRequest): Promise<void> {
  const res = await rawRequest(gw.url, req);
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  if (res.status >= 500)
    throw new Error(`${res.status} for ${describeRequest(req)}: ${res.body.slice(0, 300)}`);
}

/** Text of every kind: ASCII, any Unicode, separators and the characters forms and JSON escape. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '&',
    '=',
    '+',
    '%',
    '%00',
    '\u0000',
    '\r\n',
    'whatsapp:',
    '__proto__',
    '1e309',
    '-0',
  ),
);

// --- Twilio ----------------------------------------------------------------------------------------

const TWILIO_FIELDS = [
  'MessageSid',
  'SmsSid',
  'SmsMessageSid',
  'AccountSid',
  'MessagingServiceSid',
  'From',
  'To',
  'Body',
  'NumMedia',
  'NumSegments',
  'MediaUrl0',
  'MediaContentType0',
  'MediaUrl9',
  'MediaUrl10',
  'SmsStatus',
  'MessageStatus',
  'ErrorCode',
  'ErrorMessage',
  'ApiVersion',
  'ProfileName',
  'WaId',
  'MessageType',
  'Forwarded',
  'ButtonText',
  'ButtonPayload',
  'Latitude',
  'Longitude',
  'Address',
  'Label',
  'OriginalRepliedMessageSid',
  'OriginalRepliedMessageSender',
  'ReferralBody',
  'ReferralSourceUrl',
  'ChannelMetadata',
  '__proto__',
  'constructor',
  'toString',
];

const twilioValue = fc.oneof(
  text,
  fc.constant(ACCOUNT_SID),
  fc.constantFrom('SM', 'MM').map((p) => newSid(p)),
  fc.constantFrom(
    '+14155550100',
    'whatsapp:+14155550100',
    'whatsapp:',
    '+1',
    '0',
    '-1',
    '11',
    '1e3',
    'NaN',
    'Infinity',
    'http://127.0.0.1/x',
    'https://api.twilio.com/x',
    'javascript:alert(1)',
    'delivered',
    'failed',
    'undelivered',
    'read',
    'canceled',
    'true',
    '{"a":1}',
    '91.0',
    '-181',
  ),
);

/** Parameters Twilio might send, usually shaped like a real message so the mapping code runs. */
const twilioParams = fc
  .tuple(
    fc.boolean(),
    fc.dictionary(
      fc.oneof(fc.constantFrom(...TWILIO_FIELDS), fc.string({ maxLength: 12 })),
      fc.oneof(twilioValue, fc.array(twilioValue, { maxLength: 3 })),
      {
        maxKeys: 12,
      },
    ),
  )
  .map(([realistic, random]) => {
    const params: Record<string, string | string[]> = Object.create(null);
    if (realistic) {
      const sid = newSid();
      Object.assign(params, {
        MessageSid: sid,
        SmsSid: sid,
        AccountSid: ACCOUNT_SID,
        From: '+14155550100',
        To: '+15005550006',
        Body: 'hello',
      });
    }
    for (const [k, v] of Object.entries(random)) params[k] = v;
    return params;
  });

const twilioRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    path: fc.constantFrom('/webhooks/twilio', '/webhooks/twilio/status', '/webhooks/twilio?x=1'),
    params: twilioParams,
    json: fc.boolean(),
  })
  .map(({ path, params, json }) => {
    if (json) {
      // The JSON variant: the URL carries the body's hash and the signature covers the URL only.
      const body = JSON.stringify(params);
      const signedPath = `${path}${path.includes('?') ? '&' : '?'}bodySHA256=${twilio.getExpectedBodyHash(body)}`;
      const signature = twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}${signedPath}`, {});
      return {
        method: 'POST',
        path: signedPath,
        headers: { 'content-type': 'application/json', 'x-twilio-signature': signature },
        body,
      };
    }
    const form = encodeForm(params);
    // Signed over the parameters as the gateway will decode them, exactly as twilio-node computes it.
    const decoded: Record<string, string[]> = Object.create(null);
    for (const [k, v] of new URLSearchParams(form)) {
      decoded[k] = [...(decoded[k] ?? []), v];
    }
    const flat = Object.fromEntries(Object.entries(decoded).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]));
    const signature = twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}${path}`, flat);
    return {
      method: 'POST',
      path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
      body: form,
    };
  });

// --- Slack -----------------------------------------------------------------------------------------

const slackValue = fc.oneof(
  text,
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(TEAM_ID, 'T9999', 'U0001', 'U0BOT', 'B0BOT', 'D0001', 'C0001', 'im', 'channel', 'mpim'),
);

const slackEvent = fc
  .record(
    {
      type: fc.oneof(
        fc.constantFrom(
          'message',
          'app_mention',
          'app_home_opened',
          'member_joined_channel',
          'reaction_added',
        ),
        text,
      ),
      subtype: fc.constantFrom(
        'bot_message',
        'message_changed',
        'message_deleted',
        'file_share',
        'thread_broadcast',
      ),
      channel: fc.oneof(fc.constantFrom('D0001', 'C0001', 'G0001'), text),
      channel_type: fc.constantFrom('im', 'channel', 'group', 'mpim', 'app_home'),
      user: fc.oneof(fc.constantFrom('U0001', 'U0BOT'), text),
      bot_id: fc.constantFrom('B0BOT', 'B0OTHER'),
      text,
      ts: fc.oneof(
        fc.constant(null).map(() => nextTs()),
        text,
      ),
      thread_ts: fc.oneof(
        fc.constant(null).map(() => nextTs()),
        text,
      ),
      event_ts: text,
      client_msg_id: text,
      files: fc.array(fc.dictionary(fc.string({ maxLength: 8 }), slackValue, { maxKeys: 4 }), {
        maxLength: 2,
      }),
      blocks: fc.jsonValue({ maxDepth: 3 }),
      message: fc.dictionary(fc.string({ maxLength: 8 }), slackValue, { maxKeys: 4 }),
    },
    { requiredKeys: [] },
  )
  .chain((event) =>
    fc
      .dictionary(fc.string({ maxLength: 10 }), slackValue, { maxKeys: 3 })
      .map((extra) => ({ ...extra, ...event })),
  );

const slackBody = fc.oneof(
  fc
    .record(
      {
        type: fc.oneof(fc.constantFrom('event_callback', 'url_verification', 'app_rate_limited'), text),
        team_id: fc.oneof(fc.constant(TEAM_ID), text),
        api_app_id: fc.constant('A0001'),
        event_id: fc.oneof(
          fc.uuid().map((u) => `Ev${u}`),
          text,
        ),
        event_time: fc.oneof(fc.integer(), text),
        challenge: text,
        event: fc.oneof(slackEvent, slackValue),
        authorizations: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: ['type', 'event'] },
    )
    .map((v) => ({
      path: '/webhooks/slack/events',
      contentType: 'application/json',
      body: JSON.stringify(v),
    })),
  fc
    .record(
      {
        type: fc.oneof(fc.constantFrom('block_actions', 'view_submission', 'shortcut'), text),
        team: fc.record({ id: fc.oneof(fc.constant(TEAM_ID), text) }, { requiredKeys: [] }),
        user: fc.record({ id: fc.oneof(fc.constant('U0001'), text), name: text }, { requiredKeys: [] }),
        channel: fc.record({ id: fc.oneof(fc.constant('D0001'), text) }, { requiredKeys: [] }),
        container: fc.jsonValue({ maxDepth: 2 }),
        message: fc.jsonValue({ maxDepth: 2 }),
        actions: fc.array(
          fc.record(
            {
              action_id: text,
              value: text,
              block_id: text,
              type: fc.constantFrom('button', 'static_select'),
              text: slackValue,
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        trigger_id: text,
        response_url: fc.constantFrom('https://hooks.slack.com/actions/x', 'http://127.0.0.1:1/x', 'nope'),
      },
      { requiredKeys: ['type'] },
    )
    .map((v) => ({
      path: '/webhooks/slack/interactions',
      contentType: 'application/x-www-form-urlencoded',
      body: new URLSearchParams({ payload: JSON.stringify(v) }).toString(),
    })),
  fc
    .tuple(fc.constantFrom('/webhooks/slack/events', '/webhooks/slack/interactions'), text)
    .map(([path, body]) => ({ path, contentType: 'application/json', body })),
  fc.tuple(fc.constantFrom('/webhooks/slack/interactions'), text).map(([path, payload]) => ({
    path,
    contentType: 'application/x-www-form-urlencoded',
    body: `payload=${encodeURIComponent(payload)}`,
  })),
);

const slackRequest: fc.Arbitrary<RawRequest> = fc
  .tuple(slackBody, fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }))
  .map(([{ path, contentType, body }, retry]) => ({
    method: 'POST',
    path,
    headers: {
      'content-type': contentType,
      ...signSlack(body),
      ...(retry === undefined
        ? {}
        : { 'x-slack-retry-num': String(retry), 'x-slack-retry-reason': 'http_timeout' }),
    },
    body,
  }));

describe('fuzz: provider webhooks with valid signatures', () => {
  it('Twilio: any signed parameters are answered below 500', async () => {
    statuses.clear();
    await fc.assert(fc.asyncProperty(twilioRequest, expectNo5xx), fuzzParams(0x7111));
    expect(errorLines(gw.logs)).toEqual([]);
    // Every refusal is of the content; a signed request is never taken for a forged one.
    expect(
      gw.logs.lines.filter((l) => l.msg === 'Twilio webhook refused' && l.reason === 'bad_signature'),
    ).toEqual([]);
    expect((statuses.get(200) ?? 0) + (statuses.get(204) ?? 0)).toBeGreaterThan(0);
  });

  it('Slack: any signed event or interaction is answered below 500', async () => {
    statuses.clear();
    await fc.assert(fc.asyncProperty(slackRequest, expectNo5xx), fuzzParams(0x51ac));
    expect(errorLines(gw.logs)).toEqual([]);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
  });

  it('is healthy afterwards, and the replies to what was accepted went out without errors', async () => {
    await expectHealthy(gw.url, API_KEY);
    // Give the engine a moment to answer what the fuzzing stored, then look again.
    await new Promise((r) => setTimeout(r, 500));
    expect(errorLines(gw.logs)).toEqual([]);
  });
});
