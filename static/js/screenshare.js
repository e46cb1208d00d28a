// screenshare.js — the Share screen button: asks the browser for a screen, hands the
// track to the call, and stops when the person (or the browser's own "Stop sharing"
// bar) ends it.
// Why: join.js only needs "a screen started / stopped"; getDisplayMedia and its quirks
// (cancel, onended, browsers without it) stay here.

/** True when this browser can share a screen (desktop browsers; not phones). */
export function screenShareSupported() {
  return !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
}

export class ScreenShare {
  /**
   * @param {HTMLButtonElement} button hidden when sharing is not supported
   * @param {object} o
   * @param {(screen: {track: MediaStreamTrack, stream: MediaStream}) => void} o.onStart
   * @param {() => void} o.onStop
   * @param {(text: string) => void} o.onError
   */
  constructor(button, { onStart, onStop, onError }) {
    this.button = button;
    this.o = { onStart, onStop, onError };
    this.screen = null;
    this.starting = false;
    button.hidden = !screenShareSupported();
    button.addEventListener('click', () => (this.screen ? this.stop() : this.start()));
    this.render();
  }

  get active() {
    return !!this.screen;
  }

  async start() {
    if (this.screen || this.starting || !screenShareSupported()) return;
    this.starting = true;
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      const track = stream.getVideoTracks()[0];
      if (!track) throw new Error('no video track');
      if ('contentHint' in track) track.contentHint = 'detail';
      track.addEventListener('ended', () => this.stop()); // the browser's own "Stop sharing"
      this.screen = { track, stream };
      this.render();
      this.o.onStart(this.screen);
    } catch (e) {
      // NotAllowedError: the person cancelled the picker; nothing to say.
      if (!e || e.name !== 'NotAllowedError') this.o.onError('Your screen could not be shared.');
    } finally {
      this.starting = false;
    }
  }

  stop() {
    if (!this.screen) return;
    const { track } = this.screen;
    this.screen = null;
    track.stop();
    this.render();
    this.o.onStop();
  }

  render() {
    this.button.setAttribute('aria-pressed', String(!!this.screen));
    this.button.querySelector('.txt').textContent = this.screen ? 'Stop sharing' : 'Share screen';
  }

  setEnabled(on) {
    this.button.disabled = !on;
  }
}
