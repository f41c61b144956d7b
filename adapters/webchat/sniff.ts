/**
 * @module The type of an uploaded file, read from its first bytes. The browser's `Content-Type` is the
 * visitor's claim (a renamed `.html` says `image/png` as easily as anything); only these signatures
 * decide what a file is stored and served as.
 */

/** Every type the gateway can recognize by content; `WEBCHAT_UPLOAD_TYPES` is a subset of these. */
export const UPLOAD_TYPES = [
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'application/pdf',
  'text/plain',
] as const;

export type UploadType = (typeof UPLOAD_TYPES)[number];

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];

function startsWith(bytes: Buffer, signature: readonly number[], at = 0): boolean {
  if (bytes.length < at + signature.length) return false;
  return signature.every((b, i) => bytes[at + i] === b);
}

function ascii(bytes: Buffer, text: string, at = 0): boolean {
  return bytes.length >= at + text.length && bytes.toString('latin1', at, at + text.length) === text;
}

/** Plain text: valid UTF-8 without NUL or other C0 controls than tab, line feed, form feed, carriage return. */
function isPlainText(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return false;
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters
  return !/[\u0000-\u0008\u000b\u000e-\u001f\u007f]/.test(text);
}

/** The type the content is, among {@link UPLOAD_TYPES}; undefined when it is none of them. */
export function sniffType(bytes: Buffer): UploadType | undefined {
  if (startsWith(bytes, PNG)) return 'image/png';
  if (startsWith(bytes, JPEG)) return 'image/jpeg';
  if (ascii(bytes, 'GIF87a') || ascii(bytes, 'GIF89a')) return 'image/gif';
  if (ascii(bytes, 'RIFF') && ascii(bytes, 'WEBP', 8)) return 'image/webp';
  if (ascii(bytes, '%PDF-')) return 'application/pdf';
  if (isPlainText(bytes)) return 'text/plain';
  return undefined;
}
