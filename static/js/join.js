// join.js — entry point of /join/<share_token>: the lobby (preview, devices, connection
// check, guest name), then hands over to room.js for the waiting room and the call.
// Why: owns the page's state and the window.theraroom test hooks; wires the lobby's
// modules (devices, precheck) and the Room together.

import { api, ApiError, messageFor, describeError, hasMessage } from './api.js';
import { CallUi } from './ui.js';
import { Room } from './room.js';
import { DevicePicker } from './devicepicker.js';
import { openMedia, mediaAvailable, preferHd } from './devices.js';
import { enableSimulcast } from './call.js';
import { runProbe, PROBE_ADVICE } from './precheck.js';
import { takeAccessToken, getAccessToken, clearAccessToken, tokenClaims } from './auth.js';
import { freshTokenFor } from './session.js';
import { el, $ } from './dom.js';

const params = new URLSearchParams(location.search);
const shareToken = readShareToken();
const inCallKey = () => `theraroom.incall.${shareToken}`;
// `?autojoin=1`, or a reload of a page that was in the call: go straight back in.
const autojoin = params.get('autojoin') === '1' || sessionStorage.getItem(inCallKey()) === '1';
const ui = new CallUi();

// Codes after which "try again" makes sense (a reload), rather than a dead end.
const RETRYABLE = new Set(['connection_lost', 'network', 'internal', 'join_timeout', 'media_failed', 'unauthorized',
  'waiting_room_full', 'rate_limited']);

let info = null;       // GET /api/join/<share_token>
let room = null;
const media = { stream: null, small: false };
let lobbyPicker = null;

/** Test hooks for e2e/ (and a readable picture of the page state while debugging). */
const hooks = {
  state: 'idle',
  participantId: null,
  personId: null,
  resumed: false,
  host: false,
  errorCode: null,
  connection: { level: 'good', loss: 0, rtt: null },
  precheckResult: null,
  timings: { joinSent: null, joined: null, firstRemoteFrame: null, seenByParticipant: {}, firstFrameByParticipant: {} },
  remoteParticipants() { return room ? room.roster.list() : []; },
  /** Per remote participant: {participant_id, video, screen, audio} receive counters. */
  async stats() { return room ? room.stats() : []; },
  /** Hosts: the waiting room queue as last received. */
  waiting() { return room ? room.queueView.snapshot() : []; },
  admit(pid) { return room ? room.admit(pid) : false; },
  decline(pid) { return room ? room.decline(pid) : false; },
  /** Send a chat message like the panel does (to: a participant id, or none for everyone). */
  sendChat(text, to) { return room ? room.chat.sendText(text, to) : { ok: false, error: 'not_connected' }; },
  chatLog() { return room ? room.chat.log() : []; },
  /** The camera's encodings as sent now: [{rid, active}] (one without rid: no simulcast). */
  publishedLayers() { return room ? room.call.cameraLayers() : []; },
  /** Local UDP port of the subscriber connection's selected pair (e2e traffic shaping). */
  async subscriberPort() { return room ? room.call.subscriberPort() : null; },
  /** Each connection's selected pair: {publisher, subscriber} → {protocol, candidateType, port}. */
  async transports() { return room ? room.call.selectedTransports() : {}; },
  /** Run the connectivity check now (as the lobby's button does); resolves to its result. */
  precheck() { return checkConnection(); },
  /** Test only: the camera keeps its resolution under CPU load (frame sizes then tell layers apart). */
  _maintainResolution() { return room ? room.call.maintainCameraResolution() : false; },
  /** Test only: close the WebSocket as if the network dropped it (reconnect must follow). */
  _dropSocket() {
    if (room && room.sig.ws) room.sig.ws.close();
  },
};
window.theraroom = hooks;

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
  if (code === 'unauthorized') {
    // A stale token: forget it so that reloading the link starts over cleanly.
    if (getAccessToken()) clearAccessToken(); else forgetGuest();
  }
  const text = hasMessage(code) ? messageFor(code) : (message || messageFor(code));
  const action = RETRYABLE.has(code) ? { label: 'Try again', onClick: () => location.reload() } : null;
  ui.showMessage(text, 'error', action);
  ui.setStatus('');
  endMedia();
  ui.showView('none');
}

