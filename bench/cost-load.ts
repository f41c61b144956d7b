/**
 * The load generator of `bench/cost.ts`, in a process of its own so that none of its CPU time or
 * garbage counts against the server measured: closed-loop wrk (bench/lib.ts `load`), the same request bodies the
 * scenarios send (signed Slack events, signed Twilio webhooks, API messages). Prints the number of
 * responses and errors as JSON on its last line.
 */
import twilio from 'twilio';
import { directMessage, signSlack } from '../test/fakes/slack-api.js';
import { AUTH_TOKEN, encodeForm, smsParams } from '../test/fakes/twilio-api.js';
import { load, messageBody } from './lib.js';

export interface CostLoad {
  kind: 'slack' | 'twilio' | 'api';
  url: string;
  /** Twilio signs the public URL, not the local one. */
  publicUrl?: string;
  headers: Record<string, string>;
  conversations?: string[];
  /** A number unique to the run (as a string), so no run repeats another's messages. */
  idPrefix: string;
  connections: number;
  durationS: number;
}

const spec = JSON.parse(process.argv[2]!) as CostLoad;
const base = Math.floor(Date.now() / 1000);
let n = 0;

function build(): { body: string; headers?: Record<string, string> } {
  const i = n++;
  if (spec.kind === 'slack') {
    const user = i % 100;
    const ts = `${base + Number(spec.idPrefix) * 1000}.${String(i).padStart(6, '0')}`;
    const body = directMessage({
      channel: `D${String(user).padStart(6, '0')}`,
      user: `U${String(user).padStart(6, '0')}`,
      text: `bench message ${i}`,
      ts,
    });
    return { body, headers: signSlack(body) };
  }
  if (spec.kind === 'twilio') {
    const params = smsParams({
      MessageSid: `SM${(Number(spec.idPrefix) * 1e8 + i).toString(16).padStart(32, '0')}`,
      From: `+1415555${String(i % 100).padStart(4, '0')}`,
      Body: `bench message ${i}`,
    });
    return {
      body: encodeForm(params),
      headers: {
        'x-twilio-signature': twilio.getExpectedTwilioSignature(AUTH_TOKEN, spec.publicUrl!, params),
      },
    };
  }
  return { body: messageBody(spec.conversations!, spec.idPrefix, i) };
}

const result = await load({
  url: spec.url,
  headers: spec.headers,
  request: build,
  connections: spec.connections,
  durationS: spec.durationS,
});
console.log(JSON.stringify({ total: result.total, bad: result.errors + result.non2xx }));
