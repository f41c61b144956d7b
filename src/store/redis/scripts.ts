/**
 * @module Lua scripts on Redis: the store's own, and the loader the webhook repository shares. Each
 * script lives in `<name>-<numkeys>.lua` with a header documenting KEYS, ARGV and the reply; scripts
 * are read once at import and registered with ioredis `defineCommand`, which runs them by EVALSHA and
 * falls back to EVAL after a server restart emptied the script cache.
 */
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/** Script names with their key count. */
const SCRIPT_KEYS = {
  create: 1,
  accept: 7,
  append: 3,
  cas: 1,
  claimsend: 2,
  delmsg: 2,
  delconv: 7,
  claim: 3,
  heartbeat: 2,
  complete: 7,
  release: 4,
  ring: 1,
  cad: 1,
} as const satisfies Record<string, number>;

export type ScriptName = keyof typeof SCRIPT_KEYS;

export interface ScriptSource<N extends string = ScriptName> {
  name: N;
  /** The file name in the script folder. */
  file: string;
  numberOfKeys: number;
  lua: string;
}

/** A `-- uses <file>` line: the script needs that shared file (path relative to its folder). */
const USES = /^-- uses (\S+)$/gm;

/**
 * Loads `<name>-<numkeys>.lua` from `dir` for every script in `keys`, with the shared files each one
 * names in a `-- uses <file>` line put in front (Redis runs each script alone: they cannot call one
 * another).
 */
export function loadScripts<N extends string>(dir: URL, keys: Record<N, number>): ScriptSource<N>[] {
  const read = (path: string) => readFileSync(new URL(path, dir), 'utf8');
  return (Object.keys(keys) as N[]).map((name) => {
    const numberOfKeys = keys[name];
    const file = `${name}-${numberOfKeys}.lua`;
    const own = read(file);
    const libs = [...own.matchAll(USES)].map((m) => read(m[1]!));
    return { name, file, numberOfKeys, lua: [...libs, own].join('\n') };
  });
}

/** The store's scripts, loaded from disk. */
export const SCRIPTS: readonly ScriptSource[] = loadScripts(new URL('./lua/', import.meta.url), SCRIPT_KEYS);

type ScriptArg = string | number;
type ScriptRunner = (...args: ScriptArg[]) => Promise<unknown>;
/** Runs one script by name with its keys and arguments. */
export type ScriptRun<N extends string = ScriptName> = (
  name: N,
  keys: readonly string[],
  args: readonly ScriptArg[],
) => Promise<unknown>;

/**
 * Registers `scripts` on a connection as `<namespace>_<name>` (namespaced so none can shadow a real
 * Redis command) and returns a runner taking `(name, keys, args)`.
 */
export function defineScripts<N extends string>(
  redis: Redis | Cluster,
  scripts: readonly ScriptSource<N>[],
  namespace: string,
): ScriptRun<N> {
  for (const s of scripts) {
    redis.defineCommand(`${namespace}_${s.name}`, { lua: s.lua, numberOfKeys: s.numberOfKeys });
  }
  const commands = redis as unknown as Record<string, ScriptRunner>;
  // Bound once here rather than on every call: scripts run on every request's hot path.
  const runners = new Map(scripts.map((s) => [s.name, commands[`${namespace}_${s.name}`]!.bind(redis)]));
  return (name, keys, args) => runners.get(name)!(...keys, ...args);
}
