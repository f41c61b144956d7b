/**
 * @module Who may sign in to the console (SPEC §11): a key with the `console` scope. The check is a
 * function handed to the console routes, so any key service can back it; {@link apiKeysAuthenticate}
 * is the one for the configured `API_KEYS`, each of which may use the console.
 */
import { apiKeyMatch } from '../http/auth.js';

/** The scope a key needs to sign in to the console. */
export const CONSOLE_SCOPE = 'console';

export interface ConsoleKey {
  /** The key's name, shown as the agent's name when none is given at sign-in (never the key). */
  name: string;
  scopes: ReadonlySet<string>;
}

/** Resolves a presented key to its name and scopes; undefined when it is not a key at all. */
export type ConsoleAuthenticate = (token: string) => Promise<ConsoleKey | undefined>;

/** Every key of `API_KEYS` may use the console; compared in constant time ({@link apiKeyMatch}). */
export function apiKeysAuthenticate(keys: readonly string[]): ConsoleAuthenticate {
  const match = apiKeyMatch(keys);
  const key: ConsoleKey = { name: 'API key', scopes: new Set([CONSOLE_SCOPE]) };
  return async function apiKeysAuthenticate(token) {
    return match(`Bearer ${token}`) === undefined ? key : undefined;
  };
}
