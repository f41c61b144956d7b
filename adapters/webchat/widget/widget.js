/*
 * Switchboard web-chat widget: one script tag, no dependencies, served as written (no build step).
 *
 *   <script src="https://chat.example.com/widget.js" data-token-url="/chat-token" async></script>
 *
 * data-gateway    gateway base URL (default: where this script was loaded from)
 * data-token-url  URL the widget POSTs to for a visitor token; it answers JSON { "token": "<jwt>" }
 *                 (default: the gateway's demo endpoint, which exists only in demo mode)
 * data-title      panel title (default "Chat")
 * data-greeting   first message shown when the panel opens (default: the bot configuration's greeting)
 * data-color      theme colour, any CSS colour (default #2357d9); text on it is picked for contrast
 * data-position   "right" (default) or "left": the corner of the launcher and the panel
 * data-bot-name   the bot's name when its participant has none (default "Assistant"); agents are shown
 *                 with their own names (the frames' `from`)
 * data-bot-avatar http(s) URL of an image for the bot's avatar (default: a glyph on the theme colour)
 * data-open       "true" opens the panel when the page loads
 *
 * Protocol (SPEC §7): subprotocols ["switchboard.v1", "bearer.<jwt>"], then `resume` from the last seq
 * seen, `message` with a clientMessageId (resent until acked; the gateway dedupes), `read`, and an
 * in-band `auth` refresh before the token expires. Files go up first (POST /webchat/uploads with the
 * visitor token in the Authorization header) and the message references them by id; the gateway's own
 * files are fetched with the same token (GET /webchat/attachments/:id), never with a token in a URL.
 */
