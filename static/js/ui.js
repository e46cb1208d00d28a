// ui.js — DOM for the call page: arranging tiles (cameras in a grid, shared screens large
// on a stage), control buttons, status, notices and messages.
// Why: keeps presentation out of the protocol and media code; join.js tells it what
// happened, it never talks to the network itself.

import { el, $ } from './dom.js';
import { Tile } from './tile.js';

export { el } from './dom.js';

const STRIP_BREAKPOINT = 700; // below: screen on top, cameras in a strip below it

export class CallUi {
  constructor() {
    this.grid = $('grid');
    this.stage = $('stage');
    this.tiles = new Map();
    this.handlers = {};
    this.sink = '';
    for (const [id, name] of [['mic-btn', 'mic'], ['cam-btn', 'cam'], ['leave-btn', 'leave'],
      ['chat-btn', 'chat'], ['settings-btn', 'settings']]) {
      $(id).addEventListener('click', () => this.handlers[name] && this.handlers[name]());
    }
    $('sound-btn').addEventListener('click', () => this.enableSound());
    let pending = 0;
    const relayout = () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => this.updateGrid());
    };
    window.addEventListener('resize', relayout);
    // Notices and the queue above the tiles take height from them when they appear.
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(relayout);
      for (const n of document.querySelectorAll('#call .notices, #queue')) ro.observe(n);
    }
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

  /** kind: 'error' | 'info'; action: optional {label, onClick}; extra: more sentences. */
  showMessage(text, kind = 'error', action = null, extra = []) {
    const box = $('message');
    box.replaceChildren(el('p', { text }), ...extra.map((t) => el('p', { class: 'more', text: t })));
    if (action) box.append(el('button', { class: 'btn', type: 'button', text: action.label, onclick: action.onClick }));
    box.className = `message ${kind}`;
    box.hidden = false;
  }

  clearMessage() {
    $('message').hidden = true;
  }

  showView(name) { // 'loading' | 'lobby' | 'waiting' | 'call' | 'none'
    $('lobby').hidden = name !== 'lobby';
    $('waiting').hidden = name !== 'waiting';
    $('call').hidden = name !== 'call';
    $('controls').hidden = name !== 'call';
    document.body.classList.toggle('in-call', name === 'call');
    document.body.dataset.view = name;
    if (name === 'call') this.updateGrid();
  }

  /** A notice above the tiles ("Waiting for Dr. Ada to join"); '' hides it. */
  setNotice(text) {
    const n = $('call-notice');
    if (n.textContent !== text) n.textContent = text || '';
    n.hidden = !text;
  }

  /**
   * The weak-connection notice: shown with `hint` and, when given, one action button
   * ({label, onClick}); `show` false hides it.
   */
  setQuality(show, hint, action = null, title = 'Weak connection.') {
    const q = $('quality');
    q.hidden = !show;
    $('quality-title').textContent = title;
    $('quality-hint').textContent = show ? hint : '';
    const btn = $('audio-only-btn');
    btn.hidden = !(show && action);
    btn.textContent = action ? action.label : '';
    btn.onclick = action ? action.onClick : null;
  }

  tile(key) { return this.tiles.get(key); }

  upsertTile(key, name, opts = {}) {
    let t = this.tiles.get(key);
    if (!t) {
      t = new Tile(key, name, opts);
      this.tiles.set(key, t);
      if (opts.screen) this.stage.append(t.node);
      else if (opts.self) this.grid.prepend(t.node);
      else this.grid.append(t.node);
      if (this.sink) t.setSink(this.sink);
      this.updateGrid();
    } else if (name) {
      t.setName(name);
    }
    return t;
  }

  removeTile(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    t.clearMedia();
    t.node.remove();
    this.tiles.delete(key);
    this.updateGrid();
  }

  /** Remove every remote tile (camera or screen) whose participant is not in `keep`. */
  clearRemoteTiles(keep = new Set()) {
    for (const [key, t] of [...this.tiles]) {
      if (!t.self && !keep.has(key.split('#')[0])) this.removeTile(key);
    }
  }

  /**
   * Show what is received now. media: Map pid → {camera: tracks[], screen: tracks[]};
   * people: pid → {name, hint}. Screen tiles come and go with their tracks.
   */
  renderRemote(media, people) {
    const blocked = () => { $('sound-btn').hidden = false; };
    for (const [pid, m] of media) {
      const who = people.get(pid);
      if (!who) continue;
      const cam = this.upsertTile(pid, who.name);
      cam.setName(who.name, who.hint);
      cam.setTracks(m.camera, blocked);
      const key = `${pid}#screen`;
      if (m.screen.length) this.upsertTile(key, who.name, { screen: true }).setTracks(m.screen, blocked);
      else this.removeTile(key);
    }
    for (const key of [...this.tiles.keys()]) {
      const [pid, part] = key.split('#');
      if (part === 'screen' && pid !== 'self' && !(media.get(pid) || { screen: [] }).screen.length) this.removeTile(key);
    }
  }

  /** Our own shared screen as a tile (null removes it). */
  setLocalScreen(track) {
    if (track) this.upsertTile('self#screen', 'You', { self: true, screen: true }).setTracks([track]);
    else this.removeTile('self#screen');
  }

  /**
   * The room's active speakers (server `active_speakers`, loudest first): their tiles
   * light up, and in a group the loudest remote speaker is featured (shown large) until
   * someone else speaks.
   */
  setSpeakers(speakers, selfId) {
    const levels = new Map();
    for (const s of speakers) levels.set(s.participant_id === selfId ? 'self' : s.participant_id, s.level);
    for (const [key, t] of this.tiles) if (!t.screen) t.setSpeaking(levels.get(key));
    const top = speakers.find((s) => s.participant_id !== selfId && this.tiles.has(s.participant_id));
    if (top && top.participant_id !== this.featured) {
      this.featured = top.participant_id;
      this.updateGrid();
    }
  }

  /** The featured tile in a group of three or more cameras without a shared screen. */
  featuredTile(cams, screens) {
    if (cams < 3 || screens > 0 || !this.featured) return null;
    const t = this.tiles.get(this.featured);
    return t && !t.self && !t.screen ? t : null;
  }

  /** Send all remote sound to speaker `deviceId`. */
  setSink(deviceId) {
    this.sink = deviceId;
    for (const t of this.tiles.values()) t.setSink(deviceId);
  }

  /** Pick the column count that gives the largest 4:3 tiles that fit the visible area. */
  updateGrid() {
    const cams = [...this.tiles.values()].filter((t) => !t.screen).length;
    const screens = this.stage.children.length;
    const call = $('call');
    call.classList.toggle('has-stage', screens > 0);
    this.stage.hidden = screens === 0;
    const featured = this.featuredTile(cams, screens);
    for (const t of this.tiles.values()) t.node.classList.toggle('featured', t === featured);
    this.grid.dataset.layout = featured ? 'speaker' : 'grid';
    // A featured tile takes 2×2 cells, so it needs two columns.
    const n = Math.max(1, cams) + (featured ? 3 : 0);
    const minCols = featured ? 2 : 1;
    this.grid.dataset.count = String(Math.max(1, cams));
    const gap = 8;
    if (screens > 0) {
      // Cameras beside the screen (a column) on wide screens, in a row below on phones.
      const narrow = window.innerWidth < STRIP_BREAKPOINT;
      this.grid.style.setProperty('--cols', String(narrow ? Math.min(n, 3) : 1));
      this.grid.style.maxWidth = '';
      return;
    }
    const controls = $('controls');
    const width = this.grid.parentElement.clientWidth - 1 || window.innerWidth - 16;
    // What is left below the notices and the queue, above the control bar.
    const top = this.grid.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(160, window.innerHeight - top
      - (controls && !controls.hidden ? controls.offsetHeight : 88) - 16);
    let best = { cols: minCols, tileW: 0 };
    for (let cols = minCols; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const tileW = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * 4 / 3);
      if (tileW > best.tileW + 1) best = { cols, tileW };
    }
    // Never shrink below a usable size: scroll vertically instead (never horizontally).
    const minW = Math.min(150, width);
    if (best.tileW < minW) {
      best.cols = Math.max(minCols, Math.floor((width + gap) / (minW + gap)));
      best.tileW = (width - gap * (best.cols - 1)) / best.cols;
    }
    this.grid.style.setProperty('--cols', String(best.cols));
    this.grid.style.maxWidth = `${Math.floor(best.cols * best.tileW + gap * (best.cols - 1))}px`;
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
    for (const id of ['mic-btn', 'cam-btn', 'leave-btn', 'share-btn', 'settings-btn']) $(id).disabled = !on;
  }

  /** Unread chat messages on the Chat button (0 hides the badge). */
  setChatBadge(n) {
    const b = $('chat-badge');
    b.textContent = n > 99 ? '99+' : String(n);
    b.hidden = !n;
    $('chat-btn').setAttribute('aria-label', n ? `Chat, ${n} unread` : 'Chat');
  }

  setChatOpen(open) {
    $('chat-btn').setAttribute('aria-expanded', String(open));
    document.body.classList.toggle('chat-open', open);
    this.updateGrid();
  }
}
