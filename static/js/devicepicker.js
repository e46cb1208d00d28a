// devicepicker.js — the camera / microphone / speaker choosers with a microphone level,
// used in the lobby and in the in-call settings dialog.
// Why: both places need the same controls and the same switching rule (open the new
// device, swap it into the local stream, tell the caller so it can replaceTrack).

import { el } from './dom.js';
import { listDevices, openTrack, swapTrack, deviceOf, speakerSelectable, LevelMeter } from './devices.js';

export class DevicePicker {
  /**
   * @param {HTMLElement} container filled with the controls
   * @param {object} o
   * @param {string} o.prefix id prefix (two pickers may exist on a page)
   * @param {() => MediaStream|null} o.getStream the current local stream
   * @param {(stream: MediaStream) => void} o.setStream a stream was created (there was none)
   * @param {(kind: string, track: MediaStreamTrack) => void} o.onSwitch a device was switched
   * @param {(deviceId: string) => void} o.onSpeaker the speaker was chosen
   * @param {() => boolean} [o.small] open cameras at 320x240
   */
  constructor(container, { prefix, getStream, setStream, onSwitch, onSpeaker, small = () => false }) {
    this.o = { getStream, setStream, onSwitch, onSpeaker, small };
    this.selects = {};
    this.rows = {};
    const row = (kind, label) => {
      const id = `${prefix}-${kind}`;
      const select = el('select', { id, onchange: () => this.changed(kind) });
      this.selects[kind] = select;
      this.rows[kind] = el('div', { class: 'device-row' }, el('label', { for: id, text: label }), select);
      return this.rows[kind];
    };
    this.bar = el('span', { class: 'level-bar' });
    this.meter = el('div', { class: 'level', role: 'meter', 'aria-label': 'Microphone level',
      'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, this.bar);
    this.error = el('p', { class: 'field-error', 'aria-live': 'polite' });
    container.replaceChildren(
      row('videoinput', 'Camera'),
      row('audioinput', 'Microphone'),
      el('div', { class: 'device-row' }, el('span', { class: 'level-label', text: 'Mic level', 'aria-hidden': 'true' }), this.meter),
      row('audiooutput', 'Speaker'),
      this.error);
    this.levels = new LevelMeter((v) => this.showLevel(v));
    this.speaker = '';
    // Web Audio may start suspended until the person interacts with the page.
    document.addEventListener('click', () => this.levels.resume());
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', () => this.refresh());
    }
  }

  showLevel(v) {
    const pct = Math.round(v * 100);
    this.bar.style.width = `${pct}%`;
    this.meter.setAttribute('aria-valuenow', String(pct));
  }

  /** Re-read the device lists and select what the stream uses now; restart the meter. */
  async refresh() {
    const devices = await listDevices();
    const stream = this.o.getStream();
    const current = {
      videoinput: deviceOf(stream && stream.getVideoTracks()[0]),
      audioinput: deviceOf(stream && stream.getAudioTracks()[0]),
      audiooutput: this.speaker,
    };
    for (const kind of ['videoinput', 'audioinput', 'audiooutput']) {
      let list = devices[kind];
      if (kind === 'audiooutput' && !speakerSelectable()) list = [];
      this.rows[kind].hidden = list.length === 0;
      this.selects[kind].replaceChildren(...list.map((d) => el('option', { value: d.deviceId, text: d.label })));
      if (current[kind] && list.some((d) => d.deviceId === current[kind])) this.selects[kind].value = current[kind];
    }
    this.meter.parentElement.hidden = !(stream && stream.getAudioTracks().length);
    this.levels.watch(stream);
  }

  async changed(kind) {
    const id = this.selects[kind].value;
    this.error.textContent = '';
    if (kind === 'audiooutput') {
      this.speaker = id;
      this.o.onSpeaker(id);
      return;
    }
    const mediaKind = kind === 'audioinput' ? 'audio' : 'video';
    try {
      const track = await openTrack(mediaKind, id, { small: this.o.small() });
      let stream = this.o.getStream();
      if (!stream) {
        stream = new MediaStream();
        this.o.setStream(stream);
      }
      swapTrack(stream, track);
      this.o.onSwitch(mediaKind, track);
      if (mediaKind === 'audio') this.levels.watch(stream);
    } catch (e) {
      console.warn('device switch failed', e && e.name);
      this.error.textContent = mediaKind === 'audio'
        ? 'That microphone could not be opened. Is another app using it?'
        : 'That camera could not be opened. Is another app using it?';
      this.refresh();
    }
  }

  /** Stop measuring (the picker is hidden). */
  pause() {
    this.levels.detach();
  }

  close() {
    this.levels.stop();
  }
}
