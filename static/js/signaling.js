// signaling.js — WebSocket client for the TheraRoom signaling protocol (signaling/PROTOCOL.md).
// Why: keeps the wire protocol (join, keepalive, fatal errors, reconnect with backoff)
// apart from media (call.js) and presentation (ui.js). It knows nothing about WebRTC.

const PROTOCOL_VERSION = 1;
const PING_INTERVAL_MS = 15000;
const SILENCE_LIMIT_MS = 45000; // the server treats 45 s of silence as dropped; so do we
const RECONNECT_WINDOW_MS = 30000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
// Fatal errors that end this socket but not the call: the server cannot take the join
// right now (several nodes: Redis is out of reach); reconnect with backoff as for a drop.
const RETRYABLE_ERRORS = new Set(['service_unavailable']);

// close codes 4000 + HTTP-like status → error code, for a fatal close without an `error` frame
const CLOSE_CODES = { 4401: 'unauthorized', 4403: 'forbidden', 4404: 'session_not_found',
  4409: 'room_full', 4410: 'session_ended', 4400: 'protocol_version', 4429: 'rate_limited',
  4408: 'connection_lost' };

export function rtcUrl(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/rtc`;
}

/**
 * Events (subscribe with on(type, fn)):
 *   any server message type ('joined', 'waiting', 'offer', 'chat', 'participant_joined', ...)
 *   'reconnecting' {attempt}   – the socket dropped; we are trying again
 *   'fatal' {code, message}    – refused or gave up; no more reconnects
 *   'closed' {}                – ended normally (left / session_ended / removed)
 */
export class Signaling {
  /**
   * `freshToken` (optional): async () => token, asked before every (re)connect so a
   * signed-in person's short access token is current when `join` is sent; its failure
   * (or null) keeps the token in hand.
   */
  constructor({ url = rtcUrl(), sessionId, token, freshToken = null, displayName, instance, log = console } = {}) {
    this.url = url;
    this.sessionId = sessionId;
    this.token = token;
    this.freshToken = freshToken;
    this.displayName = displayName;
    this.instance = instance;
    this.log = log;
    this.handlers = new Map();
    this.ws = null;
    this.joined = false;      // joined on the current socket
    this.waiting = false;     // in the waiting room on the current socket
    this.everJoined = false;
    this.finished = false;    // fatal / left / ended: never reconnect
    this.dropAt = 0;          // when the current outage began
    this.attempt = 0;
    this.pingTimer = null;
    this.retryTimer = null;
    this.lastHeard = 0;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
    return this;
  }

  emit(type, msg) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        const r = fn(msg);
        if (r && typeof r.catch === 'function') r.catch((e) => this.log.error('handler', type, e));
      } catch (e) {
        this.log.error('handler', type, e);
      }
    }
  }

  /** Open the socket; `join` is sent as soon as it is open. Watch 'joined' / 'fatal'. */
  connect() {
    this.finished = false;
    this.open().catch((e) => this.log.error('signaling: open', e));
  }

  async open() {
    clearTimeout(this.retryTimer);
    if (this.freshToken) {
      try { this.token = (await this.freshToken()) || this.token; } catch { /* keep the token in hand */ }
      if (this.finished) return;
    }
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.joined = false;
    this.waiting = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      const join = { type: 'join', protocol: PROTOCOL_VERSION, session_id: this.sessionId, token: this.token };
      if (this.displayName) join.display_name = this.displayName;
      if (this.instance) join.instance = this.instance;
      this.sendRaw(join);
      this.startPing();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      if (typeof ev.data !== 'string') return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { this.log.warn('bad frame from server'); return; }
      this.handle(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.stopPing();
      this.onClose(ev);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  handle(msg) {
    if (msg.type !== 'pong') this.log.debug('rtc <-', summarize(msg));
    const wasFinished = this.finished;
    switch (msg.type) {
      case 'joined':
        this.joined = true;
        this.waiting = false;
        this.everJoined = true;
        this.attempt = 0;
        this.dropAt = 0;
        break;
      case 'waiting':
        this.waiting = true;
        this.everJoined = true;
        this.attempt = 0;
        this.dropAt = 0;
        break;
      case 'error':
        if (msg.fatal && !RETRYABLE_ERRORS.has(msg.code)) this.fail(msg.code, msg.message);
        break;
      case 'left':
      case 'session_ended':
      case 'removed':
        this.finished = true;
        break;
      case 'pong':
        return;
    }
    this.emit(msg.type, msg);
    if (!wasFinished && (msg.type === 'left' || msg.type === 'session_ended' || msg.type === 'removed')) {
      this.stopPing();
      this.emit('closed', msg);
    }
  }

  fail(code, message) {
    if (this.finished) return;
    this.finished = true;
    this.stopPing();
    clearTimeout(this.retryTimer);
    this.emit('fatal', { code, message });
  }

  onClose(ev) {
    if (this.finished) return;
    if (ev.code >= 4000 && ev.code < 5000) {
      this.fail(ev.reason || CLOSE_CODES[ev.code] || 'internal', '');
      return;
    }
    // Unexpected drop: reconnect within the window, re-sending join with the same token.
    if (!this.dropAt) this.dropAt = Date.now();
    const elapsed = Date.now() - this.dropAt;
    if (elapsed >= RECONNECT_WINDOW_MS) {
      this.fail(this.everJoined ? 'connection_lost' : 'network', '');
      return;
    }
    const delay = Math.min(BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)],
      RECONNECT_WINDOW_MS - elapsed);
    this.attempt += 1;
    this.log.warn(`signaling: socket closed (${ev.code}), retry ${this.attempt} in ${delay} ms`);
    this.emit('reconnecting', { attempt: this.attempt });
    this.retryTimer = setTimeout(() => { if (!this.finished) this.open().catch((e) => this.log.error('signaling: open', e)); }, delay);
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS && this.ws) {
        this.log.warn('signaling: server silent, reconnecting');
        try { this.ws.close(); } catch {}
        return;
      }
      this.sendRaw({ type: 'ping', ts: Date.now() });
    }, PING_INTERVAL_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  sendRaw(msg) {
    if (msg.type !== 'ping') this.log.debug('rtc ->', summarize(msg));
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  /**
   * Send a message on the joined socket; dropped (false) when not joined. In the
   * waiting room only `chat` and `leave` go out (the server refuses media messages).
   */
  send(msg) {
    if (this.joined || (this.waiting && (msg.type === 'chat' || msg.type === 'leave'))) return this.sendRaw(msg);
    return false;
  }

  /** True when messages can be sent now (joined, or waiting for chat). */
  get connected() {
    return this.joined || this.waiting;
  }

  /** Leave on purpose: no reconnect afterwards. */
  leave() {
    if (this.finished) return;
    const sent = this.send({ type: 'leave' });
    this.finished = true;
    this.stopPing();
    clearTimeout(this.retryTimer);
    // The server answers `left` and closes; close ourselves if it does not.
    const ws = this.ws;
    setTimeout(() => { try { ws && ws.close(1000); } catch {} }, sent ? 2000 : 0);
    this.emit('closed', { type: 'left' });
  }

  /** Tear down silently (page going away). */
  close() {
    this.finished = true;
    this.stopPing();
    clearTimeout(this.retryTimer);
    try { this.ws && this.ws.close(1000); } catch {}
  }
}

/** One log line per message, without tokens or SDP bodies. */
function summarize(msg) {
  const parts = [msg.type];
  if (msg.pc) parts.push(msg.pc);
  if (msg.code) parts.push(msg.code, msg.fatal ? 'fatal' : '');
  if (msg.participant_id) parts.push(msg.participant_id);
  if (msg.participant && msg.participant.participant_id) parts.push(msg.participant.participant_id);
  if (msg.type === 'joined') parts.push(`resumed=${msg.resumed}`, `host=${msg.host}`, `others=${(msg.participants || []).length}`);
  if (msg.type === 'waiting') parts.push(`host_present=${msg.host_present}`);
  if (msg.type === 'waiting_room') parts.push(`queue=${(msg.waiting || []).length}`);
  if (msg.type === 'chat') parts.push(msg.to ? 'to ' + msg.to : '', msg.from ? 'from ' + msg.from : ''); // never the text
  if (msg.track) parts.push(msg.track.kind, msg.track.track_id);
  if (msg.track_id) parts.push(msg.track_id);
  if (msg.kind && msg.muted !== undefined) parts.push(msg.kind, `muted=${msg.muted}`);
  if (msg.reason) parts.push(msg.reason);
  if (msg.type === 'candidate') parts.push(msg.candidate ? (msg.candidate.candidate || 'end').split(' ').slice(4, 8).join(' ') : 'end');
  return parts.filter(Boolean).join(' ');
}
