/** @module Opaque, unique, time-sortable ids (ULID with a type prefix). */
import { monotonicFactory } from 'ulid';

const ulid = monotonicFactory();

export type IdPrefix = 'conv' | 'msg' | 'sess' | 'part' | 'wh' | 'evt' | 'dlv' | 'att';

/** A new id such as `msg_01JD...`; ids made later sort after ids made earlier in this process. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}

const ID_RE = /^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Cheap shape check used to reject garbage path parameters before touching storage. */
export function isId(value: string, prefix?: IdPrefix): boolean {
  return ID_RE.test(value) && (prefix === undefined || value.startsWith(`${prefix}_`));
}
