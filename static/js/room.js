// room.js — one visit of the session: the signaling socket and the call, from `waiting`
// or `joined` to the end. Routes protocol messages to the roster, the call, the chat,
// the waiting-room views and the UI.
// Why: join.js runs the lobby; this owns everything after "Join" (PROTOCOL.md).

import { api } from './api.js';
import { Signaling } from './signaling.js';
import { Call } from './call.js';
import { Roster } from './roster.js';
import { ChatPanel } from './chat.js';
import { WaitingView, HostQueue } from './waiting.js';
import { ScreenShare } from './screenshare.js';
import { SettingsDialog } from './settings.js';
import { QualityMonitor, POOR_HINT } from './quality.js';
import { LinkQuality } from './linkquality.js';
import { VideoView } from './videoview.js';
import { StreamStates } from './streamstate.js';
import { ExpiryBanner } from './expiry.js';
import { instanceId } from './instance.js';
import { $ } from './dom.js';

const CHAT_CODES = new Set(['invalid_chat', 'rate_limited']);
const WIDE = 1000; // px: the chat panel starts open beside the call

export class Room {
  /**
   * @param {object} o
   * @param {object} o.info GET /api/join/<share_token>
   * @param {string} o.token the JWT for `join`
   * @param {boolean} o.isGuest
   * @param {string|null} o.accessToken a user's token for REST (PATCH waiting room), null for guests
   * @param {Function|null} o.freshToken async () => a current user token before each (re)connect, null for guests
   * @param {string} o.myName
   * @param {{stream: MediaStream|null, small: boolean}} o.media the local media (shared with the lobby)
   * @param {import('./ui.js').CallUi} o.ui
   * @param {object} o.hooks window.theraroom
   * @param {(state: string) => void} o.setState
   * @param {(code: string, message?: string) => void} o.onFail
   * @param {(msg: object) => void} o.onClosed
   * @param {(text: string) => void} o.onCallOpen the page is in the call or waiting (reload rejoins)
   */
  constructor(o) {
    this.o = o;
    this.ui = o.ui;
    this.hooks = o.hooks;
    this.roster = new Roster();
    this.session = null;
    this.host = false;
    this.queue = [];
    this.micMuted = false;
    this.camOff = false;
    this.chatOpenedOnce = false;
    this.lastAction = null;
    this.sig = new Signaling({ sessionId: o.info.session_id, token: o.token, freshToken: o.freshToken || null, instance: instanceId() });
    this.call = new Call({ signaling: this.sig, onRemoteChange: (negotiated) => {
      // A new subscriber description is the server's current word on every track.
      if (negotiated) this.roster.gone.clear();
      this.refreshMedia();
    } });
    this.call.setLocalStream(o.media.stream);
    this.waitingView = new WaitingView();
    this.chat = new ChatPanel($('chat'), {
      send: (m) => { this.lastAction = 'chat'; return this.sig.send(m); },
      onUnread: (n) => this.ui.setChatBadge(n),
      onToggle: (open) => this.ui.setChatOpen(open),
    });
    this.queueView = new HostQueue($('queue'), {
      admit: (pid) => this.admit(pid),
      decline: (pid) => this.decline(pid),
      admitAll: () => this.sendHost({ type: 'admit_all' }),
      message: (pid) => this.chat.writeTo(pid),
    });
    this.share = new ScreenShare($('share-btn'), {
      onStart: (screen) => { this.call.setScreen(screen); this.ui.setLocalScreen(screen.track); },
      onStop: () => { this.call.setScreen(null); this.ui.setLocalScreen(null); },
      onError: (text) => this.ui.setNotice(text),
    });
    this.settings = new SettingsDialog($('settings'), this.deviceOptions());
    this.videoView = new VideoView((m) => this.sig.send(m));
    this.streams = new StreamStates(this.ui, () => this.call.remoteTracks());
    this.link = new LinkQuality(this.ui, {
      send: (m) => this.sig.send(m),
      selfId: () => this.hooks.participantId,
      poorHint: POOR_HINT,
      onAudioOnly: (on) => this.settings.setAudioOnly(on),
    });
    this.quality = new QualityMonitor(this.call, (s) => {
      this.hooks.connection = s;
      this.link.setLocal(s.level === 'poor');
    });
    this.expiry = new ExpiryBanner($('expiry'));
    this.bindControls();
    this.bindSignaling();
    // Narrowing to a phone layout: the open chat would cover the call, so it closes.
    const narrow = window.matchMedia('(max-width: 699px)');
    narrow.addEventListener('change', () => {
      if (narrow.matches && this.chat.isOpen && this.hooks.state !== 'waiting') this.chat.setOpen(false);
    });
  }

