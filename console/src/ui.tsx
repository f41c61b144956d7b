/** Small shared pieces: channel icons, badges, delivery ticks, times. */
import type { ChannelName, Conversation, DeliveryStatus } from './api.js';

const CHANNEL_LABEL: Record<string, string> = {
  whatsapp: 'WhatsApp',
  sms: 'SMS',
  slack: 'Slack',
  email: 'Email',
  webchat: 'Web chat',
  api: 'API',
};

export const channelLabel = (channel: string) => CHANNEL_LABEL[channel] ?? channel;

/** 24×24 outline icons, one per channel. */
const PATHS: Record<string, string> = {
  whatsapp:
    'M12 3a9 9 0 0 0-7.8 13.5L3 21l4.6-1.2A9 9 0 1 0 12 3zm-3 5.5c.3-.6.6-.6 1-.6h.6c.2 0 .4.1.5.4l.8 1.9c.1.2 0 .5-.1.7l-.6.7c.5 1 1.6 2.1 2.7 2.7l.7-.6c.2-.2.5-.2.7-.1l1.9.8c.3.1.4.3.4.5v.6c0 .4 0 .8-.6 1.1-.8.4-2.4.6-5-1.6-2.6-2.3-3.4-4.4-3-5.6z',
  sms: 'M7 2h10a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm0 3v13h10V5H7zm4 14.5a1 1 0 1 0 2 0 1 1 0 0 0-2 0z',
  slack:
    'M9 3a2 2 0 0 0 0 4h2V5a2 2 0 0 0-2-2zm0 5H4a2 2 0 0 0 0 4h5a2 2 0 0 0 0-4zm12 2a2 2 0 0 0-4 0v2h2a2 2 0 0 0 2-2zm-5 0V5a2 2 0 0 0-4 0v5a2 2 0 0 0 4 0zm-1 11a2 2 0 0 0 0-4h-2v2a2 2 0 0 0 2 2zm0-5h5a2 2 0 0 0 0-4h-5a2 2 0 0 0 0 4zM3 14a2 2 0 0 0 4 0v-2H5a2 2 0 0 0-2 2zm5 0v5a2 2 0 0 0 4 0v-5a2 2 0 0 0-4 0z',
  email:
    'M3 5h18a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2.4V17h16V7.4l-8 5.3-8-5.3zM5.8 7l6.2 4.1L18.2 7H5.8z',
  webchat:
    'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm0 2v10h2v2l2.5-2H20V6H4zm3 4h2v2H7v-2zm4 0h2v2h-2v-2zm4 0h2v2h-2v-2z',
  api: 'M8 4H7a3 3 0 0 0-3 3v2.5c0 .8-.7 1.5-1.5 1.5v2c.8 0 1.5.7 1.5 1.5V17a3 3 0 0 0 3 3h1v-2H7a1 1 0 0 1-1-1v-2.5c0-1-.4-1.9-1-2.5.6-.6 1-1.5 1-2.5V7a1 1 0 0 1 1-1h1V4zm8 0h1a3 3 0 0 1 3 3v2.5c0 .8.7 1.5 1.5 1.5v2c-.8 0-1.5.7-1.5 1.5V17a3 3 0 0 1-3 3h-1v-2h1a1 1 0 0 0 1-1v-2.5c0-1 .4-1.9 1-2.5-.6-.6-1-1.5-1-2.5V7a1 1 0 0 0-1-1h-1V4z',
};

export function ChannelIcon({ channel }: { channel: ChannelName | string }) {
  return (
    <span class={`channel-icon ch-${channel}`} title={channelLabel(channel)}>
      <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
        <path d={PATHS[channel] ?? PATHS.api} fill="currentColor" />
      </svg>
      <span class="sr-only">{channelLabel(channel)}</span>
    </span>
  );
}

/** Small outline icons for controls (the page uses no emoji: fonts may lack them). */
const GLYPHS = {
  clip: 'M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10h-1.5z',
  info: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 6v7h2v-7h-2zm0-3v2h2V7h-2z',
  back: 'M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20v-2z',
  close:
    'M18.3 5.7 16.9 4.3 12 9.2 7.1 4.3 5.7 5.7 10.6 12l-4.9 4.9 1.4 1.4 4.9-4.9 4.9 4.9 1.4-1.4-4.9-4.9 4.9-6.3z',
} as const;

export function Glyph({ name }: { name: keyof typeof GLYPHS }) {
  return (
    <svg class="glyph" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
      <path d={GLYPHS[name]} fill="currentColor" />
    </svg>
  );
}

export function StatusBadge({ conversation }: { conversation: Conversation }) {
  if (conversation.status === 'handoff') {
    const assigned = conversation.handoff?.state === 'assigned';
    return (
      <span class={`badge ${assigned ? 'badge-assigned' : 'badge-pending'}`}>
        {assigned ? 'Agent' : 'Waiting'}
      </span>
    );
  }
  if (conversation.status === 'closed') return <span class="badge badge-closed">Closed</span>;
  return <span class="badge badge-open">Bot</span>;
}

const TICKS: Record<DeliveryStatus, { mark: string; label: string }> = {
  pending: { mark: '○', label: 'Sending' },
  sent: { mark: '✓', label: 'Sent' },
  delivered: { mark: '✓✓', label: 'Delivered' },
  read: { mark: '✓✓', label: 'Read' },
  failed: { mark: '!', label: 'Not delivered' },
};

export function Ticks({ status, error }: { status: DeliveryStatus; error?: string }) {
  const tick = TICKS[status];
  return (
    <span
      class={`ticks ticks-${status}`}
      title={error ? `${tick.label}: ${error}` : tick.label}
      data-delivery={status}
    >
      <span aria-hidden="true">{tick.mark}</span>
      <span class="sr-only">{tick.label}</span>
    </span>
  );
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The customer of a conversation: its first user participant. */
export function customerOf(conversation: Conversation) {
  return conversation.participants.find((p) => p.role === 'user');
}

export function titleOf(conversation: Conversation): string {
  const customer = customerOf(conversation);
  return customer?.name || customer?.address || conversation.channelRef || conversation.id;
}

export function initials(name: string): string {
  // Phone numbers and other names without letters get a neutral mark, not their first digits.
  if (!/\p{L}/u.test(name)) return '#';
  const words = name
    .replace(/[^\p{L}\p{N} ]/gu, ' ')
    .trim()
    .split(/\s+/);
  const letters = words.length > 1 ? `${words[0]![0]}${words[1]![0]}` : (words[0] ?? '?').slice(0, 2);
  return letters.toUpperCase() || '?';
}
