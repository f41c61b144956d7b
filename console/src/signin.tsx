/** The sign-in form: an API key with the `console` scope and the name the agent's replies carry. */
import { useState } from 'preact/hooks';
import { ApiError, type SessionInfo, signIn } from './api.js';

export function SignIn({
  onSignedIn,
  expired,
  defaultName,
}: {
  onSignedIn: (session: SessionInfo) => void;
  /** The session ran out while the page was open: the page behind keeps what was typed. */
  expired: boolean;
  defaultName: string;
}) {
  const [key, setKey] = useState('');
  const [name, setName] = useState(defaultName);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await signIn(key.trim(), name);
      // The key is not kept: not in state, not in storage.
      setKey('');
      onSignedIn(session);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? `Sign-in refused: ${err.message}. Check the key and try again.`
          : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class={expired ? 'signin-backdrop' : 'signin-page'}>
      <form class="signin" onSubmit={submit} aria-labelledby="signin-title">
        <div class="brand brand-large">
          <span class="brand-mark" aria-hidden="true">
            S
          </span>
          Switchboard
        </div>
        <h1 id="signin-title">{expired ? 'Your session ended' : 'Sign in to the console'}</h1>
        <p class="muted">
          {expired
            ? 'Sign in again to carry on. Anything you were typing is still there.'
            : 'Use an API key with the console scope. The key is exchanged for a session and not kept in this page.'}
        </p>
        <label for="signin-key">API key</label>
        <input
          id="signin-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <label for="signin-name">Your name</label>
        <input
          id="signin-name"
          type="text"
          autocomplete="name"
          maxLength={100}
          placeholder="Shown to customers with your replies"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