  /** DevicePicker options for the settings dialog: switches go to the live call. */
  deviceOptions() {
    const media = this.o.media;
    return {
      getStream: () => media.stream,
      setStream: (s) => { media.stream = s; this.call.setLocalStream(s); },
      onSwitch: (kind, track) => {
        this.call.replaceTrack(kind, track);
        const me = this.ui.tile('self');
        if (me && media.stream) me.setTracks(media.stream.getTracks());
        if (kind === 'video') me && me.setMuted('video', this.camOff);
      },
      onSpeaker: (id) => this.ui.setSink(id),
      small: () => media.small,
      onWaitingRoom: (on) => this.setWaitingRoom(on),
      onAudioOnlyToggle: (on) => this.link.setAudioOnly(on),
    };
  }

  start() {
    this.o.setState('joining');
    this.ui.setStatus('Joining…');
    this.hooks.timings.joinSent = performance.now();
    this.sig.connect();
  }

  bindSignaling() {
    const sig = this.sig;
    sig.on('waiting', (m) => this.onWaiting(m));
    sig.on('joined', (m) => this.onJoined(m));
    sig.on('waiting_room', (m) => this.onQueue(m.waiting || []));
    sig.on('chat', (m) => this.chat.receive(m));
    sig.on('offer', (m) => this.call.handleOffer(m));
    sig.on('answer', (m) => this.call.handleAnswer(m));
    sig.on('candidate', (m) => this.call.handleCandidate(m));
    sig.on('participant_joined', (m) => {
      if (!this.roster.upsert(m.participant)) return;
      this.peopleChanged();
      this.watchFirstFrames();
    });
    sig.on('participant_left', (m) => {
      this.roster.remove(m.participant_id);
      this.ui.removeTile(m.participant_id);
      this.ui.removeTile(`${m.participant_id}#screen`);
      this.peopleChanged();
    });
    sig.on('participant_reconnecting', (m) => {
      this.roster.setConnection(m.participant_id, 'reconnecting');
      const t = this.ui.tile(m.participant_id);
      if (t) t.setReconnecting(true);
    });
    sig.on('track_published', (m) => {
      // A peer that comes back (reload, resume) publishes new tracks: it is connected again.
      this.roster.published(m.participant_id, m.track || {});
      const t = this.ui.tile(m.participant_id);
      if (t) t.setReconnecting(false);
      this.refreshMedia();
    });
    sig.on('track_unpublished', (m) => {
      this.roster.unpublished(m.participant_id, m.track_id);
      this.streams.forget(m.track_id);
      this.refreshMedia();
    });
    sig.on('active_speakers', (m) => this.ui.setSpeakers(m.speakers || [], this.hooks.participantId));
    sig.on('connection_quality', (m) => this.link.update(m.updates || []));
    sig.on('stream_state', (m) => this.streams.update(m));
    sig.on('publish_layers', (m) => this.call.setPublishLayers(m));
    sig.on('mute', (m) => {
      this.roster.setMuted(m.participant_id, m.kind, m.muted);
      const t = this.ui.tile(m.participant_id);
      if (t) t.setMuted(m.kind, !!m.muted);
    });
    sig.on('error', (m) => this.onSoftError(m));
    sig.on('notification', () => {});
    sig.on('reconnecting', () => {
      this.o.setState('joining');
      this.ui.setStatus('Connection lost — reconnecting…');
      this.ui.setControlsEnabled(false);
    });
    sig.on('fatal', ({ code, message }) => { this.teardown(); this.o.onFail(code, message); });
    sig.on('closed', (m) => { this.teardown(); this.o.onClosed(m); });
  }

