// settings.js — the in-call settings dialog: switch camera, microphone and speaker
// (replaceTrack, no renegotiation), receive audio only, and, for hosts, turn the waiting
// room on or off.
// Why: keeps the dialog's DOM and focus handling out of join.js.

import { el } from './dom.js';
import { DevicePicker } from './devicepicker.js';

export class SettingsDialog {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {object} o DevicePicker options (getStream, setStream, onSwitch, onSpeaker, small)
   *   plus onWaitingRoom(on) → Promise, used when the host switches the waiting room
   */
  constructor(dialog, o) {
    this.dialog = dialog;
    this.onWaitingRoom = o.onWaitingRoom;
    const devices = el('div', { class: 'devices' });
    this.picker = new DevicePicker(devices, { prefix: 'set', ...o });
    this.toggle = el('input', { type: 'checkbox', id: 'waiting-toggle', role: 'switch', onchange: () => this.switched() });
    this.toggleError = el('p', { class: 'field-error', 'aria-live': 'polite' });
    this.hostPart = el('section', { class: 'host-settings', hidden: true },
      el('h3', { text: 'Waiting room' }),
      el('label', { class: 'switch', for: 'waiting-toggle' }, this.toggle,
        el('span', { text: 'Let people in one by one (waiting room)' })),
      el('p', { class: 'note', text: 'Turning it off lets everyone who is waiting in.' }),
      this.toggleError);
    this.audioOnly = el('input', { type: 'checkbox', id: 'audio-only-toggle', role: 'switch',
      onchange: () => o.onAudioOnlyToggle && o.onAudioOnlyToggle(this.audioOnly.checked) });
    const connection = el('section', { class: 'connection-settings' },
      el('h3', { text: 'Connection' }),
      el('label', { class: 'switch', for: 'audio-only-toggle' }, this.audioOnly,
        el('span', { text: 'Receive audio only (for a weak connection)' })),
      el('p', { class: 'note', text: 'Others still see and hear you.' }));
    const close = el('button', { class: 'btn primary', type: 'button', text: 'Done', onclick: () => this.close() });
    dialog.replaceChildren(
      el('h2', { id: 'settings-title', text: 'Settings' }),
      el('h3', { text: 'Camera and sound' }), devices, connection, this.hostPart,
      el('div', { class: 'dialog-actions' }, close));
    dialog.setAttribute('aria-labelledby', 'settings-title');
    dialog.addEventListener('close', () => this.picker.pause());
    this.waitingRoom = false;
  }

  /** Show the host part (a host who may PATCH the session) with the current state. */
  setHost(canSwitch, waitingRoomOn) {
    this.hostPart.hidden = !canSwitch;
    this.waitingRoom = !!waitingRoomOn;
    this.toggle.checked = this.waitingRoom;
  }

  /** Reflect the audio-only state chosen elsewhere (the weak-connection notice). */
  setAudioOnly(on) {
    this.audioOnly.checked = !!on;
  }

  async open() {
    this.toggleError.textContent = '';
    if (typeof this.dialog.showModal === 'function') this.dialog.showModal();
    else this.dialog.setAttribute('open', '');
    await this.picker.refresh();
  }

  close() {
    if (typeof this.dialog.close === 'function') this.dialog.close();
    else this.dialog.removeAttribute('open');
    this.picker.pause();
  }

  async switched() {
    const on = this.toggle.checked;
    this.toggle.disabled = true;
    this.toggleError.textContent = '';
    try {
      await this.onWaitingRoom(on);
      this.waitingRoom = on;
    } catch (e) {
      this.toggle.checked = this.waitingRoom;
      this.toggleError.textContent = (e && e.message) || 'Could not change the waiting room.';
    } finally {
      this.toggle.disabled = false;
    }
  }
}