function onClosed(m) {
  sessionStorage.removeItem(inCallKey());
  endMedia();
  setState('ended');
  ui.showView('none');
  ui.setStatus('');
  if (m.type === 'session_ended') ui.showMessage(messageFor('session_ended'), 'info');
  else if (m.type === 'removed') ui.showMessage(messageFor('removed'), 'info');
  else ui.showMessage('You left the session.', 'info', { label: 'Rejoin', onClick: () => location.reload() });
}

function endMedia() {
  if (room) room.teardown();
  if (lobbyPicker) lobbyPicker.close();
  if (media.stream) for (const t of media.stream.getTracks()) t.stop();
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

/**
 * The token to join (or probe) with: the signed-in user's, the guest token kept from an
 * earlier visit, or a new guest token for the name typed in. null when the name is not
 * acceptable (the form says why) or the page failed.
 */
async function ensureToken() {
  const userToken = getAccessToken();
  if (userToken) return { token: userToken, isGuest: false };
  const kept = loadGuest();
  if (kept) return { token: kept.token, isGuest: true };
  const nameInput = $('guest-name');
  const err = validateName(nameInput.value);
  $('name-error').textContent = err;
  if (err) { nameInput.focus(); return null; }
  const name = nameInput.value.trim();
  try {
    const g = await api(`/api/join/${encodeURIComponent(shareToken)}/guest`, { method: 'POST', body: { name } });
    saveGuest({ token: g.token, expires_at: g.expires_at, session_id: g.session_id || info.session_id, name });
    $('guest-form').hidden = true;
    return { token: g.token, isGuest: true };
  } catch (e) {
    if (e.code === 'bad_request' || e.status === 400 || e.status === 422) {
      $('name-error').textContent = e.message || 'Please check your name.';
      return null;
    }
    fail(e.status === 404 ? 'session_not_found' : e.code, describeError(e));
    return null;
  }
}

function myName(isGuest) {
  if (isGuest) return (loadGuest() || {}).name || 'You';
  const c = tokenClaims(getAccessToken()) || {};
  return c.name || c.display_name || 'You';
}

// ---------- lobby ----------

function describeDevices(stream) {
  if (!mediaAvailable()) return '';
  if (!stream) return 'Camera and microphone are not available. Others will not see or hear you.';
  if (!stream.getVideoTracks().length) return 'Camera not available. Others will only hear you.';
  if (!stream.getAudioTracks().length) return 'Microphone not available. Others will only see you.';
  return '';
}

function showPreview(stream) {
  const preview = $('preview');
  const hasVideo = !!(stream && stream.getVideoTracks().length);
  preview.closest('.preview-wrap').classList.toggle('no-video', !hasVideo);
  if (hasVideo) {
    preview.srcObject = null;
    preview.srcObject = stream;
    preview.play().catch(() => {});
  }
  $('preview-note').textContent = describeDevices(stream);
}

async function startLobbyMedia() {
  if (!mediaAvailable()) {
    $('insecure').hidden = false;
    $('devices-box').hidden = true;
    $('preview').closest('.preview-wrap').hidden = true;
    return null;
  }
  media.stream = await openMedia({ small: media.small });
  showPreview(media.stream);
  lobbyPicker = new DevicePicker($('lobby-devices'), {
    prefix: 'lobby',
    getStream: () => media.stream,
    setStream: (s) => { media.stream = s; },
    onSwitch: () => showPreview(media.stream),
    onSpeaker: (id) => ui.setSink(id),
    small: () => media.small,
  });
  await lobbyPicker.refresh();
  return media.stream;
}

/** Run the connectivity check and show its result in the lobby. */
async function checkConnection() {
  const btn = $('precheck-btn');
  const out = $('precheck-result');
  const advice = $('precheck-advice');
  btn.disabled = true;
  advice.hidden = true;
  out.className = 'precheck-result';
  out.textContent = 'Checking your connection…';
  try {
    const t = await ensureToken();
    if (!t) {
      out.textContent = 'Enter your name first, then check your connection.';
      return { ok: false, state: 'no_token' };
    }
    const audio = media.stream && media.stream.getAudioTracks()[0];
    const r = await runProbe({ sessionId: info.session_id, token: t.token, audioTrack: audio || null });
    hooks.precheckResult = r;
    showProbe(r);
    return r;
  } finally {
    btn.disabled = false;
  }
}

function showProbe(r) {
  const out = $('precheck-result');
  const advice = $('precheck-advice');
  out.className = `precheck-result ${r.ok ? 'good' : 'bad'}`;
  if (r.ok) {
    out.textContent = r.relay
      ? 'Your connection works (through the practice\'s relay server).'
      : 'Your connection works. Video and sound can reach the session.';
    return;
  }
  if (r.state === 'refused') {
    out.textContent = messageFor(r.code, r.message);
    return;
  }
  out.textContent = 'Video and sound could not get through from this network.';
  advice.replaceChildren(...PROBE_ADVICE.map((t) => el('li', { text: t })));
  advice.hidden = false;
}

async function loadInfo() {
  try {
    info = await api(`/api/join/${encodeURIComponent(shareToken)}`);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) fail('session_not_found');
    // A share link answers `removed` once the therapist withdrew it (after removing a guest).
    else if (e instanceof ApiError && e.code === 'removed') fail('link_withdrawn');
    else fail(e.code, describeError(e));
    return false;
  }
}