  onWaiting(msg) {
    this.hooks.participantId = msg.participant_id;
    this.hooks.personId = msg.person_id || null;
    this.session = msg.session || this.session;
    this.ui.clearMessage();
    this.ui.setStatus('');
    this.ui.showView('waiting');
    this.waitingView.show(msg, this.o.myName, this.o.info.therapist_name);
    const preview = $('waiting-preview');
    const stream = this.o.media.stream;
    preview.closest('.preview-wrap').classList.toggle('no-video', !(stream && stream.getVideoTracks().length));
    if (stream && preview.srcObject !== stream) { preview.srcObject = stream; preview.play().catch(() => {}); }
    this.chat.setRecipients([], 'The therapist');
    this.chat.setOpen(true);
    this.o.setState('waiting');
    this.o.onCallOpen();
  }

  onJoined(msg) {
    const h = this.hooks;
    h.participantId = msg.participant_id;
    h.personId = msg.person_id || null;
    h.resumed = !!msg.resumed;
    h.host = !!msg.host;
    h.timings.joined = performance.now();
    this.host = !!msg.host;
    this.session = msg.session || this.session || {};
    this.roster.reset(msg);
    this.ui.clearMessage();
    this.ui.setStatus('');
    this.ui.showView('call');
    this.ui.setControlsEnabled(true);
    this.showSelf();
    this.ui.clearRemoteTiles(new Set(this.roster.ids()));
    this.call.setLocalStream(this.o.media.stream);
    this.call.start(msg.ice_servers);
    if (this.micMuted) this.sig.send({ type: 'mute', kind: 'audio', muted: true });
    if (this.camOff) this.sig.send({ type: 'mute', kind: 'video', muted: true });
    this.queueView.root.hidden = !this.host || this.queue.length === 0;
    this.settings.setHost(this.host && !!this.o.accessToken, this.session.waiting_room);
    if (!this.chatOpenedOnce) {
      this.chatOpenedOnce = true;
      this.chat.setOpen(window.innerWidth >= WIDE);
    }
    this.peopleChanged();
    this.link.joined();
    this.videoView.joined();
    this.streams.joined();
    this.quality.start();
    this.expiry.watch(this.session.expires_at);
    this.o.setState('joined');
    this.o.onCallOpen();
    this.watchFirstFrames();
  }

  showSelf() {
    const stream = this.o.media.stream;
    const me = this.ui.upsertTile('self', this.o.myName || 'You', { self: true });
    me.setTracks(stream ? stream.getTracks() : []);
    me.setMuted('audio', this.micMuted);
    me.setMuted('video', this.camOff || !(stream && stream.getVideoTracks().length));
    if (this.share.active) this.ui.setLocalScreen(this.share.screen.track);
  }

  /** Roster changed: tiles, chat recipients, "waiting for the therapist". */
  peopleChanged() {
    const seen = this.hooks.timings.seenByParticipant;
    for (const pid of this.roster.ids()) if (!seen[pid]) seen[pid] = performance.now();
    this.refreshMedia();
    this.updateRecipients();
    this.updateNotice();
  }

  refreshMedia() {
    if (this.hooks.state !== 'joined' && this.hooks.state !== 'joining') return;
    const people = new Map(this.roster.ids().map((pid) => [pid, {
      name: this.roster.get(pid).display_name || 'Participant', hint: this.roster.hint(pid) }]));
    this.ui.renderRemote(this.roster.media(this.call.remoteTracks()), people);
    this.link.apply();
    this.videoView.refresh(this.ui.tiles);
    this.streams.apply();
    for (const pid of this.roster.ids()) {
      const p = this.roster.get(pid);
      const t = this.ui.tile(pid);
      if (!t) continue;
      t.setMuted('audio', !!p.audio_muted);
      t.setMuted('video', !!p.video_muted);
      t.setReconnecting(p.connection === 'reconnecting');
    }
  }

