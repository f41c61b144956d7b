/**
 * @module The raw bytes of a Slack request, read straight off the request stream in the usual case:
 * an uncompressed body of a declared length within the limit. That is every request Slack sends, and
 * body-parser's general reader (type checks, charset and encoding handling, the listeners of raw-body
 * and on-finished) cost each of them more than the read itself. Anything else (chunked, compressed,
 * over the limit, already read) is left to the general reader, which answers it as before.
 */
import type { IncomingMessage } from 'node:http';

/** Why a read failed, as body-parser reports it: `status` 400. */
export class BodyReadError extends Error {
  readonly status = 400;
}

/**
 * Reads the body when the request declares a length of at most `limit` bytes and no content
 * encoding (nor a transfer encoding, which would make the length meaningless); otherwise undefined,
 * and nothing was read. Rejects with {@link BodyReadError} when the request ends early or fails.
 */
export function readPlainBody(req: IncomingMessage, limit: number): Promise<Buffer> | undefined {
  const { headers } = req;
  const declared = headers['content-length'];
  if (declared === undefined || headers['transfer-encoding'] !== undefined) return undefined;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return undefined;
  if (!/^\d{1,10}$/.test(declared)) return undefined;
  const length = Number(declared);
  if (length > limit || req.readableEnded || req.readableFlowing !== null) return undefined;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      chunks.push(chunk);
    };
    const settle = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onEnd = () => {
      settle();
      // Node frames the body by its declared length; fewer bytes means the request did not complete.
      if (received !== length) reject(new BodyReadError('request size did not match content length'));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    const onError = (err: Error) => {
      settle();
      reject(new BodyReadError(err.message));
    };
    const onClose = () => {
      settle();
      reject(new BodyReadError('request aborted'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
