// videoview.js — tells the server which remote videos are on screen (`video_view`).
// Why: a video nobody looks at (its tile scrolled out of view or hidden, or the whole
// page in the background) still costs the server, the network and the phone's battery;
// the server stops sending it until it shows again, and resumes it at a keyframe.

export class VideoView {
  /** @param {(m: object) => boolean} send signaling send */
  constructor(send) {
    this.send = send;
    this.onScreen = new Map(); // tile key → intersecting
    this.sent = new Map(); // track id → visible, as last told the server
    this.tiles = new Map(); // tile key → Tile
    this.observer = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => this.observed(entries), { threshold: 0 })
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

  /** The remote tiles shown now (call after tiles or their tracks changed). */
  refresh(tiles) {
    for (const [key, t] of tiles) {
      if (t.self || this.tiles.get(key) === t) continue;
      const old = this.tiles.get(key);
      if (old && this.observer) this.observer.unobserve(old.node);
      this.tiles.set(key, t);
      if (this.observer) this.observer.observe(t.node);
    }
    for (const [key, t] of [...this.tiles]) {
      if (tiles.get(key) !== t) {
        if (this.observer) this.observer.unobserve(t.node);
        this.tiles.delete(key);
        this.onScreen.delete(key);
      }
    }
    this.evaluate();
  }

  /** A new join: the server counts every video as visible again. */
  joined() {
    this.sent.clear();
    this.evaluate();
  }

  evaluate() {
    const pageShown = document.visibilityState !== 'hidden';
    for (const [key, t] of this.tiles) {
      const visible = pageShown && this.onScreen.get(key) !== false && !t.node.hidden;
      for (const track of t.tracks) {
        if (track.kind !== 'video') continue;
        if ((this.sent.get(track.id) ?? true) === visible) continue;
        if (this.send({ type: 'video_view', track_id: track.id, visible })) this.sent.set(track.id, visible);
      }
    }
  }
}