  updateNotice() {
    const therapist = this.o.info.therapist_name || 'the therapist';
    if (!this.host && !this.roster.hostPresent()) this.ui.setNotice(`Waiting for ${therapist} to join.`);
    else if (this.host && this.roster.ids().length === 0) this.ui.setNotice('Nobody else is here yet.');
    else this.ui.setNotice('');
  }

  updateRecipients() {
    const list = this.roster.ids().map((pid) => ({ id: pid, label: `${this.roster.get(pid).display_name} (private)` }));
    if (this.host) for (const w of this.queue) list.push({ id: w.participant_id, label: `${w.display_name} (waiting room)` });
    this.chat.setRecipients(list);
  }

  onQueue(waiting) {
    this.queue = waiting.slice();
    this.queueView.update(this.queue);
    this.updateRecipients();
  }

  admit(pid) {
    this.sendHost({ type: 'admit', participant_id: pid });
  }

  decline(pid) {
    this.sendHost({ type: 'decline', participant_id: pid });
  }

  sendHost(msg) {
    this.lastAction = 'host';
    return this.sig.send(msg);
  }

  async setWaitingRoom(on) {
    const id = this.o.info.session_id;
    // The call may have outlived the short access token: renew it first when signed in.
    const fresh = this.o.freshToken ? await this.o.freshToken() : null;
    if (fresh) this.o.accessToken = fresh;
    await api(`/api/sessions/${encodeURIComponent(id)}`, { method: 'PATCH', token: this.o.accessToken, body: { waiting_room: on } });
    if (this.session) this.session.waiting_room = on;
  }

  onSoftError(m) {
    if (m.fatal) return;
    if (CHAT_CODES.has(m.code) || (m.code === 'participant_not_found' && this.lastAction === 'chat')) {
      this.chat.refused(m.code);
      return;
    }
    console.warn('server refused a message:', m.code, m.message);
  }

  bindControls() {
    const ui = this.ui;
    ui.on('mic', () => {
      this.micMuted = !this.micMuted;
      this.call.setEnabled('audio', !this.micMuted);
      this.sig.send({ type: 'mute', kind: 'audio', muted: this.micMuted });
      ui.setControls(this);
      const me = ui.tile('self');
      if (me) me.setMuted('audio', this.micMuted);
    });
    ui.on('cam', () => {
      this.camOff = !this.camOff;
      this.call.setEnabled('video', !this.camOff);
      this.sig.send({ type: 'mute', kind: 'video', muted: this.camOff });
      ui.setControls(this);
      const me = ui.tile('self');
      if (me) me.setMuted('video', this.camOff);
    });
    ui.on('leave', () => this.sig.leave());
    ui.on('chat', () => this.chat.setOpen(!this.chat.isOpen, { focus: true }));
    ui.on('settings', () => this.settings.open());
    $('waiting-leave').addEventListener('click', () => this.sig.leave());
    ui.setControls(this);
  }

  teardown() {
    this.quality.stop();
    this.expiry.stop();
    this.call.stop(); // first: stopping the share below must not renegotiate any more
    this.share.stop();
    this.stopFrameWatch();
  }

  // Records when each remote participant's first video frame was decoded (for e2e timings).
  watchFirstFrames() {
    if (this.frameWatch) return;
    this.frameWatch = setInterval(async () => {
      if (this.hooks.state !== 'joined') return;
      const seen = this.hooks.timings.firstFrameByParticipant;
      const missing = this.roster.ids().filter((pid) => !seen[pid]);
      if (!missing.length) { this.stopFrameWatch(); return; }
      for (const s of await this.stats(missing)) {
        if (s.video.framesDecoded > 0 && !seen[s.participant_id]) {
          seen[s.participant_id] = performance.now();
          if (!this.hooks.timings.firstRemoteFrame) this.hooks.timings.firstRemoteFrame = seen[s.participant_id];
        }
      }
    }, 100);
  }

  stopFrameWatch() {
    clearInterval(this.frameWatch);
    this.frameWatch = null;
  }

  stats(pids = this.roster.ids()) {
    return this.call.stats(pids, (tid) => (this.roster.gone.has(tid) ? 'gone' : this.roster.sourceOf(tid)));
  }
}
