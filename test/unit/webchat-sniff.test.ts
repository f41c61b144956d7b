/** A file's type from its first bytes, and the file name a browser sends, made safe. */
import { describe, expect, it } from 'vitest';
import { sniffType } from '../../adapters/webchat/sniff.js';
import { fileName } from '../../adapters/webchat/uploads.js';

const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('sniffType', () => {
  it('recognizes each accepted type by its signature', () => {
    expect(sniffType(bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'rest'))).toBe('image/png');
    expect(sniffType(bytes([0xff, 0xd8, 0xff, 0xe0], 'JFIF'))).toBe('image/jpeg');
    expect(sniffType(bytes('GIF89a', [1, 0, 1, 0]))).toBe('image/gif');
    expect(sniffType(bytes('GIF87a', [1, 0, 1, 0]))).toBe('image/gif');
    expect(sniffType(bytes('RIFF', [0, 0, 0, 0], 'WEBPVP8 '))).toBe('image/webp');
    expect(sniffType(bytes('%PDF-1.7\n'))).toBe('application/pdf');
    expect(sniffType(Buffer.from('Order 1042\r\n\tthanks, ünïcode ✓\n'))).toBe('text/plain');
  });

  it('recognizes nothing else, whatever the name or claimed type', () => {
    // Truncated signatures, a RIFF that is not WebP (WAV), binaries, and text with control bytes.
    expect(sniffType(bytes([0x89, 0x50, 0x4e, 0x47]))).toBeUndefined();
    expect(sniffType(bytes('RIFF', [0, 0, 0, 0], 'WAVEfmt '))).toBeUndefined();
    expect(sniffType(bytes('MZ', [0x90, 0, 3, 0]))).toBeUndefined();
    expect(sniffType(bytes([0x50, 0x4b, 3, 4]))).toBeUndefined();
    expect(sniffType(Buffer.from('<html>\u0000</html>'))).toBeUndefined();
    expect(sniffType(Buffer.from('bell\u0007'))).toBeUndefined();
    expect(sniffType(bytes([0xc3, 0x28]))).toBeUndefined();
    expect(sniffType(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('fileName', () => {
  it('decodes the percent-encoded name and keeps only a safe base name', () => {
    expect(fileName(encodeURIComponent('photo ü.png'))).toBe('photo ü.png');
    expect(fileName('..%2F..%2Fetc%2Fpasswd')).toBe('passwd');
    expect(fileName('C:\\Users\\sam\\cv.pdf')).toBe('cv.pdf');
    expect(fileName(encodeURIComponent('a\r\nSet-Cookie: x.txt'))).toBe('aSet-Cookie: x.txt');
    expect(fileName('%E0%A4%A')).toBe('%E0%A4%A');
    expect(fileName(undefined)).toBe('upload');
    expect(fileName('%2F')).toBe('upload');
    expect(fileName('x'.repeat(500))).toHaveLength(200);
  });
});
