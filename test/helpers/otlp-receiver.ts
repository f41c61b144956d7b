/**
 * A real OTLP/HTTP traces receiver on loopback: it takes the exporter's `POST /v1/traces` requests
 * (JSON bodies, gzip or not), answers as a collector does and keeps every span with its resource's
 * `service.name`, ids in hex as OTLP/JSON writes them.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
type KeyValue = { key: string; value: AnyValue };

export interface ReceivedSpan {
  service: string;
  /** Every attribute of the span's resource (`service.name` included). */
  resource: Record<string, string | number | boolean>;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, string | number | boolean> }>;
  status?: { code?: number };
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    out[key] =
      value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.boolValue ??
      value.doubleValue ??
      '';
  }
  return out;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Every export request's path, content type and headers, in order. */
  readonly requests: Array<{ path: string; contentType: string; headers: IncomingMessage['headers'] }> = [];
  #server: Server;
  url = '';

  private constructor() {
    this.#server = createServer(async (req, res) => {
      const raw = await body(req);
      this.requests.push({
        path: req.url ?? '',
        contentType: String(req.headers['content-type'] ?? ''),
        headers: req.headers,
      });
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const payload = JSON.parse(raw.toString('utf8')) as {
        resourceSpans?: Array<{
          resource?: { attributes?: KeyValue[] };
          scopeSpans?: Array<{
            spans?: Array<{
              traceId: string;
              spanId: string;
              parentSpanId?: string;
              name: string;
              kind: number;
              startTimeUnixNano: string;
              endTimeUnixNano: string;
              attributes?: KeyValue[];
              links?: Array<{ traceId: string; spanId: string; attributes?: KeyValue[] }>;
              status?: { code?: number };
            }>;
          }>;
        }>;
      };
      for (const rs of payload.resourceSpans ?? []) {
        const resource = attrs(rs.resource?.attributes);
        const service = String(resource['service.name'] ?? '');
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            this.spans.push({
              service,
              resource,
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: s.kind,
              startNs: BigInt(s.startTimeUnixNano),
              endNs: BigInt(s.endTimeUnixNano),
              attributes: attrs(s.attributes),
              links: (s.links ?? []).map((l) => ({
                traceId: l.traceId,
                spanId: l.spanId,
                attributes: attrs(l.attributes),
              })),
              ...(s.status ? { status: s.status } : {}),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  }

  static async start(): Promise<OtlpReceiver> {
    const receiver = new OtlpReceiver();
    await new Promise<void>((resolve) => receiver.#server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.#server.address() as AddressInfo).port}`;
    return receiver;
  }

  /** The spans named `name` (optionally of one service). */
  named(name: string, service?: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.name === name && (service === undefined || s.service === service));
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
