/** @module Structured JSON logs (pino) that never carry secrets. */
import { type Logger, pino } from 'pino';

/** Paths redacted wherever they appear in a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-twilio-signature"]',
  'req.headers["x-slack-signature"]',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'authorization',
  'token',
  'secret',
  'password',
  'apiKey',
  '*.token',
  '*.secret',
  '*.password',
  '*.apiKey',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'switchboard' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination as pino.DestinationStream | undefined,
  );
}
