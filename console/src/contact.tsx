/** The contact panel: who the customer is across channels, their other conversations, merge suggestions. */
import { useEffect, useState } from 'preact/hooks';
import { api, type Contact, type Conversation, type MergeSuggestion, type Page } from './api.js';
import { subscribe } from './bus.js';
import { ChannelIcon, channelLabel, customerOf, Glyph, StatusBadge, time, titleOf } from './ui.js';

interface Loaded {
  contact: Contact;
  conversations: Conversation[];
  suggestions: Array<MergeSuggestion & { other: string }>;
}

export function ContactPanel({
  conversation,
  onOpen,
  onClose,
}: {
  conversation: Conversation;
  onOpen: (id: string) => void;
  onClose: () => void;
}) {
  const contactId = customerOf(conversation)?.contactId;
  const [loaded, setLoaded] = useState<Loaded | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    if (!contactId) return undefined;
    let live = true;
    const load = async () => {
      try {
        const [contact, conversations, suggestions] = await Promise.all([
          api<Contact>(`/contacts/${contactId}`),
          api<Page<Conversation>>(`/contacts/${contactId}/conversations?take=20`),
          api<{ items: MergeSuggestion[] }>('/contacts/suggestions'),
        ]);
        if (!live) return;
        setLoaded({
          contact,
          conversations: conversations.items,
          suggestions: suggestions.items
            .filter((s) => s.contactIds.includes(contactId))
            .map((s) => ({ ...s, other: s.contactIds[0] === contactId ? s.contactIds[1] : s.contactIds[0] })),
        });
      } catch (err) {
        if (live) setError(err instanceof Error ? err.message : String(err));
      }
    };
    void load();
    const off = subscribe((notice) => {
      if (notice.type.startsWith('contact.') || notice.type === 'conversation.created') void load();
    });
    return () => {
      live = false;
      off();
    };
  }, [contactId]);

  return (
    <div class="contact">
      <header class="contact-header">
        <h2>Contact</h2>
        <button
          type="button"
          class="icon-button contact-close"
          onClick={onClose}
          aria-label="Close contact details"
        >
          <Glyph name="close" />
        </button>
      </header>
      {!contactId ? (
        <p class="empty">This conversation has no contact.</p>
      ) : error ? (
        <p class="form-error">{error}</p>
      ) : !loaded ? (
        <p class="empty">Loading…</p>
      ) : (
        <>
          <section>
            <p class="contact-name">{loaded.contact.name ?? titleOf(conversation)}</p>
            <p class="muted mono">{loaded.contact.id}</p>
          </section>
          <section>
            <h3>Identities</h3>
            <ul class="identities">
              {loaded.contact.identities.map((identity) => (
                <li key={`${identity.channel}:${identity.address}`}>
                  <ChannelIcon channel={identity.channel} />
                  <span class="identity-address">{identity.address}</span>
                  <span class={`badge ${identity.verified ? 'badge-verified' : 'badge-unverified'}`}>
                    {identity.verified ? 'Verified' : 'Unverified'}
                  </span>
                </li>
              ))}
            </ul>
          </section>
          <section>
            <h3>Conversations</h3>
            <ul class="other-convs">
              {loaded.conversations.map((c) => (
                <li key={c.id}>
                  <button
                    type="button"
                    class={`link-button ${c.id === conversation.id ? 'current' : ''}`}
                    onClick={() => onOpen(c.id)}
                  >
                    <ChannelIcon channel={c.channel} />
                    <span>{channelLabel(c.channel)}</span>
                    <span class="muted">{time(c.lastMessageAt ?? c.createdAt)}</span>
                    <StatusBadge conversation={c} />
                  </button>
                </li>
              ))}
            </ul>
          </section>
          <section>
            <h3>Merge suggestions</h3>
            {loaded.suggestions.length === 0 ? (
              <p class="muted">None.</p>
            ) : (
              <ul class="suggestions">
                {loaded.suggestions.map((s) => (
                  <li key={s.other}>
                    <span class="mono">{s.other}</span>
                    <span class="muted"> {s.reason}</span>
                  </li>
                ))}
              </ul>
            )}
          </section>
        </>
      )}
    </div>
  );
}
