/**
 * Pieces of a customer's site embedding the web-chat widget, shared by the widget's browser tests and
 * the screenshot script: the site's own token endpoint (it signs the visitor's token with the web-chat
 * secret, as a real site's backend does) and real PNG images for the browser to decode.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { crc32, deflateSync } from 'node:zlib';
import jwt from 'jsonwebtoken';

/**
 * Answers `POST /token` as a site's backend would: `{ token, visitorId }`, the token signed HS256 with
 * `secret` for the visitor id the widget sent (a new one on a first visit), valid ten minutes.
 */
export function answerToken(
  req: IncomingMessage,
  res: ServerResponse,
  opts: { secret: string; name: string },
): void {
  let body = '';
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', () => {
    const sent = (body ? JSON.parse(body) : {}) as { visitorId?: string };
    const visitorId = sent.visitorId ?? `shopper-${Math.random().toString(36).slice(2)}`;
    const token = jwt.sign({ sub: visitorId, name: opts.name }, opts.secret, {
      algorithm: 'HS256',
      expiresIn: '10m',
    });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token, visitorId }));
  });
}

/** A real PNG, `w`×`h`, each pixel's RGB from `pixel(x, y)`. */
export function png(w: number, h: number, pixel: (x: number, y: number) => [number, number, number]): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'latin1'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tb));
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows: Buffer[] = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3);
    for (let x = 0; x < w; x++) row.set(pixel(x, y), 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A PNG of one colour. */
export function solidPng(w: number, h: number, rgb: [number, number, number]): Buffer {
  return png(w, h, () => rgb);
}
