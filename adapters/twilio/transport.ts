/**
 * @module The HTTP transport under the twilio client: one request of twilio's `RequestClient` contract
 * (method, uri, username/password, headers, form or JSON data, query params) sent with Node's own
 * `http`/`https` over keep-alive connections, answered as `{ statusCode, body, headers }`.
 *
 * twilio's stock `RequestClient` sends through axios. Its per-request cost (config merging,
 * interceptors, header objects) was a third of the CPU an answered message took, more than the
 * gateway's own work on it: docs/benchmarks.md has the paired rounds. The twilio package documents
 * `httpClient` as the place to bring one's own HTTP client; everything above it (the resources,
 * parameter serialization, auth, `RestException` from error bodies) stays the library's.
 *
 * The body is returned as the text it was: twilio's `Version` parses JSON strings itself, and an error
 * body that is not JSON still becomes a `RestException` with the status.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** The options twilio's resources pass to `httpClient.request` that a transport must honour. */
export interface TransportRequest {
  method: string;
  uri: string;
  username?: string;
  password?: string;
  headers?: Record<string, string>;
  data?: unknown;
  params?: unknown;
}

export interface TransportResponse {
  statusCode: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** A request that got no complete answer within the timeout. Not retried: Twilio may have acted on it. */
export class TransportTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(timeoutMs: number) {
    super(`Twilio API request timed out after ${timeoutMs} ms`);
    this.name = 'TransportTimeoutError';
  }
}

/** The answers Twilio sends are small; a larger one is not Twilio's and is cut off. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export class KeepAliveTransport {
  readonly #timeoutMs: number;
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });

  constructor(opts: { timeoutMs: number }) {
    this.#timeoutMs = opts.timeoutMs;
  }

  send(opts: TransportRequest): Promise<TransportResponse> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.username && opts.password) {
      headers.Authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    }
    let body: string | undefined;
    if (opts.data !== undefined && opts.data !== null) {
      const type = headers['Content-Type'];
      if (type === 'application/x-www-form-urlencoded') body = formEncode(opts.data);
      else if (type === 'application/json') body = JSON.stringify(opts.data);
    }
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    let uri = opts.uri;
    const query = opts.params === undefined || opts.params === null ? '' : formEncode(opts.params);
    if (query) uri += `${uri.includes('?') ? '&' : '?'}${query}`;
    const secure = uri.startsWith('https:');
    const send = secure ? httpsRequest : httpRequest;
    const timeoutMs = this.#timeoutMs;
    return new Promise((resolve, reject) => {
      const req = send(
        uri,
        { method: opts.method.toUpperCase(), headers, agent: secure ? this.#https : this.#http },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy(new Error(`Twilio API answer larger than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve({
              statusCode: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: res.headers,
            });
          });
          res.on('error', reject);
        },
      );
      // One deadline for the whole exchange, connect to last byte (a socket timeout would only catch
      // silence between packets).
      const timer = setTimeout(() => req.destroy(new TransportTimeoutError(timeoutMs)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(body);
    });
  }

  /** Closes idle keep-alive sockets (shutdown). */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

/**
 * `application/x-www-form-urlencoded` as twilio's own client writes it (qs with `arrayFormat:
 * "repeat"`, RFC 3986 escapes): arrays repeat their key, `undefined` is left out, `null` is an empty
 * value. twilio's resources hand over flat objects of strings, numbers, booleans and arrays of them.
 */
export function formEncode(data: unknown): string {
  if (typeof data !== 'object' || data === null) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one === undefined) continue;
      parts.push(`${escapeRfc3986(key)}=${one === null ? '' : escapeRfc3986(String(one))}`);
    }
  }
  return parts.join('&');
}

/** encodeURIComponent plus the five characters RFC 3986 reserves that it leaves alone. */
function escapeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
