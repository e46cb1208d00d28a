// streamstate.js — remote videos the server paused because our downlink cannot carry
// them (server `stream_state`), shown on their tiles.
// Why: a paused video otherwise looks like a frozen or broken call; the tile says it is
// our own weak connection, and clears once the server sends the video again. The state
// is kept per announced track id, so tiles re-created by a layout change keep it.

export class StreamStates {
  /**
   * @param {import('./ui.js').CallUi} ui
   * @param {() => Array<{trackId: string, track: MediaStreamTrack}>} remoteTracks
   *   the received tracks with their announced ids (Call.remoteTracks)
   */
  constructor(ui, remoteTracks) {
    this.ui = ui;
    this.remoteTracks = remoteTracks;
    this.paused = new Set(); // announced track ids
  }

  /** Server `stream_state`; anything malformed is ignored. */
  update(msg) {
    if (!msg || typeof msg.track_id !== 'string') return;
    if (msg.state === 'paused') this.paused.add(msg.track_id);
    else if (msg.state === 'active') this.paused.delete(msg.track_id);
    else return;
    this.apply();
  }

  /** The track is gone (`track_unpublished`). */
  forget(trackId) {
    this.paused.delete(trackId);
  }

  /** A new join: the server starts with nothing paused. */
  joined() {
    this.paused.clear();
    this.apply();
  }

  /** Puts the state on the tiles (also after tiles or their tracks changed). */
  apply() {
    const pausedTracks = new Set();
    if (this.paused.size) {
      for (const r of this.remoteTracks()) {
        if (this.paused.has(r.trackId) || this.paused.has(r.track.id)) pausedTracks.add(r.track);
      }
    }
    for (const t of this.ui.tiles.values()) {
      if (t.self) continue;
      t.setStreamPaused(t.tracks.some((tr) => tr.kind === 'video' && pausedTracks.has(tr)));
    }
  }
}
