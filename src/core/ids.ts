/** @module Opaque, unique, time-sortable ids (ULID with a type prefix). */
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/** Random bytes fetched per system call; ulid's own PRNG makes one call per character. */
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let used = POOL_SIZE;

/** ulid's default PRNG (a CSPRNG byte / 256), served from a pool refilled in bulk. */
function pooledPrng(): number {
  if (used === POOL_SIZE) {
    randomFillSync(pool);
    used = 0;
  }
  return pool[used++]! / 256;
}

const ulid = monotonicFactory(pooledPrng);

export type IdPrefix = 'conv' | 'msg' | 'sess' | 'part' | 'wh' | 'evt' | 'dlv' | 'att' | 'ct' | 'key';

/** A new id such as `msg_01JD...`; ids made later sort after ids made earlier in this process. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}

const ID_RE = /^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Cheap shape check used to reject garbage path parameters before touching storage. */
export function isId(value: string, prefix?: IdPrefix): boolean {
  return ID_RE.test(value) && (prefix === undefined || value.startsWith(`${prefix}_`));
}
