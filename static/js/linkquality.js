// linkquality.js — everyone's connection quality (the server's `connection_quality`) on
// their tiles, and "audio only" for one's own weak connection.
// Why: when someone's video freezes, a badge on their tile tells the others it is their
// network, not the call; when one's own connection is poor, receiving audio only is the
// switch that helps most, so it is offered right in the weak-connection notice.

/** What a verdict means, for badges and screen readers. */
export const QUALITY_LABEL = {
  excellent: 'Excellent connection',
  good: 'Good connection',
  poor: 'Poor connection',
  lost: 'Connection lost',
};

export const AUDIO_ONLY_HINT = 'You receive no video, which keeps the call going on a weak connection. Others still see and hear you.';

export class LinkQuality {
  /**
   * @param {import('./ui.js').CallUi} ui
   * @param {{send: (m: object) => boolean, selfId: () => string|null,
   *   poorHint: string, onAudioOnly?: (on: boolean) => void}} o
   */
  constructor(ui, o) {
    this.ui = ui;
    this.o = o;
    this.verdicts = new Map(); // tile key → verdict
    this.localPoor = false;
    this.audioOnly = false;
  }

  /** Server verdicts (`connection_quality.updates`). */
  update(updates) {
    const me = this.o.selfId();
    for (const u of updates) {
      if (!u || !QUALITY_LABEL[u.quality]) continue;
      this.verdicts.set(u.participant_id === me ? 'self' : u.participant_id, u.quality);
    }
    this.apply();
  }

  /** The page's own view of its connection (QualityMonitor, from WebRTC stats). */
  setLocal(poor) {
    this.localPoor = poor;
    this.refreshNotice();
  }

  /** Puts the verdicts on the tiles (also after tiles were re-created). */
  apply() {
    for (const [key, q] of this.verdicts) {
      const t = this.ui.tile(key);
      if (t) t.setQuality(q, QUALITY_LABEL[q]);
    }
    for (const [key, t] of this.ui.tiles) {
      if (!t.screen && !t.self) t.setVideoPaused(this.audioOnly);
      if (!this.verdicts.has(key) && !t.screen) t.setQuality(null);
    }
    this.refreshNotice();
  }

  /** Receive audio only (true) or everything (false); tells the server. */
  setAudioOnly(on) {
    this.audioOnly = !!on;
    this.o.send({ type: 'audio_only', enabled: this.audioOnly });
    if (this.o.onAudioOnly) this.o.onAudioOnly(this.audioOnly);
    this.apply();
  }

  /** After (re)joining: the server starts with video on, so a chosen audio-only is re-sent. */
  joined() {
    if (this.audioOnly) this.o.send({ type: 'audio_only', enabled: true });
    this.apply();
  }

  refreshNotice() {
    const own = this.verdicts.get('self');
    const poor = this.localPoor || own === 'poor' || own === 'lost';
    if (this.audioOnly) {
      this.ui.setQuality(true, AUDIO_ONLY_HINT, { label: 'Turn video back on', onClick: () => this.setAudioOnly(false) }, 'Audio only.');
    } else if (poor) {
      this.ui.setQuality(true, this.o.poorHint, { label: 'Switch to audio only', onClick: () => this.setAudioOnly(true) });
    } else {
      this.ui.setQuality(false, '');
    }
  }
}
