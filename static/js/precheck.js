// precheck.js — the pre-call connectivity check (signaling/PROTOCOL.md, "Connectivity
// check"): can media reach the media server from this network?
// Why: a person whose network blocks UDP should learn that in the lobby, with advice,
// rather than sit in a call that never shows video.

import { rtcUrl } from './signaling.js';
import { normalizeIceServers, selectedPair } from './call.js';

/** How long the media path may take to connect before the check says it failed. */
export const PROBE_TIMEOUT_MS = 8000;

/** What to tell the person when the check fails. */
export const PROBE_ADVICE = [
  'Your network may be blocking the kind of connection video calls use (UDP).',
  'Ask the practice whether they have a TURN server for networks like yours.',
  'Or try another network: switch from Wi-Fi to mobile data, or the other way round.',
];

/**
 * Run one check. Resolves (never rejects) to
 * {ok, state, ms, relay, code?, message?}: ok when the test connection reached
 * `connected` within the timeout; relay when it connected through a TURN relay.
 * @param {{sessionId: string, token: string, timeoutMs?: number, audioTrack?: MediaStreamTrack}} o
 */
export function runProbe({ sessionId, token, timeoutMs = PROBE_TIMEOUT_MS, audioTrack = null }) {
  const started = performance.now();
  return new Promise((resolve) => {
    let ws = null;
    let pc = null;
    let track = null;
    let done = false;
    let pending = [];
    const finish = async (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const relay = result.ok && pc ? await usesRelay(pc) : false;
      try { if (pc) pc.close(); } catch {}
      try { if (ws) ws.close(1000); } catch {}
      if (track) track.stop();
      resolve({ ms: Math.round(performance.now() - started), relay, ...result });
    };
    const timer = setTimeout(() => finish({ ok: false, state: pc ? pc.connectionState : 'no_answer' }), timeoutMs);
    const send = (m) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); };

    const start = async (iceServers) => {
      try {
        pc = new RTCPeerConnection({ iceServers: normalizeIceServers(iceServers), bundlePolicy: 'max-bundle' });
      } catch {
        pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      }
      pc.onicecandidate = (ev) => send({ type: 'candidate', pc: 'publisher', candidate: ev.candidate ? ev.candidate.toJSON() : null });
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected') finish({ ok: true, state: 'connected' });
        else if (pc.connectionState === 'failed') finish({ ok: false, state: 'failed' });
      };
      track = audioTrack ? audioTrack.clone() : silentTrack();
      pc.addTransceiver(track, { direction: 'sendonly' });
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      send({ type: 'offer', pc: 'publisher', sdp: pc.localDescription.sdp });
    };

    const onMessage = async (msg) => {
      if (msg.type === 'probe_ready') return start(msg.ice_servers);
      if (msg.type === 'answer' && pc) {
        await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        for (const c of pending) await addCandidate(pc, c);
        pending = [];
      } else if (msg.type === 'candidate' && pc) {
        if (pc.remoteDescription) await addCandidate(pc, msg.candidate);
        else pending.push(msg.candidate);
      } else if (msg.type === 'error' && msg.fatal) {
        finish({ ok: false, state: 'refused', code: msg.code, message: msg.message });
      }
    };

    try {
      ws = new WebSocket(rtcUrl());
    } catch {
      finish({ ok: false, state: 'no_socket' });
      return;
    }
    ws.onopen = () => send({ type: 'probe', protocol: 1, token, session_id: sessionId });
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      onMessage(msg).catch((e) => finish({ ok: false, state: 'error', message: String(e && e.message) }));
    };
    ws.onclose = () => { if (!done && !pc) finish({ ok: false, state: 'no_socket' }); };
  });
}

async function addCandidate(pc, c) {
  try {
    if (!c || !c.candidate) await pc.addIceCandidate();
    else await pc.addIceCandidate(c);
  } catch (e) {
    console.warn('probe: addIceCandidate failed', e && e.message);
  }
}

/** Whether the connected candidate pair goes through a TURN relay. */
async function usesRelay(pc) {
  try {
    const report = await pc.getStats();
    const pair = selectedPair(report);
    const local = pair && report.get(pair.localCandidateId);
    return !!local && local.candidateType === 'relay';
  } catch {
    return false;
  }
}

/** A silent audio track, for when no microphone is available. */
function silentTrack() {
  const ctx = new AudioContext();
  const dest = ctx.createMediaStreamDestination();
  ctx.createOscillator().connect(dest); // never started: silence
  return dest.stream.getAudioTracks()[0];
}
