// ui.js — DOM for the call page: participant tiles, control buttons, status and messages.
// Why: keeps presentation out of the protocol and media code; join.js tells it what
// happened, it never talks to the network itself.

const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return s.toUpperCase();
}

/** One participant's tile: video, hidden audio, name label, state badges. */
class Tile {
  constructor(pid, name, { self = false } = {}) {
    this.pid = pid;
    this.self = self;
    this.video = el('video', { autoplay: true, playsinline: true, muted: true, class: self ? 'mirror' : null });
    this.video.muted = true; // the attribute alone does not mute; autoplay needs it
    this.audio = self ? null : el('audio', { autoplay: true });
    this.avatar = el('div', { class: 'avatar', 'aria-hidden': 'true' });
    this.nameEl = el('span', { class: 'name' });
    this.micBadge = el('span', { class: 'badge mic-off', text: 'Mic off', hidden: true });
    this.camBadge = el('span', { class: 'badge cam-off', text: 'Camera off', hidden: true });
    this.recBadge = el('div', { class: 'reconnecting', text: 'Reconnecting…', hidden: true });
    this.node = el('div', { class: 'tile' + (self ? ' self' : ''), 'data-pid': pid },
      this.avatar, this.video, this.audio, this.recBadge,
      el('div', { class: 'label' }, this.nameEl, this.micBadge, this.camBadge));
    this.setName(name);
    this.updateVideoState();
  }

  setName(name) {
    this.name = name || 'Participant';
    this.nameEl.textContent = this.self && this.name !== 'You' ? `${this.name} (you)` : this.name;
    this.avatar.textContent = initials(this.name);
  }

  setStream(stream, onAudioBlocked) {
    if (this.video.srcObject !== stream) {
      this.video.srcObject = stream;
      this.video.play().catch(() => {});
      stream.addEventListener('addtrack', (ev) => {
        // A peer that reloaded comes back as new tracks in the same stream: re-attach so
        // the element surely renders the new video track.
        if (ev.track.kind === 'video' && this.video.srcObject === stream) {
          this.video.srcObject = null;
          this.video.srcObject = stream;
          this.video.play().catch(() => {});
        }
        this.updateVideoState();
      });
      stream.addEventListener('removetrack', () => this.updateVideoState());
    }
    if (this.audio && this.audio.srcObject !== stream) {
      this.audio.srcObject = stream;
      this.audio.play().catch(() => onAudioBlocked && onAudioBlocked());
    }
    this.updateVideoState();
  }

  updateVideoState() {
    const s = this.video.srcObject;
    const hasVideo = !!(s && s.getVideoTracks().some((t) => t.readyState === 'live'));
    const off = !hasVideo || this.videoMuted;
    this.node.classList.toggle('no-video', off);
  }

  setMuted(kind, muted) {
    if (kind === 'audio') this.micBadge.hidden = !muted;
    if (kind === 'video') {
      this.videoMuted = muted;
      this.camBadge.hidden = !muted;
      this.updateVideoState();
    }
  }

  setReconnecting(on) {
    this.recBadge.hidden = !on;
    this.node.classList.toggle('is-reconnecting', on);
  }
}

