/**
 * The Switchboard operator console (SPEC §11). Signs in with an API key exchanged for a session
 * cookie, then shows the inbox and the operations view, kept current by the live feed. When the
 * session ends, the sign-in shows over the page and everything typed stays until it is sent.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { currentSession, type SessionInfo, signOut, whenSignedOut } from './api.js';
import { publish } from './bus.js';
import { Inbox } from './inbox.js';
import { connectLive, type LiveState } from './live.js';
import { Operations } from './operations.js';
import { SignIn } from './signin.js';
import './styles.css';

type View = 'inbox' | 'operations';

function App() {
  const [session, setSession] = useState<SessionInfo | undefined>();
  const [checked, setChecked] = useState(false);
  const [expired, setExpired] = useState(false);
  const [view, setView] = useState<View>('inbox');
  const [live, setLive] = useState<LiveState>('connecting');
  // Drafts per conversation: in the page's memory only, so they survive a signed-out session.
  const drafts = useRef(new Map<string, string>()).current;

  useEffect(() => {
    whenSignedOut(() => setExpired(true));
    void currentSession()
      .then(setSession)
      .finally(() => setChecked(true));
  }, []);

  // The live feed runs while signed in; a new sign-in opens a new one.
  useEffect(() => {
    if (!session || expired) return undefined;
    return connectLive({
      notice: publish,
      state: setLive,
      signedOut: () => setExpired(true),
      // Missed notices while away: every view reads again.
      resync: () => publish({ type: 'resync', conversationId: '', seq: 0, at: new Date().toISOString() }),
    });
  }, [session, expired]);

  if (!checked) return <p class="empty">Loading…</p>;
  if (!session) return <SignIn expired={false} defaultName="" onSignedIn={setSession} />;

  const leave = async () => {
    await signOut();
    drafts.clear();
    setSession(undefined);
    setExpired(false);
  };

  return (
    <div class="app">
      <header class="topbar">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true">
            S
          </span>
          <span class="brand-name">Switchboard</span>
        </div>
        <nav class="tabs" aria-label="Views">
          <button
            type="button"
            class={view === 'inbox' ? 'tab active' : 'tab'}
            aria-current={view === 'inbox' ? 'page' : undefined}
            onClick={() => setView('inbox')}
          >
            Inbox
          </button>
          <button
            type="button"
            class={view === 'operations' ? 'tab active' : 'tab'}
            aria-current={view === 'operations' ? 'page' : undefined}
            onClick={() => setView('operations')}
          >
            Operations
          </button>
        </nav>
        <span class={`live live-${live}`} role="status">
          <span class="live-dot" aria-hidden="true" />
          {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
        <span class="agent" title={`Signed in with ${session.keyName}`}>
          {session.agent}
        </span>
        <button type="button" class="signout" onClick={leave}>
          Sign out
        </button>
      </header>
      <main class="main">
        {view === 'inbox' ? <Inbox session={session} drafts={drafts} /> : <Operations />}
      </main>
      {expired && (
        <SignIn
          expired
          defaultName={session.agent}
          onSignedIn={(next) => {
            setSession(next);
            setExpired(false);
          }}
        />
      )}
    </div>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
