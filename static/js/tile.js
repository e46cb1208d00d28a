// tile.js — one video tile: a person's camera (with their microphone), or a shared
// screen. Name label, mute badges, "X is reconnecting", avatar when there is no video,
// a ring while they speak.
// Why: the call page shows many of these; ui.js only arranges them.

import { el } from './dom.js';

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return s.toUpperCase();
}

export class Tile {
  /**
   * @param {string} key 'self', a participant id, or `<id>#screen`
   * @param {string} name display name
   * @param {{self?: boolean, screen?: boolean}} o
   */
  constructor(key, name, { self = false, screen = false } = {}) {
    this.key = key;
    this.self = self;
    this.screen = screen;
    this.hint = '';
    this.tracks = [];
    this.videoPaused = false;
    this.streamPaused = false;
    this.video = el('video', { autoplay: true, playsinline: true, muted: true, class: self && !screen ? 'mirror' : null });
    this.video.muted = true; // the attribute alone does not mute; autoplay needs it
    this.audio = self ? null : el('audio', { autoplay: true });
    this.avatar = el('div', { class: 'avatar', 'aria-hidden': 'true' });
    this.nameEl = el('span', { class: 'name' });
    this.micBadge = el('span', { class: 'badge mic-off', text: 'Mic off', hidden: true });
    this.camBadge = el('span', { class: 'badge cam-off', text: 'Camera off', hidden: true });
    this.recBadge = el('div', { class: 'reconnecting', hidden: true });
    this.qualityBadge = el('span', { class: 'badge quality', hidden: true });
    this.pausedBadge = el('span', { class: 'badge paused', text: 'Video paused', hidden: true });
    this.streamBadge = el('span', { class: 'badge paused stream-paused', text: 'Paused: weak connection', hidden: true });
    this.node = el('div', { class: 'tile' + (self ? ' self' : '') + (screen ? ' screen' : ''), 'data-pid': key,
      role: 'group' },
      this.avatar, this.video, this.audio, this.recBadge,
      el('div', { class: 'label' }, this.nameEl, this.micBadge, this.camBadge, this.pausedBadge, this.streamBadge, this.qualityBadge));
    this.setName(name);
    this.updateVideoState();
  }

  /** Name, plus a hint such as "other device" for a second window of the same person. */
  setName(name, hint = this.hint) {
    this.name = name || 'Participant';
    this.hint = hint || '';
    let label = this.name;
    if (this.self && !this.screen && label !== 'You') label = `${label} (you)`;
    if (this.screen) label = this.self ? 'Your screen' : `${this.name}'s screen`;
    if (this.hint) label = `${label} (${this.hint})`;
    this.nameEl.textContent = label;
    this.node.setAttribute('aria-label', label);
    this.avatar.textContent = this.screen ? '' : initials(this.name);
    this.recBadge.textContent = `${this.name} is reconnecting…`;
  }

  /**
   * Show exactly these tracks (video + audio). A new set gets a new MediaStream, so the
   * element surely renders a replaced track (e.g. after the peer reloaded).
   */
  setTracks(tracks, onAudioBlocked) {
    const same = tracks.length === this.tracks.length && tracks.every((t, i) => t === this.tracks[i]);
    if (same) return;
    this.tracks = tracks.slice();
    const ms = new MediaStream(this.tracks);
    this.video.srcObject = ms;
    this.video.play().catch(() => {});
    if (this.audio) {
      this.audio.srcObject = ms;
      this.audio.play().catch(() => onAudioBlocked && onAudioBlocked());
    }
    for (const t of this.tracks) {
      t.addEventListener('ended', () => this.updateVideoState());
      t.addEventListener('mute', () => this.updateVideoState());
      t.addEventListener('unmute', () => this.updateVideoState());
    }
    this.updateVideoState();
  }

  clearMedia() {
    this.video.srcObject = null;
    if (this.audio) this.audio.srcObject = null;
    this.tracks = [];
  }

  updateVideoState() {
    // A remote track is `muted` while no media arrives (before the first frame, or while
    // the peer is gone): show the avatar rather than a black or frozen picture.
    const hasVideo = this.tracks.some((t) => t.kind === 'video' && t.readyState === 'live' && (this.self || !t.muted));
    // Always a boolean: classList.toggle(name, undefined) would flip the class instead.
    const off = !hasVideo || !!this.streamPaused || (!this.screen && (!!this.videoMuted || !!this.videoPaused));
    this.node.classList.toggle('no-video', off);
    this.streamBadge.hidden = !this.streamPaused || (!this.screen && !!this.videoPaused);
  }

  setMuted(kind, muted) {
    if (this.screen) return;
    if (kind === 'audio') this.micBadge.hidden = !muted;
    if (kind === 'video') {
      this.videoMuted = muted;
      this.camBadge.hidden = !muted;
      this.updateVideoState();
    }
  }

  /**
   * Speaking indicator: a ring whose strength follows the smoothed level (0..1) the server
   * reports; null or undefined turns it off.
   */
  setSpeaking(level) {
    const on = typeof level === 'number';
    this.node.classList.toggle('speaking', on);
    this.node.style.setProperty('--speak', on ? String(Math.max(0.3, Math.min(1, level))) : '0');
    if (on) this.node.dataset.speaking = '1';
    else delete this.node.dataset.speaking;
  }

  /**
   * Connection verdict of this person (null: unknown). Only "poor" and "lost" show a
   * badge (a badge on every tile would read as a problem); every verdict is kept in the
   * tile's data-quality attribute.
   */
  setQuality(quality, label = '') {
    if (quality) this.node.dataset.quality = quality;
    else delete this.node.dataset.quality;
    const shown = quality === 'poor' || quality === 'lost';
    this.qualityBadge.hidden = !shown;
    this.qualityBadge.className = `badge quality q-${quality || 'none'}`;
    this.qualityBadge.textContent = shown ? label : '';
  }

  /** Audio only: this remote video is not received (avatar and a badge instead). */
  setVideoPaused(on) {
    this.videoPaused = !!on;
    this.pausedBadge.hidden = !on;
    this.updateVideoState();
  }

  /**
   * The server paused this remote video because our downlink cannot carry it (server
   * `stream_state`): avatar and a badge instead of a frozen picture, and
   * data-stream-state="paused" on the tile; false clears both. Audio-only's own badge
   * wins when both apply.
   */
  setStreamPaused(on) {
    this.streamPaused = !!on;
    if (this.streamPaused) this.node.dataset.streamState = 'paused';
    else delete this.node.dataset.streamState;
    this.updateVideoState();
  }

  setReconnecting(on) {
    this.recBadge.hidden = !on;
    this.node.classList.toggle('is-reconnecting', on);
  }

  /** Route this tile's sound to a speaker (HTMLMediaElement.setSinkId). */
  async setSink(deviceId) {
    if (!this.audio || !deviceId || typeof this.audio.setSinkId !== 'function') return;
    try { await this.audio.setSinkId(deviceId); } catch (e) { console.warn('setSinkId failed', e && e.name); }
  }
}
