/*
 * Switchboard web-chat widget: one script tag, no dependencies, served as written (no build step).
 *
 *   <script src="https://chat.example.com/widget.js" data-token-url="/chat-token" async></script>
 *
 * data-gateway    gateway base URL (default: where this script was loaded from)
 * data-token-url  URL the widget POSTs to for a visitor token; it answers JSON { "token": "<jwt>" }
 *                 (default: the gateway's demo endpoint, which exists only in demo mode)
 * data-title      panel title (default "Chat")
 * data-bot-name   who is shown as typing (default "Assistant"); an agent's messages and typing
 *                 are shown with the agent's own name (the frames' `from`)
 * data-open       "true" opens the panel when the page loads
 *
 * Protocol (SPEC §7): subprotocols ["switchboard.v1", "bearer.<jwt>"], then `resume` from the last seq
 * seen, `message` with a clientMessageId (resent until acked; the gateway dedupes), `read`, and an
 * in-band `auth` refresh before the token expires.
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
  const KEY = `switchboard-chat:${gateway}`;
  const TYPING_TIMEOUT_MS = 30_000;
  const MAX_BACKOFF_MS = 30_000;

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
  const root = host.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>
:host{all:initial;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24}
*{box-sizing:border-box}
.launcher{position:fixed;right:16px;bottom:16px;width:56px;height:56px;border-radius:50%;border:0;
 background:#2357d9;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}
.launcher svg{width:26px;height:26px;fill:currentColor}
.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;
 background:#d92344;font-size:12px;line-height:20px;font-weight:600}
.badge[hidden]{display:none}
.panel{position:fixed;right:16px;bottom:84px;width:370px;height:min(560px,calc(100vh - 100px));display:flex;
 flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden;
 z-index:2147483000}
.panel[hidden]{display:none}
header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:#2357d9;color:#fff}
header h2{flex:1;margin:0;font-size:16px}
.status{font-size:12px;opacity:.85}
.close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 6px;border-radius:6px}
.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f5f7fa;margin:0;list-style:none}
.msg{max-width:82%;padding:8px 11px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere}
.msg.bot{align-self:flex-start;background:#fff;border:1px solid #dde3ea;border-bottom-left-radius:4px}
.msg .who{display:block;font-size:12px;font-weight:600;color:#5b6573;margin-bottom:2px}
.msg.user{align-self:flex-end;background:#2357d9;color:#fff;border-bottom-right-radius:4px}
.mark{display:block;text-align:right;font-size:11px;opacity:.8;margin-top:2px}
.mark.read{color:#8dffb0;opacity:1;font-weight:700}
.quick{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start}
.quick button{border:1px solid #2357d9;background:#fff;color:#2357d9;border-radius:16px;padding:5px 12px;cursor:pointer;font:inherit}
.typing{padding:0 14px 6px;font-size:13px;color:#5b6573;background:#f5f7fa;min-height:1.4em}
form{display:flex;gap:8px;padding:10px;border-top:1px solid #dde3ea}
input{flex:1;min-width:0;font:inherit;padding:9px 12px;border:1px solid #c4ccd6;border-radius:20px}
.send{border:0;background:#2357d9;color:#fff;border-radius:20px;padding:0 16px;font:inherit;cursor:pointer}
button:focus-visible,input:focus-visible{outline:3px solid #f5b400;outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){.panel{left:8px;right:8px;width:auto;bottom:80px;height:calc(100vh - 96px)}}
@media (prefers-reduced-motion:no-preference){.panel{animation:pop .15s ease-out}@keyframes pop{from{opacity:0;transform:translateY(8px)}}}
</style>
<button class="launcher" type="button" aria-expanded="false" aria-controls="sb-panel" aria-label="Open chat">
 <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>
 <span class="badge" hidden></span>
</button>
<section class="panel" id="sb-panel" role="dialog" aria-labelledby="sb-title" hidden>
 <header><h2 id="sb-title"></h2><span class="status" role="status"></span>
  <button class="close" type="button" aria-label="Close chat">&times;</button></header>
 <ol class="log" role="log" aria-live="polite" aria-label="Messages"></ol>
 <div class="typing" aria-live="polite"></div>
 <form><input type="text" aria-label="Message" placeholder="Type a message" autocomplete="off" maxlength="4000">
  <button class="send" type="submit">Send</button></form>
</section>`;
  const $ = (sel) => root.querySelector(sel);
  const launcher = $('.launcher');
  const badge = $('.badge');
  const panel = $('.panel');
  const statusEl = $('.status');
  const log = $('.log');
  const typingEl = $('.typing');
  const form = $('form');
  const input = $('input');
  $('#sb-title').textContent = title;

  // --- conversation state ----------------------------------------------------------------------------
  /** Messages by key (server id, or clientMessageId while unacknowledged). */
  const messages = new Map();
  let ws = null;
  let connecting = false;
  let ready = false;
  let token = null;
  let attempts = 0;
  let reconnectTimer = 0;
  let refreshTimer = 0;
  let typingTimer = 0;
  let readSent = 0;

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

  // --- rendering ---------------------------------------------------------------------------------------
  const MARKS = {
    pending: ['…', 'Sending'],
    sent: ['✓', 'Sent'],
    delivered: ['✓✓', 'Delivered'],
    read: ['✓✓', 'Read'],
  };
  function render() {
    const list = [...messages.values()].sort((a, b) => a.seq - b.seq);
    log.replaceChildren();
    for (const m of list) {
      const li = document.createElement('li');
      li.className = `msg ${m.type === 'user' ? 'user' : m.type === 'agent' ? 'bot agent' : 'bot'}`;
      if (m.type === 'agent' && m.from?.name) {
        const who = document.createElement('span');
        who.className = 'who';
        who.textContent = m.from.name;
        li.append(who);
      }
      const text = document.createElement('span');
      text.textContent = m.text;
      li.append(text);
      if (m.type === 'user') {
        const [glyph, label] = MARKS[m.status] || MARKS.pending;
        const mark = document.createElement('span');
        mark.className = `mark ${m.status}`;
        mark.title = label;
        mark.innerHTML = `<span aria-hidden="true">${glyph}</span><span class="sr">${label}</span>`;
        li.append(mark);
      }
      log.append(li);
    }
    const last = list[list.length - 1];
    if (last && isTheirs(last) && last.quickReplies) {
      const li = document.createElement('li');
      li.className = 'quick';
      for (const q of last.quickReplies) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = q.title;
        b.addEventListener('click', () => {
          sendText(q.title, q.payload);
          input.focus();
        });
        li.append(b);
      }
      log.append(li);
    }
    log.scrollTop = log.scrollHeight;
    const unread = list.filter((m) => isTheirs(m) && m.seq > saved.readSeq).length;
    badge.hidden = unread === 0 || !panel.hidden;
    badge.textContent = String(unread);
    launcher.setAttribute('aria-label', unread > 0 ? `Open chat, ${unread} unread` : 'Open chat');
  }

  function setTyping(on, from) {
    clearTimeout(typingTimer);
    const who = from?.name || botName;
    typingEl.textContent = on ? `${who} is typing…` : '';
    // The indicator always clears, even if the "off" never arrives (connection lost meanwhile).
    if (on) typingTimer = setTimeout(() => setTyping(false), TYPING_TIMEOUT_MS);
  }

  function setStatus(text) {
    statusEl.textContent = text;
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
    setStatus('Connecting…');
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
    setStatus(navigator.onLine === false ? 'Offline' : 'Reconnecting…');
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
        attempts = 0;
        setStatus('');
        scheduleRefresh(Date.parse(f.expiresAt));
        if (first) {
          readSent = 0;
          ws.send(JSON.stringify({ type: 'resume', afterSeq: lastSeq() }));
          for (const item of saved.outbox) ws.send(JSON.stringify({ type: 'message', ...item }));
        }
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
              if (item && ready) ws.send(JSON.stringify({ type: 'message', ...item }));
            },
            (f.retryAfter || 2) * 1000,
          );
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

  function sendText(text, payload) {
    const item = { clientMessageId: newId(), text };
    if (payload) item.payload = payload;
    saved.outbox.push(item);
    persist();
    messages.set(item.clientMessageId, { ...item, type: 'user', status: 'pending', seq: Infinity });
    render();
    if (ready) ws.send(JSON.stringify({ type: 'message', ...item }));
    else connect();
  }

  // --- open / close, keyboard ----------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    input.focus();
    connect();
    markRead();
  }
  function close() {
    panel.hidden = true;
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
    sendText(text);
  });
  document.addEventListener('visibilitychange', markRead);
  window.addEventListener('online', () => {
    if (!ws) {
      attempts = 0;
      connect();
    }
  });

  document.body.append(host);
  render();
  window.SwitchboardChat = { open, close };
  if (data.open === 'true') open();
  else if (saved.started || saved.outbox.length > 0) connect();
})();
