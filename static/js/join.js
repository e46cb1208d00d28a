// join.js — entry point of /join/<share_token>: lobby (preview, guest name), then the call.
// Why: wires api.js (REST), signaling.js (protocol), call.js (media) and ui.js (DOM)
// together and owns the page's state, including the window.theraroom test hooks.

import { api, ApiError, messageFor, describeError, hasMessage } from './api.js';
import { Signaling } from './signaling.js';
import { Call } from './call.js';
import { CallUi } from './ui.js';
import { takeAccessToken, getAccessToken, clearAccessToken } from './auth.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const shareToken = readShareToken();
const inCallKey = () => `theraroom.incall.${shareToken}`;
// `?autojoin=1`, or a reload of a page that was in the call: go straight back in.
const autojoin = params.get('autojoin') === '1' || sessionStorage.getItem(inCallKey()) === '1';
const ui = new CallUi();

// Codes after which "try again" makes sense (a reload), rather than a dead end.
const RETRYABLE = new Set(['connection_lost', 'network', 'internal', 'join_timeout', 'media_failed', 'unauthorized']);

/** Test hooks for e2e/ (and a readable picture of the page state while debugging). */
const hooks = {
  state: 'idle',
  participantId: null,
  resumed: false,
  errorCode: null,
  timings: { joinSent: null, joined: null, firstRemoteFrame: null, seenByParticipant: {}, firstFrameByParticipant: {} },
  remoteParticipants() {
    return [...participants.values()].map((p) => ({ participant_id: p.participant_id, display_name: p.display_name }));
  },
  async stats() {
    return call ? call.stats([...participants.keys()]) : [];
  },
  /** Test only: close the WebSocket as if the network dropped it (reconnect must follow). */
  _dropSocket() {
    if (sig && sig.ws) sig.ws.close();
  },
};
window.theraroom = hooks;

const participants = new Map(); // participant_id → Participant (everyone else)
let info = null;       // GET /api/join/<share_token>
let localStream = null;
let sig = null;
let call = null;
let micMuted = false;
let camOff = false;

function readShareToken() {
  const m = location.pathname.match(/\/join\/([^/]+)\/?$/);
  if (m) return decodeURIComponent(m[1]);
  return params.get('share') || ''; // static/join.html opened directly (development)
}

function setState(s) {
  hooks.state = s;
  document.body.dataset.state = s;
}

function fail(code, message) {
  sessionStorage.removeItem(inCallKey());
  setState('error');
  hooks.errorCode = code;
  const text = hasMessage(code) ? messageFor(code) : (message || messageFor(code));
  const action = RETRYABLE.has(code) ? { label: 'Try again', onClick: () => location.reload() } : null;
  ui.showMessage(text, 'error', action);
  ui.setStatus('');
  endMedia();
  ui.showView('none');
}

function endMedia() {
  if (call) call.stop();
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  stopFrameWatch();
}

// ---------- guest token storage: a reload resumes as the same participant ----------

const guestKey = () => `theraroom.guest.${shareToken}`;

function loadGuest() {
  try {
    const g = JSON.parse(sessionStorage.getItem(guestKey()) || 'null');
    if (!g || !g.token) return null;
    if (info && g.session_id && g.session_id !== info.session_id) return null;
    if (g.expires_at && Date.parse(g.expires_at) <= Date.now()) return null;
    return g;
  } catch {
    return null;
  }
}

function saveGuest(g) {
  sessionStorage.setItem(guestKey(), JSON.stringify(g));
}

function forgetGuest() {
  sessionStorage.removeItem(guestKey());
}

/** Returns an error sentence, or '' when the name is acceptable. */
export function validateName(raw) {
  const name = String(raw || '').trim();
  if (!name) return 'Please enter your name.';
  if ([...name].length > 80) return 'Please use at most 80 characters.';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'Please use only printable characters.';
  return '';
}

// ---------- lobby ----------

async function startPreview(small) {
  const video = small ? { width: { ideal: 320 }, height: { ideal: 240 } } : { width: { ideal: 640 }, height: { ideal: 480 } };
  const attempts = [{ audio: true, video }, { audio: true, video: false }, { audio: false, video }];
  for (const c of attempts) {
    try {
      return await navigator.mediaDevices.getUserMedia(c);
    } catch (e) {
      console.warn('getUserMedia failed', JSON.stringify(c), e && e.name);
    }
  }
  return null;
}

function describeDevices(stream) {
  if (!stream) return 'Camera and microphone are not available. Others will not see or hear you.';
  if (!stream.getVideoTracks().length) return 'Camera not available. Others will only hear you.';
  if (!stream.getAudioTracks().length) return 'Microphone not available. Others will only see you.';
  return '';
}

