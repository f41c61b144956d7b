/**
 * One conversation: its header with Take / Hand back, the transcript (customer, bot, agent and
 * activity told apart; delivery ticks, times, attachments) and the reply box, which sends as the
 * signed-in agent. The draft is kept in the page until it is sent, through a signed-out session too.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  type Attachment,
  api,
  type Conversation,
  type Message,
  type Page,
  type SessionInfo,
  SignedOut,
} from './api.js';
import { debounce, subscribe } from './bus.js';
import { ChannelIcon, channelLabel, Glyph, StatusBadge, Ticks, time, titleOf } from './ui.js';

function Attachments({ items }: { items: Attachment[] }) {
  if (items.length === 0) return null;
  return (
    <ul class="attachments">
      {items.map((a) => (
        <li key={a.url}>
          <a href={a.url} target="_blank" rel="noopener noreferrer">
            <Glyph name="clip" />
            {a.name ?? a.url.split('/').pop() ?? 'attachment'}
          </a>
          <span class="muted"> {a.contentType}</span>
        </li>
      ))}
    </ul>
  );
}

function Bubble({ message, conversation }: { message: Message; conversation: Conversation }) {
  if (message.type === 'activity' || message.type === 'context') {
    return (
      <li class="activity" data-type={message.type}>
        <span>{message.description ?? message.text}</span>
        <time dateTime={message.createdAt}> · {time(message.createdAt)}</time>
      </li>
    );
  }
  const participant = conversation.participants.find((p) => p.id === message.participantId);
  const who =
    message.type === 'user'
      ? (participant?.name ?? message.name ?? 'Customer')
      : message.type === 'agent'
        ? (message.name ?? participant?.name ?? 'Agent')
        : (message.name ?? 'Bot');
  return (
    <li class={`msg msg-${message.type}`} data-type={message.type} data-message={message.id}>
      <div class="msg-who">
        {who}
        {message.type === 'agent' && <span class="role-tag">Agent</span>}
        {message.type === 'bot' && who !== 'Bot' && <span class="role-tag">Bot</span>}
      </div>
      <div class="msg-body">
        <p class="msg-text">{message.text}</p>
        <Attachments items={message.attachments} />
        <div class="msg-meta">
          <time dateTime={message.createdAt} title={new Date(message.createdAt).toLocaleString()}>
            {time(message.createdAt)}
          </time>
          {message.delivery && (
            <Ticks status={message.delivery.status} error={message.delivery.error?.message} />
          )}
        </div>
      </div>
    </li>
  );
}

export function Transcript({
  id,
  session,
  drafts,
  onBack,
  onToggleContact,
  onChanged,
}: {
  id: string;
  session: SessionInfo;
  drafts: Map<string, string>;
  onBack: () => void;
  onToggleContact: () => void;
  onChanged: (conversation: Conversation) => void;
}) {
  const [conversation, setConversation] = useState<Conversation | undefined>();
  const [messages, setMessages] = useState<Message[] | undefined>();
  const [draft, setDraftState] = useState(drafts.get(id) ?? '');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState<string | undefined>();
  const log = useRef<HTMLOListElement>(null);
  const box = useRef<HTMLTextAreaElement>(null);

  const setDraft = (text: string) => {
    setDraftState(text);
    if (text) drafts.set(id, text);
    else drafts.delete(id);
  };

  const load = useCallback(async () => {
    try {
      const [c, page] = await Promise.all([
        api<Conversation>(`/conversations/${id}`),
        api<Page<Message>>(`/conversations/${id}/messages?take=200&order=desc`),
      ]);
      setConversation(c);
      setMessages(page.items.reverse());
      onChanged(c);
    } catch (err) {
      if (!(err instanceof SignedOut)) setError(err instanceof Error ? err.message : String(err));
    }
  }, [id]);

  useEffect(() => {
    void load();
    const reload = debounce(() => void load(), 80);
    const off = subscribe((notice) => {
      if (notice.conversationId === id || notice.type === 'resync') reload();
    });
    return () => {
      off();
      reload.cancel();
    };
  }, [load, id]);

  // Keep the newest message in view.
  useLayoutEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages?.length]);

  const act = async (label: string, step: () => Promise<Conversation>) => {
    setBusy(label);
    setError(undefined);
    try {
      const updated = await step();
      setConversation(updated);
      onChanged(updated);
    } catch (err) {
      if (!(err instanceof SignedOut)) setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(undefined);
    }
  };

  const send = async (event?: Event) => {
    event?.preventDefault();
    const text = draft.trim();
    if (!text || busy) return;
    setBusy('send');
    setError(undefined);
    try {
      await api<Message>(`/conversations/${id}/reply`, 'POST', { text });
      setDraft('');
      await load();
      box.current?.focus();
    } catch (err) {
      // Signed out: the draft stays; the sign-in shows over the page.
      if (!(err instanceof SignedOut))
        setError(err instanceof ApiError ? `Not sent: ${err.message}` : `Not sent: ${String(err)}`);
    } finally {
      setBusy(undefined);
    }
  };

  const onKey = (event: KeyboardEvent) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) void send(event);
    if (event.key === 'Escape') onBack();
  };

  if (!conversation || !messages) {
    return (
      <div class="placeholder">
        {error ? (
          <p class="form-error" role="alert">
            {error}
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </div>
    );
  }

  const mine = conversation.participants.find((p) => p.role === 'agent' && p.name === session.agent);
  const assignedTo = conversation.participants.find((p) => p.id === conversation.handoff?.assignee);
  const takenByMe =
    conversation.status === 'handoff' && mine !== undefined && conversation.handoff?.assignee === mine.id;

  return (
    <div class="transcript">
      <header class="conv-header">
        <button type="button" class="icon-button back" onClick={onBack} aria-label="Back to conversations">
          <Glyph name="back" />
        </button>
        <ChannelIcon channel={conversation.channel} />
        <div class="conv-heading">
          <h2>{titleOf(conversation)}</h2>
          <p class="muted">
            {channelLabel(conversation.channel)} ·{' '}
            {conversation.status === 'handoff'
              ? assignedTo
                ? `With ${assignedTo.name ?? 'an agent'}`
                : `Waiting for an agent: ${conversation.handoff?.reason ?? ''}`
              : conversation.status === 'closed'
                ? 'Closed'
                : 'The bot is answering'}
          </p>
        </div>
        <StatusBadge conversation={conversation} />
        <div class="conv-actions">
          {!takenByMe && (
            <button
              type="button"
              class="primary"
              disabled={busy !== undefined}
              onClick={() => act('take', () => api<Conversation>(`/conversations/${id}/take`, 'POST'))}
            >
              Take
            </button>
          )}
          {conversation.status === 'handoff' && (
            <button
              type="button"
              disabled={busy !== undefined}
              onClick={() => act('release', () => api<Conversation>(`/conversations/${id}/release`, 'POST'))}
            >
              Hand back
            </button>
          )}
          <button
            type="button"
            class="icon-button contact-toggle"
            onClick={onToggleContact}
            aria-label="Contact details"
          >
            <Glyph name="info" />
          </button>
        </div>
      </header>
      <ol class="messages" role="log" aria-label="Transcript" aria-live="polite" ref={log}>
        {messages.length === 0 && <li class="activity">No messages yet.</li>}
        {messages.map((m) => (
          <Bubble key={m.id} message={m} conversation={conversation} />
        ))}
      </ol>
      <form class="reply" onSubmit={send}>
        <label for="reply-box" class="reply-label">
          Reply as <strong>{session.agent}</strong>
          {!takenByMe && <span class="muted"> (sending takes the conversation from the bot)</span>}
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <div class="reply-row">
          <textarea
            id="reply-box"
            ref={box}
            rows={2}
            placeholder={`Write to ${titleOf(conversation)}… (Enter sends, Shift+Enter new line)`}
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value)}
            onKeyDown={onKey}
          />
          <button type="submit" class="primary" disabled={!draft.trim() || busy === 'send'}>
            Send
          </button>
        </div>
      </form>
    </div>
  );
}