async function main() {
  ui.showView('loading');
  ui.setStatus('Loading…');
  takeAccessToken(); // moves #access_token=… into sessionStorage, strips the fragment
  if (!shareToken) return fail('session_not_found');
  if (!(await loadInfo())) return;
  ui.setHeader(info.session_name, info.therapist_name);
  media.small = params.get('small') === '1' || (Number(info.max_participants) > 2 && params.get('small') !== '0');
  preferHd(params.get('hd') === '1');
  enableSimulcast(params.get('simulcast') !== '0');
  const previewPromise = startLobbyMedia();

  const guest = getAccessToken() ? null : loadGuest();
  const needName = !getAccessToken() && !guest;
  const nameInput = $('guest-name');
  if (params.get('name')) nameInput.value = params.get('name');
  $('guest-form').hidden = !needName;
  ui.setStatus('');
  ui.showView('lobby');
  if (guest) $('lobby-note').textContent = `Welcome back, ${guest.name || 'guest'}.`;

  let going = false;
  const go = async () => {
    if (going || room) return;
    going = true;
    $('join-btn').disabled = true;
    try {
      const t = await ensureToken();
      if (!t) return;
      await previewPromise;
      if (hooks.state === 'error') return;
      if (lobbyPicker) lobbyPicker.pause();
      enterRoom(t);
    } finally {
      going = false;
      if (!room) $('join-btn').disabled = false;
    }
  };
  $('guest-form').addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
  $('join-btn').addEventListener('click', (ev) => { ev.preventDefault(); go(); });
  $('precheck-btn').addEventListener('click', () => { checkConnection(); });

  await previewPromise;
  if (autojoin && (!needName || !validateName(nameInput.value))) go();
  else (needName ? nameInput : $('join-btn')).focus();
}

/**
 * For a signed-in person: renew the short access token from the refresh cookie before
 * every (re)connect, so a call that outlives the token still resumes (session.js).
 */
function freshJoinToken(token) {
  const sub = (tokenClaims(token) || {}).sub;
  return sub ? () => freshTokenFor(sub) : null;
}

function enterRoom({ token, isGuest }) {
  room = new Room({
    info, token, isGuest, media, ui, hooks, setState,
    accessToken: isGuest ? null : getAccessToken(),
    freshToken: isGuest ? null : freshJoinToken(token),
    myName: myName(isGuest),
    onFail: fail,
    onClosed,
    onCallOpen: () => sessionStorage.setItem(inCallKey(), '1'),
  });
  room.start();
}

main().catch((e) => {
  console.error(e);
  fail('internal', String(e && e.message));
});
