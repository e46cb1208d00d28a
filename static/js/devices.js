// devices.js — cameras, microphones and speakers: opening them, listing them, switching
// one of them, sending sound to a chosen speaker, and a live microphone level.
// Why: the lobby and the in-call settings dialog both pick devices; neither should know
// getUserMedia's fallbacks or Web Audio's plumbing.

/** True when this page may use camera and microphone at all (secure context + API). */
export function mediaAvailable() {
  return !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/** True when audio output can be routed to a chosen speaker (HTMLMediaElement.setSinkId). */
export function speakerSelectable() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/** Cameras open at 1280×720 instead of 640×480 (page option `hd=1`: three full simulcast layers). */
let hd = false;

/** Sets whether cameras open in HD (see `hd`); small rooms' 320×240 is unaffected. */
export function preferHd(on) {
  hd = !!on;
}

function videoConstraints(small, deviceId) {
  const normal = hd ? { width: { ideal: 1280 }, height: { ideal: 720 } } : { width: { ideal: 640 }, height: { ideal: 480 } };
  const size = small ? { width: { ideal: 320 }, height: { ideal: 240 } } : normal;
  return deviceId ? { ...size, deviceId: { exact: deviceId } } : size;
}

/**
 * Camera + microphone, falling back to whichever of the two works. Resolves to a
 * MediaStream, or null when neither is available.
 */
export async function openMedia({ small = false, audioId = null, videoId = null } = {}) {
  if (!mediaAvailable()) return null;
  const audio = audioId ? { deviceId: { exact: audioId } } : true;
  const video = videoConstraints(small, videoId);
  const attempts = [{ audio, video }, { audio, video: false }, { audio: false, video }];
  for (const c of attempts) {
    try {
      return await navigator.mediaDevices.getUserMedia(c);
    } catch (e) {
      console.warn('getUserMedia failed', JSON.stringify(c), e && e.name);
    }
  }
  return null;
}

/** One new track of `kind` from device `deviceId` (throws when the device refuses). */
export async function openTrack(kind, deviceId, { small = false } = {}) {
  const c = kind === 'audio'
    ? { audio: deviceId ? { deviceId: { exact: deviceId } } : true }
    : { video: videoConstraints(small, deviceId) };
  const s = await navigator.mediaDevices.getUserMedia(c);
  return s.getTracks()[0];
}

/** {audioinput: [...], videoinput: [...], audiooutput: [...]} of {deviceId, label}. */
export async function listDevices() {
  const out = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  const all = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  const count = { audioinput: 0, videoinput: 0, audiooutput: 0 };
  const names = { audioinput: 'Microphone', videoinput: 'Camera', audiooutput: 'Speaker' };
  for (const d of all) {
    if (!out[d.kind] || !d.deviceId) continue;
    count[d.kind] += 1;
    out[d.kind].push({ deviceId: d.deviceId, label: d.label || `${names[d.kind]} ${count[d.kind]}` });
  }
  return out;
}

/** The deviceId a live track was opened from ('' when unknown). */
export function deviceOf(track) {
  return (track && track.getSettings && track.getSettings().deviceId) || '';
}

/**
 * Put `track` in `stream` in place of the stream's track of the same kind (which is
 * stopped). Keeps the old track's enabled state (mute stays mute).
 */
export function swapTrack(stream, track) {
  const old = stream.getTracks().find((t) => t.kind === track.kind);
  if (old) {
    track.enabled = old.enabled;
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(track);
}

/** Send every given media element's sound to speaker `deviceId` where supported. */
export async function routeAudio(elements, deviceId) {
  if (!speakerSelectable() || deviceId == null) return;
  for (const e of elements) {
    try { await e.setSinkId(deviceId); } catch (err) { console.warn('setSinkId failed', err && err.name); }
  }
}

/**
 * Live microphone level (0..1) from a Web Audio AnalyserNode, reported to `onLevel`
 * about 15 times a second. stop() releases the audio graph.
 */
export class LevelMeter {
  constructor(onLevel) {
    this.onLevel = onLevel;
    this.ctx = null;
    this.source = null;
    this.timer = null;
  }

  /** Measure the first audio track of `stream` (replacing what was measured before). */
  watch(stream) {
    this.detach();
    const track = stream && stream.getAudioTracks()[0];
    if (!track || typeof AudioContext === 'undefined') { this.onLevel(0); return; }
    if (!this.ctx) this.ctx = new AudioContext();
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = 512;
    this.source.connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    this.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const rms = Math.sqrt(sum / buf.length);
      this.onLevel(track.enabled ? Math.min(1, rms * 4) : 0);
    }, 66);
  }

  /** The audio context starts only after a user gesture in some browsers. */
  resume() {
    if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  detach() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.source) { try { this.source.disconnect(); } catch {} }
    this.source = null;
  }

  stop() {
    this.detach();
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}
