/** The inbox: the conversation list with its filters and search, the open conversation, its contact. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type Conversation, type Message, type Page, type SessionInfo } from './api.js';
import { debounce, subscribe } from './bus.js';
import { ContactPanel } from './contact.js';
import { Transcript } from './transcript.js';
import { ChannelIcon, channelLabel, initials, StatusBadge, time, titleOf } from './ui.js';

const CHANNELS = ['webchat', 'whatsapp', 'sms', 'slack', 'email', 'api'];

export interface Filters {
  channel: string;
  status: string;
  handoff: string;
  q: string;
}

export function Inbox({ session, drafts }: { session: SessionInfo; drafts: Map<string, string> }) {
  const [conversations, setConversations] = useState<Conversation[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [filters, setFilters] = useState<Filters>({ channel: '', status: '', handoff: '', q: '' });
  const [selected, setSelected] = useState<string | undefined>();
  const [previews, setPreviews] = useState<Record<string, Message>>({});
  const [unread, setUnread] = useState<Record<string, number>>({});
  const [showContact, setShowContact] = useState(false);
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const search = useRef<HTMLInputElement>(null);
  /** Per conversation, the `lastMessageAt` its preview was read at. */
  const previewedAt = useRef(new Map<string, string | null>());

  const load = useCallback(async () => {
    const query = new URLSearchParams({ take: '100', order: 'desc' });
    if (filters.channel) query.set('channel', filters.channel);
    if (filters.status) query.set('status', filters.status);
    try {
      const page = await api<Page<Conversation>>(`/conversations?${query}`);
      setConversations(page.items);
      setError(undefined);
      // Previews only for the conversations with a message not yet shown: a reload after one change
      // reads one preview, not sixty.
      const missing = page.items
        .slice(0, 60)
        .filter((c) => c.lastMessageAt !== null && previewedAt.current.get(c.id) !== c.lastMessageAt);
      for (const c of missing) previewedAt.current.set(c.id, c.lastMessageAt);
      const found = await Promise.all(
        missing.map((c) =>
          api<Page<Message>>(`/conversations/${c.id}/messages?take=1&order=desc`)
            .then((p) => [c.id, p.items[0]] as const)
            .catch(() => [c.id, undefined] as const),
        ),
      );
      setPreviews((old) => {
        const next = { ...old };
        for (const [id, message] of found) if (message) next[id] = message;
        return next;
      });
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }, [filters.channel, filters.status]);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(() => {
    const reload = debounce(() => void load(), 250);
    const off = subscribe((notice) => {
      reload();
      if (notice.type === 'message.created' && notice.messageId) {
        const id = notice.conversationId;
        void api<Message>(`/conversations/${id}/messages/${notice.messageId}`)
          .then((message) => {
            setPreviews((old) => ({ ...old, [id]: message }));
            if (message.type === 'user' && selectedRef.current !== id)
              setUnread((old) => ({ ...old, [id]: (old[id] ?? 0) + 1 }));
          })
          .catch(() => {});
      }
    });
    return () => {
      off();
      reload.cancel();
    };
  }, [load]);

  // `/` jumps to the search box from anywhere but a text field.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      const typing = target.closest('input, textarea, select');
      if (event.key === '/' && !typing) {
        event.preventDefault();
        search.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const me = (c: Conversation) =>
    c.participants.find((p) => p.role === 'agent' && p.name === session.agent)?.id;

  const shown = useMemo(() => {
    const q = filters.q.trim().toLowerCase();
    return (conversations ?? [])
      .filter((c) => {
        if (filters.handoff === 'waiting' && !(c.status === 'handoff' && c.handoff?.state === 'pending'))
          return false;
        if (filters.handoff === 'mine' && !(c.status === 'handoff' && c.handoff?.assignee === me(c)))
          return false;
        if (filters.handoff === 'none' && c.status === 'handoff') return false;
        if (!q) return true;
        const text = [
          c.id,
          c.channelRef,
          channelLabel(c.channel),
          previews[c.id]?.text ?? '',
          ...c.participants.flatMap((p) => [p.name ?? '', p.address ?? '']),
        ]
          .join(' ')
          .toLowerCase();
        return text.includes(q);
      })
      .sort((a, b) => (b.lastMessageAt ?? b.createdAt).localeCompare(a.lastMessageAt ?? a.createdAt));
  }, [conversations, filters, previews]);

  const open = (id: string) => {
    setSelected(id);
    setUnread((old) => ({ ...old, [id]: 0 }));
  };

  const onListKey = (event: KeyboardEvent) => {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    const items = [...(event.currentTarget as HTMLElement).querySelectorAll<HTMLButtonElement>('.conv-item')];
    const at = items.indexOf(document.activeElement as HTMLButtonElement);
    const next = items[Math.max(0, Math.min(items.length - 1, at + (event.key === 'ArrowDown' ? 1 : -1)))];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  };

  const current = conversations?.find((c) => c.id === selected);
  const set = (patch: Partial<Filters>) => setFilters((old) => ({ ...old, ...patch }));

  return (
    <div class={`inbox ${selected ? 'has-selection' : ''} ${showContact ? 'show-contact' : ''}`}>
      <section class="pane list-pane" aria-label="Conversations">
        <div class="filters">
          <input
            ref={search}
            type="search"
            class="search"
            placeholder="Search name, address, text   /"
            aria-label="Search conversations"
            value={filters.q}
            onInput={(e) => set({ q: e.currentTarget.value })}
          />
          <div class="filter-row">
            <select
              aria-label="Channel"
              value={filters.channel}
              onChange={(e) => set({ channel: e.currentTarget.value })}
            >
              <option value="">Any channel</option>
              {CHANNELS.map((c) => (
                <option value={c} key={c}>
                  {channelLabel(c)}
                </option>
              ))}
            </select>
            <select
              aria-label="Status"
              value={filters.status}
              onChange={(e) => set({ status: e.currentTarget.value })}
            >
              <option value="">Any status</option>
              <option value="open">With the bot</option>
              <option value="handoff">In handoff</option>
              <option value="closed">Closed</option>
            </select>
            <select
              aria-label="Handoff"
              value={filters.handoff}
              onChange={(e) => set({ handoff: e.currentTarget.value })}
            >
              <option value="">Anyone</option>
              <option value="waiting">Waiting for an agent</option>
              <option value="mine">Assigned to me</option>
              <option value="none">Not in handoff</option>
            </select>
          </div>
        </div>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        {conversations === undefined ? (
          <p class="empty">Loading conversations…</p>
        ) : shown.length === 0 ? (
          <p class="empty">
            {conversations.length === 0 ? 'No conversations yet.' : 'No conversation matches.'}
          </p>
        ) : (
          <ul class="conv-list" onKeyDown={onListKey}>
            {shown.map((c) => {
              const title = titleOf(c);
              const preview = previews[c.id];
              const count = unread[c.id] ?? 0;
              return (
                <li key={c.id}>
                  <button
                    type="button"
                    class={`conv-item ${c.id === selected ? 'selected' : ''}`}
                    aria-current={c.id === selected ? 'true' : undefined}
                    data-conversation={c.id}
                    onClick={() => open(c.id)}
                  >
                    <span class="avatar" aria-hidden="true">
                      {initials(title)}
                    </span>
                    <span class="conv-main">
                      <span class="conv-top">
                        <ChannelIcon channel={c.channel} />
                        <span class="conv-title">{title}</span>
                        <span class="conv-time">{time(c.lastMessageAt ?? c.createdAt)}</span>
                      </span>
                      <span class="conv-bottom">
                        <span class="conv-preview">
                          {preview
                            ? `${preview.type === 'user' ? '' : `${preview.name ?? preview.type}: `}${preview.text}`
                            : ' '}
                        </span>
                        <StatusBadge conversation={c} />
                        {count > 0 && (
                          <span class="unread" title={`${count} unread`}>
                            {count}
                            <span class="sr-only"> unread</span>
                          </span>
                        )}
                      </span>
                    </span>
                  </button>
                </li>
              );
            })}
          </ul>
        )}
      </section>
      <section class="pane transcript-pane" aria-label="Conversation">
        {selected ? (
          <Transcript
            key={selected}
            id={selected}
            session={session}
            drafts={drafts}
            onBack={() => setSelected(undefined)}
            onToggleContact={() => setShowContact((v) => !v)}
            onChanged={(c) => setConversations((list) => list?.map((x) => (x.id === c.id ? c : x)))}
          />
        ) : (
          <div class="placeholder">
            <p>Pick a conversation to read it and reply.</p>
            <p class="muted">
              <kbd>/</kbd> search · <kbd>↑</kbd> <kbd>↓</kbd> move · <kbd>Enter</kbd> open
            </p>
          </div>
        )}
      </section>
      <aside class="pane contact-pane" aria-label="Contact">
        {current ? (
          <ContactPanel
            key={current.id}
            conversation={current}
            onOpen={open}
            onClose={() => setShowContact(false)}
          />
        ) : (
          <p class="empty">No conversation open.</p>
        )}
      </aside>
    </div>
  );
}
