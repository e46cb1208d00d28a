// videoview.js — tells the server which remote videos are on screen, and how large
// (`video_view`).
// Why: a video nobody looks at (its tile scrolled out of view or hidden, or the whole
// page in the background) still costs the server, the network and the phone's battery;
// the server stops sending it until it shows again, and resumes it at a keyframe. The
// size a video is shown at lets the server pick the smallest simulcast layer that still
// looks sharp in its tile (a thumbnail needs no 720p).

/** A size change smaller than this (relative, either side) is not worth a message. */
export const SIZE_CHANGE = 0.2;
/** Resizes are reported once the layout has been still this long (ms). */
export const SIZE_DEBOUNCE_MS = 300;
/** The server's bound on a reported width or height (PROTOCOL.md, `video_view`). */
export const MAX_DIMENSION = 16384;

/**
 * The device-pixel size of a CSS box (CSS size × devicePixelRatio, rounded, at most
 * MAX_DIMENSION), or null when it shows nothing.
 */
export function devicePixels(cssWidth, cssHeight, ratio = window.devicePixelRatio || 1) {
  const px = (v) => Math.min(MAX_DIMENSION, Math.round(v * ratio));
  const width = px(cssWidth);
  const height = px(cssHeight);
  return width >= 1 && height >= 1 ? { width, height } : null;
}

/** True when `next` differs from `last` by more than SIZE_CHANGE in width or height. */
export function sizeChanged(last, next) {
  if (!next) return false;
  if (!last) return true;
  const far = (a, b) => Math.abs(b - a) > a * SIZE_CHANGE;
  return far(last.width, next.width) || far(last.height, next.height);
}

export class VideoView {
  /** @param {(m: object) => boolean} send signaling send */
  constructor(send) {
    this.send = send;
    this.onScreen = new Map(); // tile key → intersecting
    this.sizes = new Map(); // tile key → {width, height} of its <video> in device pixels, or null
    this.sent = new Map(); // track id → {visible, size}, as last told the server
    this.tiles = new Map(); // tile key → Tile
    this.sizeTimer = null;
    this.observer = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => this.observed(entries), { threshold: 0 })
      : null;
    this.resizer = typeof ResizeObserver === 'function'
      ? new ResizeObserver((entries) => this.resized(entries))
      : null;
    document.addEventListener('visibilitychange', () => this.evaluate());
  }

  observed(entries) {
    for (const e of entries) {
      const key = e.target.dataset.pid;
      if (key) this.onScreen.set(key, e.isIntersecting);
    }
    this.evaluate();
  }

  /** Tile videos changed size: noted now, reported once the layout is still. */
  resized(entries) {
    for (const e of entries) {
      const key = this.keyOfVideo(e.target);
      if (key == null) continue;
      const box = e.contentRect;
      this.sizes.set(key, devicePixels(box.width, box.height));
    }
    clearTimeout(this.sizeTimer);
    this.sizeTimer = setTimeout(() => { this.sizeTimer = null; this.evaluate(); }, SIZE_DEBOUNCE_MS);
  }

  keyOfVideo(video) {
    for (const [key, t] of this.tiles) if (t.video === video) return key;
    return null;
  }

  /** The remote tiles shown now (call after tiles or their tracks changed). */
  refresh(tiles) {
    for (const [key, t] of tiles) {
      if (t.self || this.tiles.get(key) === t) continue;
      const old = this.tiles.get(key);
      if (old) this.unwatch(old);
      this.tiles.set(key, t);
      if (this.observer) this.observer.observe(t.node);
      if (this.resizer) this.resizer.observe(t.video);
    }
    for (const [key, t] of [...this.tiles]) {
      if (tiles.get(key) !== t) {
        this.unwatch(t);
        this.tiles.delete(key);
        this.onScreen.delete(key);
        this.sizes.delete(key);
      }
    }
    this.evaluate();
  }

  unwatch(t) {
    if (this.observer) this.observer.unobserve(t.node);
    if (this.resizer) this.resizer.unobserve(t.video);
  }

  /** A new join: the server counts every video as visible (and unsized) again. */
  joined() {
    this.sent.clear();
    this.evaluate();
  }

  evaluate() {
    const pageShown = document.visibilityState !== 'hidden';
    for (const [key, t] of this.tiles) {
      const visible = pageShown && this.onScreen.get(key) !== false && !t.node.hidden;
      const size = this.sizes.get(key) || null;
      for (const track of t.tracks) {
        if (track.kind === 'video') this.report(track.id, visible, size);
      }
    }
  }

  /**
   * Tells the server about one video when its visibility changed, or when it is shown at
   * a size notably different (SIZE_CHANGE) from the one last reported.
   */
  report(trackId, visible, size) {
    const last = this.sent.get(trackId) || { visible: true, size: null };
    const resized = visible && sizeChanged(last.size, size);
    if (last.visible === visible && !resized) return;
    const msg = { type: 'video_view', track_id: trackId, visible };
    const reported = size || last.size;
    if (reported) { msg.width = reported.width; msg.height = reported.height; }
    if (this.send(msg)) this.sent.set(trackId, { visible, size: reported });
  }
}
