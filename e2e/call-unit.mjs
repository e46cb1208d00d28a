// call-unit.mjs — exercises static/js/call.js in one Chromium page against a bare
// RTCPeerConnection standing in for the server's two endpoints (no SFU logic: it just
// answers the publisher offer and offers a copy of the same camera/mic back on the
// subscriber connection under stream id "pid-remote"). Checks offer/answer, candidate
// queueing, ontrack → participant mapping and stats(). Serve static/ with stub-server.mjs.
// Usage: BASE_URL=http://127.0.0.1:8099 node call-unit.mjs
import { launch, newPage, dumpLogs } from './lib.mjs';

const base = process.env.BASE_URL || 'http://127.0.0.1:8099';
const browser = await launch();
const p = await newPage(browser, 'unit');
await p.page.goto(`${base}/`);
let ok = false;
try {
  const r = await p.page.evaluate(async () => {
    const { Call } = await import('/js/call.js');
    const sent = [];
    const srv = { pub: new RTCPeerConnection(), sub: new RTCPeerConnection() };
    const delayed = []; // server candidates held back, then sent early to test queuing
    let call;
    const sig = { send: (m) => { sent.push(m); onClient(m); return true; } };
    const remoteTracks = []; // every (participant, kind) ever received, from call.remoteTracks()
    const seen = new Set();
    call = new Call({ signaling: sig, onRemoteChange: () => {
      for (const r of call.remoteTracks()) {
        if (!seen.has(r.pid + r.kind)) { seen.add(r.pid + r.kind); remoteTracks.push([r.pid, r.pid, r.kind]); }
      }
    } });
    const local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
    call.setLocalStream(local);

    // server side candidates go to the client immediately (before descriptions): must be queued
    srv.pub.onicecandidate = (e) => call.handleCandidate({ pc: 'publisher', candidate: e.candidate && e.candidate.toJSON() });
    srv.sub.onicecandidate = (e) => call.handleCandidate({ pc: 'subscriber', candidate: e.candidate && e.candidate.toJSON() });
    const gotTracks = [];
    let ms = null;
    srv.pub.ontrack = (e) => gotTracks.push(e.track);

    async function onClient(m) {
      if (m.type === 'candidate') {
        const pc = m.pc === 'publisher' ? srv.pub : srv.sub;
        if (m.candidate && m.candidate.candidate) await pc.addIceCandidate(m.candidate).catch(() => {});
      } else if (m.type === 'offer') {
        await srv.pub.setRemoteDescription({ type: 'offer', sdp: m.sdp });
        const a = await srv.pub.createAnswer();
        await srv.pub.setLocalDescription(a);
        setTimeout(() => call.handleAnswer({ pc: 'publisher', sdp: a.sdp }), 200);
        setTimeout(offerSubscriber, 500);
      } else if (m.type === 'answer') {
        await srv.sub.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      }
    }
    async function offerSubscriber() {
      // Chrome does not pull audio from a remote track without a sink, so the stand-in
      // sends clones of the local camera/mic rather than what it received.
      if (gotTracks.length !== 2) throw new Error('publisher tracks did not arrive: ' + gotTracks.length);
      ms = new MediaStream(local.getTracks().map((t) => t.clone()));
      for (const t of ms.getTracks()) srv.sub.addTransceiver(t, { direction: 'sendonly', streams: [ms] });
      const o = await srv.sub.createOffer();
      await srv.sub.setLocalDescription(o);
      call.handleOffer({ pc: 'subscriber', sdp: o.sdp.split(ms.id).join('pid-remote') });
    }

    call.start([{ urls: [] }, { urls: 'stun:127.0.0.1:9' }]);
    const wait = (ms) => new Promise((r) => setTimeout(r, ms));
    let s1;
    for (let i = 0; i < 100; i++) {
      await wait(200);
      s1 = await call.stats(['pid-remote', 'pid-absent']);
      if (s1[0].video.framesDecoded > 0 && s1[0].audio.bytesReceived > 0) break;
    }
    await wait(1000);
    const s2 = await call.stats(['pid-remote']);
    const states = [call.pcs.publisher.connectionState, call.pcs.subscriber.connectionState];
    // renegotiation: the "server" stops the video track (as after a peer's reload)
    srv.sub.getTransceivers().find((t) => t.receiver.track.kind === 'video').stop();
    const o2 = await srv.sub.createOffer();
    await srv.sub.setLocalDescription(o2);
    await call.handleOffer({ pc: 'subscriber', sdp: o2.sdp.split(ms.id).join('pid-remote') });
    await wait(500);
    const s3 = await call.stats(['pid-remote']);
    call.stop();
    return { s1, s2, s3, remoteTracks, states, sentTypes: [...new Set(sent.map((m) => m.type + ':' + m.pc))] };
  });
  console.log(JSON.stringify(r, null, 1));
  const v1 = r.s1[0].video.framesDecoded, v2 = r.s2[0].video.framesDecoded;
  ok = v2 > v1 && v1 > 0 && r.s2[0].audio.bytesReceived > 0 && r.s1[1].participant_id === 'pid-absent' &&
    r.remoteTracks.length === 2 && r.s3[0].video.framesDecoded === 0 && r.s3[0].audio.bytesReceived > 0 && r.remoteTracks.every(([pid, sid]) => pid === 'pid-remote' && sid === 'pid-remote');
} catch (e) {
  console.error(e);
}
if (!ok) dumpLogs();
await browser.close();
console.log(ok ? 'call-unit: ok' : 'call-unit: FAILED');
process.exit(ok ? 0 : 1);
