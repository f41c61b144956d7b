/**
 * @module The Lua scripts of the Redis store. Each lives in `lua/<name>-<numkeys>.lua` with a header
 * documenting KEYS, ARGV and the reply; they are read once at import and registered with ioredis
 * `defineCommand`, which runs them by EVALSHA and falls back to EVAL after a server restart emptied
 * the script cache.
 */
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/** Script names with their key count. */
export const SCRIPT_KEYS = {
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

export interface ScriptSource {
  name: ScriptName;
  /** The file name under `lua/`. */
  file: string;
  numberOfKeys: number;
  lua: string;
}

function read(path: string): string {
  return readFileSync(new URL(`./lua/${path}`, import.meta.url), 'utf8');
}

/** Lua shared by several scripts (Redis runs each script alone: they cannot call one another). */
const LIBS = ['lib/messages.lua'];

/** A script's source, with the shared files it names in a `-- uses <file>` line put in front. */
function load(name: ScriptName): ScriptSource {
  const numberOfKeys = SCRIPT_KEYS[name];
  const file = `${name}-${numberOfKeys}.lua`;
  const own = read(file);
  const libs = LIBS.filter((lib) => own.includes(`\n-- uses ${lib}\n`)).map(read);
  return { name, file, numberOfKeys, lua: [...libs, own].join('\n') };
}

/** Every script, loaded from disk. */
export const SCRIPTS: readonly ScriptSource[] = (Object.keys(SCRIPT_KEYS) as ScriptName[]).map(load);

/** The ioredis command name of a script; namespaced so it cannot shadow a real Redis command. */
export function commandName(name: ScriptName): string {
  return `switchboard_${name}`;
}

export type ScriptArg = string | number;
export type ScriptRunner = (...args: ScriptArg[]) => Promise<unknown>;
/** Runs one script by name with its keys and arguments. */
export type ScriptRun = (
  name: ScriptName,
  keys: readonly string[],
  args: readonly ScriptArg[],
) => Promise<unknown>;

/** Registers every script on a connection and returns a runner per script taking `(keys, args)`. */
export function defineScripts(redis: Redis | Cluster): ScriptRun {
  for (const s of SCRIPTS) {
    redis.defineCommand(commandName(s.name), { lua: s.lua, numberOfKeys: s.numberOfKeys });
  }
  const commands = redis as unknown as Record<string, ScriptRunner>;
  // Bound once here rather than on every call: scripts run on every request's hot path.
  const runners = new Map(SCRIPTS.map((s) => [s.name, commands[commandName(s.name)]!.bind(redis)]));
  return (name, keys, args) => runners.get(name)!(...keys, ...args);
}