async function main() {
  ui.showView('loading');
  ui.setStatus('Loading…');
  takeAccessToken(); // moves #access_token=… into sessionStorage, strips the fragment
  if (!shareToken) return fail('session_not_found');

  try {
    info = await api(`/api/join/${encodeURIComponent(shareToken)}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return fail('session_not_found');
    // A share link answers `removed` once the therapist withdrew it (after removing a guest).
    if (e instanceof ApiError && e.code === 'removed') return fail('link_withdrawn');
    return fail(e.code, describeError(e));
  }
  ui.setHeader(info.session_name, info.therapist_name);

  const small = params.get('small') === '1' || Number(info.max_participants) > 2;
  const previewPromise = startPreview(small).then((s) => {
    localStream = s;
    const preview = $('preview');
    if (s && s.getVideoTracks().length) {
      preview.srcObject = s;
      preview.play().catch(() => {});
    } else {
      preview.closest('.preview-wrap').classList.add('no-video');
    }
    $('preview-note').textContent = describeDevices(s);
    return s;
  });

  const userToken = getAccessToken();
  const guest = userToken ? null : loadGuest();
  const needName = !userToken && !guest;
  const form = $('guest-form');
  const nameInput = $('guest-name');
  if (params.get('name')) nameInput.value = params.get('name');
  form.hidden = !needName;

  ui.setStatus('');
  ui.showView('lobby');
  if (guest) $('lobby-note').textContent = `Welcome back, ${guest.name || 'guest'}.`;

  let going = false;
  const go = async () => {
    if (going) return;
    going = true;
    try { await goOnce(); } finally { going = hooks.state !== 'idle'; }
  };
  const goOnce = async () => {
    let token = userToken || (guest && guest.token);
    if (!token) {
      const err = validateName(nameInput.value);
      $('name-error').textContent = err;
      if (err) { nameInput.focus(); return; }
      $('join-btn').disabled = true;
      try {
        const name = nameInput.value.trim();
        const g = await api(`/api/join/${encodeURIComponent(shareToken)}/guest`, { method: 'POST', body: { name } });
        saveGuest({ token: g.token, expires_at: g.expires_at, session_id: g.session_id || info.session_id, name });
        token = g.token;
      } catch (e) {
        $('join-btn').disabled = false;
        if (e.code === 'bad_request' || e.status === 400 || e.status === 422) {
          $('name-error').textContent = e.message || 'Please check your name.';
          return;
        }
        return fail(e.status === 404 ? 'session_not_found' : e.code, describeError(e));
      }
    }
    $('join-btn').disabled = true;
    await previewPromise;
    startCall(token, !userToken);
  };

  form.addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
  $('join-btn').addEventListener('click', (ev) => { ev.preventDefault(); go(); });

  if (autojoin && (!needName || !validateName(nameInput.value))) {
    await previewPromise;
    go();
  } else {
    await previewPromise;
    (needName ? nameInput : $('join-btn')).focus();
  }
}

// ---------- the call ----------

function startCall(token, isGuest) {
  setState('joining');
  ui.setStatus('Joining…');
  sig = new Signaling({ sessionId: info.session_id, token });
  call = new Call({ signaling: sig, onRemoteTrack: onRemoteTrack });
  call.setLocalStream(localStream);

  sig.on('joined', (msg) => {
    hooks.participantId = msg.participant_id;
    hooks.resumed = !!msg.resumed;
    hooks.timings.joined = performance.now();
    participants.clear();
    for (const p of msg.participants || []) if (p.participant_id !== msg.participant_id) participants.set(p.participant_id, p);
    ui.clearMessage();
    ui.setStatus('');
    ui.showView('call');
    ui.setControlsEnabled(true);
    const me = ui.upsertTile('self', isGuest ? (loadGuest() || {}).name || 'You' : 'You', { self: true });
    if (localStream) me.setStream(localStream);
    me.setMuted('audio', micMuted);
    me.setMuted('video', camOff || !(localStream && localStream.getVideoTracks().length));
    ui.clearRemoteTiles(new Set(participants.keys()));
    for (const p of participants.values()) showParticipant(p);
    call.start(msg.ice_servers);
    if (micMuted) sig.send({ type: 'mute', kind: 'audio', muted: true });
    if (camOff) sig.send({ type: 'mute', kind: 'video', muted: true });
    setState('joined');
    sessionStorage.setItem(inCallKey(), '1');
    watchFirstFrames();
  });
  sig.on('offer', (m) => call.handleOffer(m));
  sig.on('answer', (m) => call.handleAnswer(m));
  sig.on('candidate', (m) => call.handleCandidate(m));
  sig.on('participant_joined', (m) => {
    const p = m.participant;
    if (!p || p.participant_id === hooks.participantId) return; // never list ourselves
    participants.set(p.participant_id, p);
    showParticipant(p);
    watchFirstFrames();
  });
  sig.on('participant_left', (m) => {
    participants.delete(m.participant_id);
    ui.removeTile(m.participant_id);
  });
  sig.on('participant_reconnecting', (m) => {
    const p = participants.get(m.participant_id);
    if (p) p.connection = 'reconnecting';
    const t = ui.tile(m.participant_id);
    if (t) t.setReconnecting(true);
  });
  sig.on('track_published', (m) => {
    // A peer that comes back (reload, resume) publishes new tracks: it is connected again.
  // (PROTOCOL.md has no explicit "reconnected" message; a resume shows up this way.)
    const p = participants.get(m.participant_id);
    if (p) p.connection = 'connected';
    const t = ui.tile(m.participant_id);
    if (t) t.setReconnecting(false);
  });
  sig.on('mute', (m) => {
    const p = participants.get(m.participant_id);
    if (p) p[m.kind === 'audio' ? 'audio_muted' : 'video_muted'] = !!m.muted;
    const t = ui.tile(m.participant_id);
    if (t) t.setMuted(m.kind, !!m.muted);
  });
  sig.on('error', (m) => {
    if (!m.fatal) console.warn('server refused a message:', m.code, m.message);
  });
  sig.on('notification', () => {});
  sig.on('reconnecting', () => {
    setState('joining');
    ui.setStatus('Connection lost — reconnecting…');
    ui.setControlsEnabled(false);
  });
  sig.on('fatal', ({ code, message }) => {
    if (code === 'unauthorized') {
      // A stale token: forget it so that reloading the link starts over cleanly.
      if (isGuest) forgetGuest(); else clearAccessToken();
    }
    fail(code, message);
  });
  sig.on('closed', (m) => {
    sessionStorage.removeItem(inCallKey());
    endMedia();
    setState('ended');
    ui.showView('none');
    ui.setStatus('');
    if (m.type === 'session_ended') ui.showMessage(messageFor('session_ended'), 'info');
    else if (m.type === 'removed') ui.showMessage(messageFor('removed'), 'info');
    else ui.showMessage('You left the session.', 'info', { label: 'Rejoin', onClick: () => location.reload() });
  });

  hooks.timings.joinSent = performance.now();
  sig.connect();
}

function showParticipant(p) {
  const seen = hooks.timings.seenByParticipant;
  if (!seen[p.participant_id]) seen[p.participant_id] = performance.now();
  const t = ui.upsertTile(p.participant_id, p.display_name || 'Participant');
  t.setName(p.display_name || 'Participant');
  t.setMuted('audio', !!p.audio_muted);
  t.setMuted('video', !!p.video_muted);
  t.setReconnecting(p.connection === 'reconnecting');
}

function onRemoteTrack(pid, stream, track) {
  console.debug('remote track', track.kind, 'from', pid);
  if (pid === hooks.participantId) return; // never expected: the server does not echo us
  const known = participants.get(pid);
  ui.setRemoteStream(pid, stream);
  if (known) ui.tile(pid).setName(known.display_name);
}

// Records when each remote participant's first video frame was decoded (for e2e timings).
let frameWatch = null;
function watchFirstFrames() {
  if (frameWatch) return;
  frameWatch = setInterval(async () => {
    if (!call || hooks.state !== 'joined') return;
    const seen = hooks.timings.firstFrameByParticipant;
    const missing = [...participants.keys()].filter((pid) => !seen[pid]);
    if (!missing.length) { stopFrameWatch(); return; }
    for (const s of await call.stats(missing)) {
      if (s.video.framesDecoded > 0 && !seen[s.participant_id]) {
        seen[s.participant_id] = performance.now();
        if (!hooks.timings.firstRemoteFrame) hooks.timings.firstRemoteFrame = seen[s.participant_id];
      }
    }
  }, 100);
}
function stopFrameWatch() {
  clearInterval(frameWatch);
  frameWatch = null;
}

// ---------- controls ----------

ui.on('mic', () => {
  micMuted = !micMuted;
  if (call) call.setEnabled('audio', !micMuted);
  if (sig) sig.send({ type: 'mute', kind: 'audio', muted: micMuted });
  ui.setControls({ micMuted, camOff });
  const me = ui.tile('self');
  if (me) me.setMuted('audio', micMuted);
});
ui.on('cam', () => {
  camOff = !camOff;
  if (call) call.setEnabled('video', !camOff);
  if (sig) sig.send({ type: 'mute', kind: 'video', muted: camOff });
  ui.setControls({ micMuted, camOff });
  const me = ui.tile('self');
  if (me) me.setMuted('video', camOff);
});
ui.on('leave', () => {
  if (sig) sig.leave();
});
ui.setControls({ micMuted, camOff });

main().catch((e) => {
  console.error(e);
  fail('internal', String(e && e.message));
});