(() => {
  const script = document.currentScript || document.querySelector('script[src$="/widget.js"]');
  if (!script || window.SwitchboardChat) return;
  const data = script.dataset;
  const gateway = (data.gateway || new URL(script.src, location.href).origin).replace(/\/+$/, '');
  const socketUrl = `${gateway.replace(/^http/, 'ws')}/webchat`;
  const tokenUrl = new URL(data.tokenUrl || `${gateway}/webchat/demo-token`, location.href).href;
  const title = data.title || 'Chat';
  const botName = data.botName || 'Assistant';
  const pageGreeting = (data.greeting || '').trim();
  const botAvatar = /^https?:\/\//i.test(data.botAvatar || '') ? data.botAvatar : '';
  const KEY = `switchboard-chat:${gateway}`;
  const TYPING_TIMEOUT_MS = 30_000;
  const MAX_BACKOFF_MS = 30_000;
  const ERROR_SHOWN_MS = 8_000;
  /** An attachment URL of the gateway itself: fetched through the widget's route with the token. */
  const OWN_FILE = /\/v1\/attachments\/(att_[0-9a-f]{32})$/;

  // --- persisted state (localStorage may be unavailable: private mode, blocked storage) ------------
  const saved = load();
  function load() {
    try {
      return JSON.parse(localStorage.getItem(KEY) || '{}') || {};
    } catch {
      return {};
    }
  }
  function persist() {
    try {
      localStorage.setItem(KEY, JSON.stringify(saved));
    } catch {
      /* storage unavailable: the conversation still works for this page view */
    }
  }
  saved.outbox = Array.isArray(saved.outbox) ? saved.outbox : [];
  saved.readSeq = Number(saved.readSeq) || 0;

  // --- DOM -------------------------------------------------------------------------------------------
  const host = document.createElement('div');
  host.id = 'switchboard-chat';
  if (data.position === 'left') host.classList.add('left');
  const root = host.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>
:host{all:initial;--sb-color:#2357d9;--sb-on:#fff;--sb-ring:#2357d9;--sb-ink:#1b1f24;--sb-muted:#5b6573;
 --sb-line:#dde3ea;--sb-bg:#f5f7fa;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--sb-ink)}
*{box-sizing:border-box}
[hidden]{display:none!important}
button{font:inherit;color:inherit}
.launcher{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;border:0;display:grid;place-items:center;
 background:var(--sb-color);color:var(--sb-on);cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.22);z-index:2147483000}
:host(.left) .launcher{right:auto;left:20px}
.launcher svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-3px;right:-3px;min-width:21px;height:21px;padding:0 6px;border-radius:11px;
 background:#d92344;color:#fff;font-size:12px;line-height:21px;font-weight:700;box-shadow:0 0 0 2px #fff}
.panel{position:fixed;right:20px;bottom:92px;width:380px;height:min(620px,calc(100vh - 112px));display:flex;
 flex-direction:column;background:#fff;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.22);overflow:hidden;
 z-index:2147483000}
:host(.left) .panel{right:auto;left:20px}
header{display:flex;align-items:center;gap:10px;padding:14px 14px 14px 16px;background:var(--sb-color);color:var(--sb-on)}
header .avatar{width:36px;height:36px;box-shadow:0 0 0 2px var(--sb-on)}
.heading{flex:1;min-width:0}
header h2{margin:0;font-size:16px;font-weight:650;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.sub{display:flex;align-items:center;gap:6px;font-size:12.5px;opacity:.9}
.sub::before{content:"";width:8px;height:8px;border-radius:50%;background:#9aa4b1}
.panel[data-state=online] .sub::before{background:#2fd37a}
.panel[data-state=offline] .sub::before{background:#f5a524}
.close{border:0;background:transparent;color:var(--sb-on);cursor:pointer;padding:6px;border-radius:8px;display:grid}
.close svg{width:20px;height:20px;fill:currentColor}
.banner{padding:8px 14px;background:#fff4d6;color:#6b4a00;font-size:13px;border-bottom:1px solid #f1dea6}
.log{flex:1;overflow-y:auto;padding:14px 12px 6px;display:flex;flex-direction:column;gap:14px;background:var(--sb-bg);margin:0;list-style:none}
.log>*{flex-shrink:0}
.item{display:contents}
.group{display:flex;gap:8px;align-items:flex-end;max-width:100%}
.group.mine{flex-direction:row-reverse}
.stack{display:flex;flex-direction:column;gap:3px;min-width:0;max-width:80%}
.mine .stack{align-items:flex-end}
.meta{display:flex;gap:6px;align-items:baseline;font-size:12px;color:var(--sb-muted);padding:0 4px}
.who{font-weight:650;color:var(--sb-ink)}
.avatar{flex:none;width:30px;height:30px;border-radius:50%;display:grid;place-items:center;overflow:hidden;
 background:var(--sb-color);color:var(--sb-on);font-size:12px;font-weight:700;letter-spacing:.02em;user-select:none}
.avatar img{width:100%;height:100%;object-fit:cover}
.avatar svg{width:60%;height:60%;fill:currentColor}
.msg{padding:8px 12px;border-radius:16px;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid var(--sb-line)}
.theirs .msg{border-bottom-left-radius:6px}
.mine .msg{background:var(--sb-color);color:var(--sb-on);border-color:transparent;border-bottom-right-radius:6px}
.msg.greeting{background:#fff}
.msg.files{padding:4px;background:transparent;border:0}
.mine .msg.files{background:transparent;color:var(--sb-muted)}
.mark{display:block;text-align:right;font-size:11px;opacity:.85;margin-top:1px}
.mark.read{font-weight:800;opacity:1}
.thumb{display:block;border-radius:12px;overflow:hidden;border:1px solid var(--sb-line);background:#fff;line-height:0}
.thumb img{display:block;max-width:220px;max-height:180px;object-fit:cover}
.file{display:flex;align-items:center;gap:8px;padding:8px 12px;border-radius:12px;border:1px solid var(--sb-line);
 background:#fff;color:var(--sb-ink);text-decoration:none;max-width:240px}
.file svg{flex:none;width:20px;height:20px;fill:var(--sb-color)}
.file span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.file small{color:var(--sb-muted);white-space:nowrap}
.uploading{font-style:italic;opacity:.8}
.quick{display:flex;flex-wrap:wrap;gap:6px;padding-left:38px}
.quick button{border:1px solid var(--sb-color);background:#fff;color:var(--sb-ink);border-radius:16px;padding:5px 12px;cursor:pointer}
.typing{display:flex;gap:8px;align-items:flex-end;padding:0 12px 8px;background:var(--sb-bg)}
.dots{display:inline-flex;gap:4px;padding:12px 14px;border-radius:16px;border-bottom-left-radius:6px;background:#fff;border:1px solid var(--sb-line)}
.dots i{width:7px;height:7px;border-radius:50%;background:var(--sb-muted);opacity:.5;animation:sb-blink 1.2s infinite ease-in-out}
.dots i:nth-child(2){animation-delay:.15s}.dots i:nth-child(3){animation-delay:.3s}
@keyframes sb-blink{0%,60%,100%{opacity:.35;transform:translateY(0)}30%{opacity:1;transform:translateY(-3px)}}
.error{margin:0 10px 8px;padding:8px 12px;border-radius:10px;background:#fde8ec;color:#8a1029;font-size:13px}
form{display:flex;align-items:center;gap:6px;padding:10px;border-top:1px solid var(--sb-line);background:#fff}
.text{flex:1;min-width:0;font:inherit;color:var(--sb-ink);padding:10px 14px;border:1px solid #c4ccd6;border-radius:22px;background:#fff}
.icon{flex:none;width:40px;height:40px;border:0;border-radius:50%;display:grid;place-items:center;cursor:pointer;background:transparent;color:var(--sb-muted)}
.icon svg{width:22px;height:22px;fill:currentColor}
.icon:disabled{opacity:.4;cursor:default}
.send{background:var(--sb-color);color:var(--sb-on)}
/* The focus ring is the theme colour (or, where that is too light to see on white, the ink colour);
   on the coloured header and buttons it is offset so it reads against the page or the header. */
:focus{outline:none}
:focus-visible{outline:3px solid var(--sb-ring);outline-offset:2px}
header :focus-visible{outline-color:var(--sb-on)}
.text:focus-visible{outline-width:2px;outline-offset:1px;border-color:var(--sb-ring)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){
 .panel,:host(.left) .panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;border-radius:0}
 :host(.open) .launcher{display:none}
}
@media (prefers-reduced-motion:no-preference){.panel{animation:sb-pop .18s ease-out}@keyframes sb-pop{from{opacity:0;transform:translateY(10px)}}}
@media (prefers-reduced-motion:reduce){.dots i{animation:none;opacity:.7}}
</style>
<button class="launcher" type="button" aria-expanded="false" aria-controls="sb-panel" aria-label="Open chat">
 <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>
 <span class="badge" hidden></span>
</button>
<section class="panel" id="sb-panel" role="dialog" aria-labelledby="sb-title" data-state="idle" hidden>
 <header><span class="avatar bot-avatar" aria-hidden="true"></span>
  <div class="heading"><h2 id="sb-title"></h2><div class="sub"></div></div>
  <button class="close" type="button" aria-label="Close chat"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z"/></svg></button></header>
 <div class="banner" role="status" hidden></div>
 <ol class="log" role="log" aria-live="polite" aria-label="Messages"></ol>
 <div class="typing" hidden><span class="avatar typing-avatar" aria-hidden="true"></span>
  <span class="dots" aria-hidden="true"><i></i><i></i><i></i></span><span class="sr typing-label" aria-live="polite"></span></div>
 <p class="error" role="alert" hidden></p>
 <form><input class="file-input" type="file" hidden tabindex="-1">
  <button class="icon attach" type="button" aria-label="Attach a file" hidden><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"/></svg></button>
  <input class="text" type="text" aria-label="Message" placeholder="Write a message…" autocomplete="off" maxlength="4000">
  <button class="icon send" type="submit" aria-label="Send"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"/></svg></button></form>
</section>`;
  const $ = (sel) => root.querySelector(sel);
  const launcher = $('.launcher');
  const badge = $('.badge');
  const panel = $('.panel');
  const subEl = $('.sub');
  const banner = $('.banner');
  const log = $('.log');
  const typingEl = $('.typing');
  const typingAvatar = $('.typing-avatar');
  const typingLabel = $('.typing-label');
  const errorEl = $('.error');
  const form = $('form');
  const input = $('.text');
  const attach = $('.attach');
  const fileInput = $('.file-input');
  $('#sb-title').textContent = title;

  // --- theme -------------------------------------------------------------------------------------------
  /** The colour as [r, g, b] when the browser understands it (anything CSS accepts); null otherwise. */
  function parseColor(value) {
    if (!value || !CSS.supports('color', value)) return null;
    const probe = document.createElement('span');
    probe.style.color = value;
    root.append(probe);
    const rgb = getComputedStyle(probe).color.match(/[\d.]+/g);
    probe.remove();
    return rgb ? rgb.slice(0, 3).map(Number) : null;
  }
  /** WCAG relative luminance. */
  function luminance([r, g, b]) {
    const lin = (c) => {
      const s = c / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  }
  const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  function applyTheme() {
    const rgb = parseColor(data.color);
    if (!rgb) return;
    const lum = luminance(rgb);
    const color = `rgb(${rgb.join(', ')})`;
    host.style.setProperty('--sb-color', color);
    // Text on the colour: white or ink, whichever reads better.
    host.style.setProperty(
      '--sb-on',
      contrast(lum, 1) >= contrast(lum, luminance([27, 31, 36])) ? '#fff' : '#1b1f24',
    );
    // A focus ring must stand out from white (WCAG 1.4.11, 3:1): a pale theme colour falls back to ink.
    host.style.setProperty('--sb-ring', contrast(lum, 1) >= 3 ? color : '#1b1f24');
  }

  // --- conversation state ----------------------------------------------------------------------------
  /** Messages by key (server id, or clientMessageId while unacknowledged). */
  const messages = new Map();
  let ws = null;
  let connecting = false;
  let ready = false;
  let wasReady = false;
  let token = null;
  let attempts = 0;
  let reconnectTimer = 0;
  let refreshTimer = 0;
  let typingTimer = 0;
  let errorTimer = 0;
  let readSent = 0;
  let greeting = pageGreeting;
  let upload = null;
  /** The bot's name as the conversation knows it (from its messages), else data-bot-name. */
  let knownBotName = '';
  /** Rendered files (pictures keep their loaded state across renders), by message and position. */
  const fileNodes = new Map();
  /** Whether the list is scrolled to its end (it then follows new content). */
  let stuck = true;
  /** Object URLs of the gateway's files, by attachment id (fetched once per page view). */
  const blobs = new Map();

  for (const item of saved.outbox) {
    messages.set(item.clientMessageId, { ...item, type: 'user', status: 'pending', seq: Infinity });
  }

  function newId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function lastSeq() {
    let max = 0;
    for (const m of messages.values()) if (Number.isFinite(m.seq) && m.seq > max) max = m.seq;
    return max;
  }

  function upsert(m) {
    const own = m.clientMessageId && messages.get(m.clientMessageId);
    if (own) messages.delete(m.clientMessageId);
    const prev = messages.get(m.id) || own;
    const status = m.type === 'user' ? rank(prev?.status, 'sent') : m.status;
    messages.set(m.id, { ...prev, ...m, status });
    if (m.type === 'bot' && m.from?.name) knownBotName = m.from.name;
    if (m.type === 'bot' && m.replyTo) {
      const answered = messages.get(m.replyTo);
      const upTo = answered ? answered.seq : 0;
      for (const u of messages.values()) if (u.type === 'user' && u.seq <= upTo) u.status = 'read';
    }
  }

  /** Messages said to the visitor: the bot's and the agents'. */
  function isTheirs(m) {
    return m.type === 'bot' || m.type === 'agent';
  }

  const ORDER = ['pending', 'sent', 'delivered', 'read'];
  function rank(a, b) {
    return ORDER.indexOf(a) > ORDER.indexOf(b) ? a : b;
  }

  // --- senders and avatars -----------------------------------------------------------------------------
  function senderOf(m) {
    if (m.type === 'user') return { key: 'me', role: 'user', name: 'You' };
    if (m.type === 'agent') {
      const id = m.from?.id || m.name || 'agent';
      return { key: `agent:${id}`, role: 'agent', id, name: m.from?.name || m.name || 'Agent' };
    }
    return { key: 'bot', role: 'bot', id: 'bot', name: m.from?.name || knownBotName || botName };
  }
  function initials(name) {
    const parts = name.trim().split(/\s+/).filter(Boolean);
    const letters =
      parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
    return letters.toUpperCase();
  }
  /** A stable hue per agent, so two agents in one conversation look different. */
  function hue(id) {
    let h = 0;
    for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return h % 360;
  }
  const BOT_GLYPH =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M11 2h2v2h4a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3h-3l-4 4v-4H7a3 3 0 0 1-3-3V7a3 3 0 0 1 3-3h4zM8.5 9a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm7 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>';
  function fillAvatar(el, sender) {
    el.replaceChildren();
    el.removeAttribute('style');
    el.dataset.role = sender.role;
    if (sender.role === 'bot') {
      if (botAvatar) {
        const img = document.createElement('img');
        img.src = botAvatar;
        img.alt = '';
        img.referrerPolicy = 'no-referrer';
        el.append(img);
      } else el.innerHTML = BOT_GLYPH;
      return el;
    }
    el.textContent = initials(sender.name);
    el.style.background = `hsl(${hue(sender.id)} 55% 42%)`;
    el.style.color = '#fff';
    return el;
  }
  function avatar(sender) {
    const el = document.createElement('span');
    el.className = 'avatar';
    el.setAttribute('aria-hidden', 'true');
    return fillAvatar(el, sender);
  }

  // --- files -------------------------------------------------------------------------------------------
  function formatSize(bytes) {
    if (!(bytes >= 0)) return '';
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
  }
  function isSafeUrl(url) {
    try {
      return ['http:', 'https:'].includes(new URL(url).protocol);
    } catch {
      return false;
    }
  }
  /** A gateway file's object URL, fetched with the visitor token in the Authorization header. */
  async function blobUrl(id) {
    if (blobs.has(id)) return blobs.get(id);
    const pending = (async () => {
      token = token || (await fetchToken());
      const res = await fetch(`${gateway}/webchat/attachments/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (!res.ok) throw new Error(`file answered ${res.status}`);
      return URL.createObjectURL(await res.blob());
    })();
    blobs.set(id, pending);
    pending.catch(() => blobs.delete(id));
    return pending;
  }
  const FILE_GLYPH =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5z"/></svg>';
  function renderFile(a) {
    const name = a.name || 'file';
    const own = OWN_FILE.exec(a.url || '')?.[1];
    const image = /^image\/(png|jpeg|gif|webp)$/.test(a.contentType || '');
    const link = document.createElement('a');
    if (image) {
      link.className = 'thumb';
      const img = document.createElement('img');
      img.alt = name;
      img.loading = 'lazy';
      img.referrerPolicy = 'no-referrer';
      // A picture that loads after the list was scrolled down would push the newest messages out of view.
      img.addEventListener('load', () => {
        if (stuck) log.scrollTop = log.scrollHeight;
      });
      link.append(img);
      if (own) {
        blobUrl(own).then(
          (url) => {
            img.src = url;
            link.href = url;
          },
          () => (img.alt = `${name} (not available)`),
        );
        link.download = name;
      } else if (isSafeUrl(a.url)) {
        img.src = a.url;
        link.href = a.url;
        link.target = '_blank';
        link.rel = 'noopener noreferrer';
      }
      return link;
    }
    link.className = 'file';
    link.innerHTML = FILE_GLYPH;
    const label = document.createElement('span');
    label.textContent = name;
    link.append(label);
    if (a.size >= 0) {
      const size = document.createElement('small');
      size.textContent = formatSize(a.size);
      link.append(size);
    }
    if (own) {
      link.href = '#';
      link.download = name;
      link.addEventListener('click', async (ev) => {
        if (link.dataset.ready) return;
        ev.preventDefault();
        try {
          link.href = await blobUrl(own);
          link.dataset.ready = 'true';
          link.click();
        } catch {
          showError(`${name} is no longer available.`);
        }
      });
    } else if (isSafeUrl(a.url)) {
      link.href = a.url;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
    }
    return link;
  }

  // --- rendering ---------------------------------------------------------------------------------------
  const MARKS = {
    pending: ['…', 'Sending'],
    sent: ['✓', 'Sent'],
    delivered: ['✓✓', 'Delivered'],
    read: ['✓✓', 'Read'],
  };
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  /** Messages of one sender within one minute share a group: one avatar, one name, one time. */
  function minuteOf(m) {
    const at = Date.parse(m.createdAt);
    return Number.isFinite(at) ? Math.floor(at / 60_000) : Number.NaN;
  }
  function groupElement(sender, m) {
    const li = document.createElement('li');
    li.className = `group ${sender.role === 'user' ? 'mine' : 'theirs'}`;
    li.dataset.sender = sender.key;
    const stack = document.createElement('div');
    stack.className = 'stack';
    const meta = document.createElement('div');
    meta.className = 'meta';
    if (sender.role !== 'user') {
      li.append(avatar(sender));
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = sender.name;
      meta.append(who);
    } else {
      const who = document.createElement('span');
      who.className = 'sr';
      who.textContent = 'You';
      meta.append(who);
    }
    const minute = minuteOf(m);
    if (Number.isFinite(minute)) {
      li.dataset.minute = String(minute);
      const time = document.createElement('time');
      time.dateTime = new Date(minute * 60_000).toISOString();
      time.textContent = timeFormat.format(minute * 60_000);
      meta.append(time);
    }
    stack.append(meta);
    li.append(stack);
    return li;
  }
  /** The parts of one message (text, files), without the delivery mark. */
  function bubble(m) {
    const parts = [];
    if (m.text || m.uploading) {
      const div = document.createElement('div');
      div.className = `msg${m.uploading ? ' uploading' : ''}`;
      const text = document.createElement('span');
      text.className = 'body';
      text.textContent = m.uploading ? `Sending ${m.uploading}…` : m.text;
      div.append(text);
      parts.push(div);
    }
    if (m.attachments?.length) {
      const div = document.createElement('div');
      div.className = 'msg files';
      m.attachments.forEach((a, i) => {
        // The same node on every render: a loaded picture keeps its size, the list does not jump.
        const key = `${m.clientMessageId || m.id}:${i}:${a.url}`;
        if (!fileNodes.has(key)) fileNodes.set(key, renderFile(a));
        div.append(fileNodes.get(key));
      });
      parts.push(div);
    }
    return parts;
  }
  /**
   * Keeps `nodes` as the children of `parent` from index `from` on, touching only what changed: the
   * log is a live region, and a node removed and added again would be read out again.
   */
  function place(parent, nodes, from = 0) {
    let i = from;
    for (const node of nodes) {
      const at = parent.children[i];
      if (at !== node) parent.insertBefore(node, at || null);
      i += 1;
    }
    while (parent.children.length > i) parent.lastElementChild.remove();
  }
  /** Rendered messages and groups, by key, reused while they stay the same. */
  const itemNodes = new Map();
  const groupNodes = new Map();
  let quickNode = null;
  let quickFor = '';
  /** One message's node: rebuilt when its content changes; its delivery mark is updated in place. */
  function itemFor(m) {
    const key = m.type === 'user' && m.clientMessageId ? m.clientMessageId : m.id;
    const sig = JSON.stringify([m.text, m.uploading, (m.attachments || []).map((a) => a.url)]);
    let entry = itemNodes.get(key);
    if (!entry || entry.sig !== sig) {
      const el = entry?.el || document.createElement('div');
      el.className = 'item';
      el.dataset.key = key;
      el.replaceChildren(...bubble(m));
      entry = { el, sig, status: '' };
      itemNodes.set(key, entry);
    }
    if (m.type === 'user' && !m.uploading && entry.status !== m.status) {
      entry.status = m.status;
      const [glyph, label] = MARKS[m.status] || MARKS.pending;
      let mark = entry.el.querySelector('.mark');
      if (!mark) {
        mark = document.createElement('span');
        entry.el.lastElementChild?.append(mark);
      }
      mark.className = `mark ${m.status}`;
      mark.title = label;
      mark.innerHTML = `<span aria-hidden="true">${glyph}</span><span class="sr">${label}</span>`;
    }
    return entry.el;
  }
  function groupFor(key, sender, m) {
    let li = groupNodes.get(key);
    if (!li) {
      li = groupElement(sender, m);
      groupNodes.set(key, li);
    }
    const who = li.querySelector('.who');
    if (who && sender.role !== 'user' && who.textContent !== sender.name) {
      who.textContent = sender.name;
      fillAvatar(li.querySelector('.avatar'), sender);
    }
    return li;
  }
  function render() {
    const list = [...messages.values()].sort((a, b) => a.seq - b.seq);
    const groups = [];
    const usedGroups = new Set();
    const usedItems = new Set();
    if (greeting) {
      const bot = { key: 'bot', role: 'bot', id: 'bot', name: knownBotName || botName };
      const li = groupFor('greeting', bot, {});
      li.classList.add('greeting-group');
      let div = li.querySelector('.msg.greeting');
      if (!div) {
        div = document.createElement('div');
        div.className = 'msg greeting';
        li.querySelector('.stack').append(div);
      }
      if (div.textContent !== greeting) div.textContent = greeting;
      groups.push(li);
      usedGroups.add('greeting');
    }
    let current = null;
    for (const m of list) {
      const sender = senderOf(m);
      const run = `${sender.key}@${minuteOf(m)}`;
      if (!current || current.run !== run) {
        // A group is known by its first message, so a group that grows keeps its node.
        const first = m.type === 'user' && m.clientMessageId ? m.clientMessageId : m.id;
        const key = `${run}#${first}`;
        current = { run, el: groupFor(key, sender, m), items: [] };
        usedGroups.add(key);
        groups.push(current.el);
        current.el.items = current.items;
      }
      const item = itemFor(m);
      usedItems.add(item.dataset.key);
      current.items.push(item);
    }
    for (const li of groups) if (li.items) place(li.querySelector('.stack'), li.items, 1);
    const last = list[list.length - 1];
    const quickKey = last && isTheirs(last) && last.quickReplies ? last.id : '';
    if (quickKey !== quickFor) {
      quickFor = quickKey;
      quickNode = null;
      if (quickKey) {
        quickNode = document.createElement('li');
        quickNode.className = 'quick';
        for (const q of last.quickReplies) {
          const b = document.createElement('button');
          b.type = 'button';
          b.textContent = q.title;
          b.addEventListener('click', () => {
            sendMessage(q.title, { payload: q.payload });
            input.focus();
          });
          quickNode.append(b);
        }
      }
    }
    place(log, quickNode ? [...groups, quickNode] : groups);
    for (const key of groupNodes.keys()) if (!usedGroups.has(key)) groupNodes.delete(key);
    for (const key of itemNodes.keys()) if (!usedItems.has(key)) itemNodes.delete(key);
    if (stuck) log.scrollTop = log.scrollHeight;
    const unread = list.filter((m) => isTheirs(m) && m.seq > saved.readSeq).length;
    badge.hidden = unread === 0 || !panel.hidden;
    badge.textContent = String(unread);
    launcher.setAttribute('aria-label', unread > 0 ? `Open chat, ${unread} unread` : 'Open chat');
    fillAvatar($('.bot-avatar'), { key: 'bot', role: 'bot', id: 'bot', name: knownBotName || botName });
  }

  function setTyping(on, from) {
    clearTimeout(typingTimer);
    const sender = from?.name
      ? { key: `agent:${from.id}`, role: 'agent', id: from.id, name: from.name }
      : { key: 'bot', role: 'bot', id: 'bot', name: knownBotName || botName };
    typingEl.hidden = !on;
    typingLabel.textContent = on ? `${sender.name} is typing…` : '';
    if (on) {
      fillAvatar(typingAvatar, sender);
      log.scrollTop = log.scrollHeight;
    }
    // The indicator always clears, even if the "off" never arrives (connection lost meanwhile).
    if (on) typingTimer = setTimeout(() => setTyping(false), TYPING_TIMEOUT_MS);
  }

  /** idle (never connected) | connecting | online | offline (lost, reconnecting) */
  function setState(state) {
    panel.dataset.state = state;
    const offline = navigator.onLine === false;
    subEl.textContent = {
      idle: 'We reply in a few moments',
      connecting: 'Connecting…',
      online: 'Online',
      offline: offline ? 'Offline' : 'Reconnecting…',
    }[state];
    banner.hidden = state !== 'offline';
    banner.textContent =
      state === 'offline'
        ? offline
          ? 'Offline. Messages will be sent when the connection is back.'
          : 'Connection lost. Reconnecting…'
        : '';
    attach.disabled = state !== 'online';
  }

  function showError(text) {
    clearTimeout(errorTimer);
    errorEl.textContent = text;
    errorEl.hidden = false;
    errorTimer = setTimeout(() => {
      errorEl.hidden = true;
    }, ERROR_SHOWN_MS);
  }

  // --- reading -----------------------------------------------------------------------------------------
  function markRead() {
    if (panel.hidden || document.visibilityState !== 'visible') return;
    let max = 0;
    for (const m of messages.values()) if (isTheirs(m) && m.seq > max) max = m.seq;
    if (max > saved.readSeq) {
      saved.readSeq = max;
      persist();
    }
    if (ready && max > readSent) {
      readSent = max;
      ws.send(JSON.stringify({ type: 'read', seq: max }));
    }
    render();
  }

  // --- the socket --------------------------------------------------------------------------------------
  async function fetchToken() {
    const res = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      credentials: new URL(tokenUrl).origin === location.origin ? 'same-origin' : 'include',
      body: JSON.stringify(saved.visitorId ? { visitorId: saved.visitorId } : {}),
    });
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    const body = await res.json();
    if (body.visitorId && body.visitorId !== saved.visitorId) {
      saved.visitorId = body.visitorId;
      persist();
    }
    return body.token;
  }

  async function connect() {
    clearTimeout(reconnectTimer);
    if (ws || connecting) return;
    saved.started = true;
    persist();
    if (!wasReady) setState('connecting');
    connecting = true;
    try {
      token = token || (await fetchToken());
    } catch {
      return retry();
    } finally {
      connecting = false;
    }
    const socket = new WebSocket(socketUrl, ['switchboard.v1', `bearer.${token}`]);
    ws = socket;
    socket.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      onFrame(frame);
    };
    socket.onclose = (ev) => {
      if (ws !== socket) return;
      ws = null;
      ready = false;
      clearTimeout(refreshTimer);
      setTyping(false);
      // 4001: token expired, 4003: refused; either way a fresh token is needed.
      if (ev.code === 4001 || ev.code === 4003) token = null;
      if (ev.code === 4001) attempts = 0;
      retry(ev.code === 4008 ? MAX_BACKOFF_MS : 0);
    };
  }

  function retry(minDelay = 0) {
    setState('offline');
    // Exponential backoff with full jitter, so a restarted gateway is not hit by every tab at once.
    const cap = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempts);
    attempts += 1;
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, Math.max(minDelay, 250 + Math.random() * cap));
  }

  function onFrame(f) {
    switch (f.type) {
      case 'ready': {
        const first = !ready;
        ready = true;
        wasReady = true;
        attempts = 0;
        setState('online');
        scheduleRefresh(Date.parse(f.expiresAt));
        // The page's own greeting wins; otherwise the bot configuration's (public, nothing else of it).
        greeting = pageGreeting || (typeof f.greeting === 'string' ? f.greeting : '');
        upload = f.upload && f.upload.maxBytes > 0 ? f.upload : null;
        attach.hidden = !upload;
        if (upload) fileInput.accept = upload.types.join(',');
        if (first) {
          readSent = 0;
          ws.send(JSON.stringify({ type: 'resume', afterSeq: lastSeq() }));
          for (const item of saved.outbox) ws.send(JSON.stringify(frameOf(item)));
        }
        render();
        return;
      }
      case 'ack': {
        saved.outbox = saved.outbox.filter((o) => o.clientMessageId !== f.clientMessageId);
        persist();
        const m = messages.get(f.clientMessageId);
        if (m) upsert({ ...m, id: f.id, seq: f.seq, clientMessageId: f.clientMessageId });
        render();
        return;
      }
      case 'message':
        if (isTheirs(f.message)) setTyping(false);
        upsert(f.message);
        render();
        markRead();
        return;
      case 'typing':
        setTyping(f.on, f.from);
        if (f.on) {
          for (const m of messages.values())
            if (m.type === 'user' && m.status === 'sent') m.status = 'delivered';
          render();
        }
        return;
      case 'receipt':
        if (f.status === 'read' && f.seq > saved.readSeq) {
          saved.readSeq = f.seq;
          persist();
          render();
        }
        return;
      case 'error':
        if (f.clientMessageId && (f.code === 'unavailable' || f.code === 'internal')) {
          // Still in the outbox: resent after a short wait (the gateway dedupes by clientMessageId).
          setTimeout(
            () => {
              const item = saved.outbox.find((o) => o.clientMessageId === f.clientMessageId);
              if (item && ready) ws.send(JSON.stringify(frameOf(item)));
            },
            (f.retryAfter || 2) * 1000,
          );
        } else if (f.clientMessageId && f.code === 'invalid_frame') {
          // Refused for good (a file that expired meanwhile): not resent, and the visitor is told.
          saved.outbox = saved.outbox.filter((o) => o.clientMessageId !== f.clientMessageId);
          persist();
          messages.delete(f.clientMessageId);
          render();
          showError('That message could not be sent.');
        }
        return;
    }
  }

  /** Refreshes the token in-band a minute before it expires (or halfway, for very short tokens). */
  function scheduleRefresh(expiresAt) {
    clearTimeout(refreshTimer);
    const left = expiresAt - Date.now();
    if (!(left > 0)) return;
    refreshTimer = setTimeout(
      async () => {
        try {
          token = null;
          token = await fetchToken();
          if (ready) ws.send(JSON.stringify({ type: 'auth', token }));
        } catch {
          /* the socket is closed with 4001 at expiry and the reconnect fetches a token again */
        }
      },
      Math.max(1_000, left > 120_000 ? left - 60_000 : left / 2),
    );
  }

  /** The frame of an outbox item: files by id only. */
  function frameOf(item) {
    const frame = { type: 'message', clientMessageId: item.clientMessageId, text: item.text };
    if (item.payload) frame.payload = item.payload;
    if (item.attachments?.length) frame.attachments = item.attachments.map((a) => ({ id: a.id }));
    return frame;
  }

  function sendMessage(text, extra = {}) {
    stuck = true;
    const item = { clientMessageId: newId(), text, createdAt: new Date().toISOString() };
    if (extra.payload) item.payload = extra.payload;
    if (extra.attachments) item.attachments = extra.attachments;
    saved.outbox.push(item);
    persist();
    messages.set(item.clientMessageId, { ...item, type: 'user', status: 'pending', seq: Infinity });
    render();
    if (ready) ws.send(JSON.stringify(frameOf(item)));
    else connect();
  }

  // --- uploads -----------------------------------------------------------------------------------------
  async function sendFile(file) {
    if (!upload) return;
    stuck = true;
    errorEl.hidden = true;
    const key = `upload:${newId()}`;
    messages.set(key, {
      clientMessageId: key,
      type: 'user',
      uploading: file.name,
      text: '',
      seq: Infinity,
      createdAt: new Date().toISOString(),
    });
    render();
    try {
      token = token || (await fetchToken());
      const res = await fetch(`${gateway}/webchat/uploads`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': file.type || 'application/octet-stream',
          'x-file-name': encodeURIComponent(file.name),
        },
        body: file,
      });
      if (res.status === 413)
        throw new Error(`${file.name} is too large: files up to ${formatSize(upload.maxBytes)} can be sent.`);
      if (res.status === 415)
        throw new Error(`${file.name} can’t be sent: this kind of file is not accepted here.`);
      if (res.status === 429)
        throw new Error(
          `${file.name} was not sent: that is a lot of files at once, wait a minute and try again.`,
        );
      if (!res.ok) throw new Error(`${file.name} could not be sent. Please try again.`);
      const stored = await res.json();
      messages.delete(key);
      sendMessage('', {
        attachments: [
          {
            id: stored.id,
            url: stored.url,
            name: stored.name,
            contentType: stored.contentType,
            size: stored.size,
          },
        ],
      });
    } catch (err) {
      messages.delete(key);
      render();
      showError(
        err instanceof Error && err.message.startsWith(file.name)
          ? err.message
          : `${file.name} could not be sent. Please try again.`,
      );
    }
  }

  // --- open / close, keyboard ----------------------------------------------------------------------------
  /** Full screen (480 px and below): the page behind does not scroll while the panel covers it. */
  const phone = matchMedia('(max-width: 480px)');
  let pageOverflow = null;
  function lockPage(on) {
    const html = document.documentElement;
    if (on && phone.matches && pageOverflow === null) {
      pageOverflow = html.style.overflow;
      html.style.overflow = 'hidden';
    } else if (!on && pageOverflow !== null) {
      html.style.overflow = pageOverflow;
      pageOverflow = null;
    }
  }
  phone.addEventListener('change', () => lockPage(!panel.hidden && phone.matches));
  function open() {
    panel.hidden = false;
    host.classList.add('open');
    lockPage(true);
    launcher.setAttribute('aria-expanded', 'true');
    input.focus();
    connect();
    markRead();
  }
  function close() {
    panel.hidden = true;
    host.classList.remove('open');
    lockPage(false);
    launcher.setAttribute('aria-expanded', 'false');
    launcher.focus();
    render();
  }
  launcher.addEventListener('click', () => (panel.hidden ? open() : close()));
  $('.close').addEventListener('click', close);
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    }
  });
  let typingSentAt = 0;
  input.addEventListener('input', () => {
    // At most one typing frame per 3 s keeps it well inside the gateway's frame rate limit.
    if (!ready || Date.now() - typingSentAt < 3_000) return;
    typingSentAt = Date.now();
    ws.send(JSON.stringify({ type: 'typing', on: true }));
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    sendMessage(text);
  });
  attach.addEventListener('click', () => fileInput.click());
  // A picture pasted into the message box, or a file dropped on the panel, is sent like a chosen one.
  input.addEventListener('paste', (ev) => {
    const file = ev.clipboardData?.files?.[0];
    if (file && upload && ready) {
      ev.preventDefault();
      sendFile(file);
    }
  });
  panel.addEventListener('dragover', (ev) => {
    if (upload && ready && ev.dataTransfer?.types.includes('Files')) ev.preventDefault();
  });
  panel.addEventListener('drop', (ev) => {
    const file = ev.dataTransfer?.files?.[0];
    if (!file || !upload || !ready) return;
    ev.preventDefault();
    sendFile(file);
  });
  fileInput.addEventListener('change', () => {
    const [file] = fileInput.files || [];
    fileInput.value = '';
    if (file) sendFile(file);
    input.focus();
  });
  log.addEventListener('scroll', () => {
    stuck = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  document.addEventListener('visibilitychange', markRead);
  window.addEventListener('online', () => {
    if (!ws) {
      attempts = 0;
      connect();
    }
  });
  window.addEventListener('offline', () => {
    if (wasReady && !ready) setState('offline');
  });

  document.body.append(host);
  applyTheme();
  setState('idle');
  render();
  window.SwitchboardChat = { open, close };
  if (data.open === 'true') open();
  else if (saved.started || saved.outbox.length > 0) connect();
})();
