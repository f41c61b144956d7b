/** Captures a gateway's JSON log lines so tests can assert on them (and on what must never appear). */
import { Writable } from 'node:stream';

export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.lines.push({ msg: line });
      }
    }
    cb();
  }
  text(): string {
    return this.raw.join('\n');
  }
}