export class CallUi {
  constructor() {
    this.grid = $('grid');
    this.tiles = new Map();
    this.handlers = {};
    $('mic-btn').addEventListener('click', () => this.handlers.mic && this.handlers.mic());
    $('cam-btn').addEventListener('click', () => this.handlers.cam && this.handlers.cam());
    $('leave-btn').addEventListener('click', () => this.handlers.leave && this.handlers.leave());
    $('sound-btn').addEventListener('click', () => this.enableSound());
    let pending = 0;
    window.addEventListener('resize', () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => this.updateGrid());
    });
  }

  on(name, fn) { this.handlers[name] = fn; }

  setHeader(sessionName, therapistName) {
    $('session-name').textContent = sessionName || 'TheraRoom session';
    $('therapist-name').textContent = therapistName ? `with ${therapistName}` : '';
    document.title = `${sessionName || 'Session'} · TheraRoom`;
  }

  setStatus(text) {
    const s = $('status');
    s.textContent = text || '';
    s.hidden = !text;
  }

  /** kind: 'error' | 'info'; action: optional {label, onClick}. */
  showMessage(text, kind = 'error', action = null) {
    const box = $('message');
    box.replaceChildren(el('p', { text }));
    if (action) box.append(el('button', { class: 'btn', type: 'button', text: action.label, onclick: action.onClick }));
    box.className = `message ${kind}`;
    box.hidden = false;
  }

  clearMessage() {
    $('message').hidden = true;
  }

  showView(name) { // 'loading' | 'lobby' | 'call' | 'none'
    $('lobby').hidden = name !== 'lobby';
    $('call').hidden = name !== 'call';
    $('controls').hidden = name !== 'call';
    document.body.classList.toggle('in-call', name === 'call');
    if (name === 'call') this.updateGrid();
  }

  tile(pid) { return this.tiles.get(pid); }

  upsertTile(pid, name, opts) {
    let t = this.tiles.get(pid);
    if (!t) {
      t = new Tile(pid, name, opts);
      this.tiles.set(pid, t);
      if (opts && opts.self) this.grid.prepend(t.node); else this.grid.append(t.node);
      this.updateGrid();
    } else if (name) {
      t.setName(name);
    }
    return t;
  }

  removeTile(pid) {
    const t = this.tiles.get(pid);
    if (!t) return;
    t.video.srcObject = null;
    if (t.audio) t.audio.srcObject = null;
    t.node.remove();
    this.tiles.delete(pid);
    this.updateGrid();
  }

  clearRemoteTiles(keep = new Set()) {
    for (const [pid, t] of [...this.tiles]) if (!t.self && !keep.has(pid)) this.removeTile(pid);
  }

  /** Pick the column count that gives the largest 4:3 tiles that fit the visible area. */
  updateGrid() {
    const n = Math.max(1, this.tiles.size);
    this.grid.dataset.count = String(n);
    const header = document.querySelector('.topbar');
    const controls = $('controls');
    const gap = 8;
    const width = this.grid.parentElement.clientWidth - 1 || window.innerWidth - 16;
    const height = Math.max(160, window.innerHeight - (header ? header.offsetHeight : 0)
      - (controls && !controls.hidden ? controls.offsetHeight : 88) - 24);
    let best = { cols: 1, tileW: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const tileW = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * 4 / 3);
      if (tileW > best.tileW + 1) best = { cols, tileW };
    }
    // Never shrink below a usable size: scroll vertically instead (never horizontally).
    const minW = Math.min(150, width);
    if (best.tileW < minW) {
      best.cols = Math.max(1, Math.floor((width + gap) / (minW + gap)));
      best.tileW = (width - gap * (best.cols - 1)) / best.cols;
    }
    this.grid.style.setProperty('--cols', String(best.cols));
    this.grid.style.maxWidth = `${Math.floor(best.cols * best.tileW + gap * (best.cols - 1))}px`;
  }

  setRemoteStream(pid, stream) {
    const t = this.upsertTile(pid, null);
    t.setStream(stream, () => { $('sound-btn').hidden = false; });
  }

  enableSound() {
    for (const t of this.tiles.values()) if (t.audio) t.audio.play().catch(() => {});
    $('sound-btn').hidden = true;
  }

  setControls({ micMuted, camOff }) {
    const mic = $('mic-btn');
    mic.setAttribute('aria-pressed', String(micMuted));
    mic.querySelector('.txt').textContent = micMuted ? 'Unmute' : 'Mute';
    const cam = $('cam-btn');
    cam.setAttribute('aria-pressed', String(camOff));
    cam.querySelector('.txt').textContent = camOff ? 'Camera on' : 'Camera off';
  }

  setControlsEnabled(on) {
    for (const id of ['mic-btn', 'cam-btn', 'leave-btn']) $(id).disabled = !on;
  }
}
