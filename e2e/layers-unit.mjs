// layers-unit.mjs — exercises the browser side of simulcast in one Chromium page, no
// server: call.js sends a 480p camera as three layers (rid q/h/f, VP8 first) and a 240p
// one as a single encoding, `publish_layers` switches encodings by rid (also after
// replaceTrack, by the announced track id), videoview.js reports tile sizes in device
// pixels without flooding, and tile.js shows `stream_state` paused. A bare
// RTCPeerConnection answers the publisher offer (its answer gets the a=rid/a=simulcast
// lines a simulcast-capable server would add). Serve static/ with stub-server.mjs.
// Usage: BASE_URL=http://127.0.0.1:8099 node layers-unit.mjs
import { launch, newPage, dumpLogs } from './lib.mjs';

const base = process.env.BASE_URL || 'http://127.0.0.1:8099';
const browser = await launch();
const p = await newPage(browser, 'layers', { viewport: { width: 800, height: 600 } });
await p.page.goto(`${base}/`);
const failures = [];
const check = (cond, what) => { if (!cond) failures.push(what); };
try {
  const r = await p.page.evaluate(async () => {
    const { Call, enableSimulcast } = await import('/js/call.js');
    enableSimulcast(true);
    const { VideoView } = await import('/js/videoview.js');
    const { Tile } = await import('/js/tile.js');
    const wait = (ms) => new Promise((res) => setTimeout(res, ms));

    /** A Call publishing `size` video against a stand-in answerer; resolves once answered. */
    async function publish(size) {
      const srv = new RTCPeerConnection();
      const sent = [];
      let answered;
      const done = new Promise((res) => { answered = res; });
      let call;
      const sig = { send: (m) => { sent.push(m); onClient(m); return true; } };
      async function onClient(m) {
        if (m.type !== 'offer') return;
        await srv.setRemoteDescription({ type: 'offer', sdp: m.sdp });
        const a = await srv.createAnswer();
        await srv.setLocalDescription(a);
        await call.handleAnswer({ pc: 'publisher', sdp: withSimulcast(m.sdp, a.sdp) });
        answered();
      }
      call = new Call({ signaling: sig });
      const local = await navigator.mediaDevices.getUserMedia({ audio: true, video: size });
      call.setLocalStream(local);
      call.start([]);
      await done;
      return { call, local, sent, srv };
    }

    /** The answer a simulcast server gives: recv for every rid the offer sends. */
    function withSimulcast(offer, answer) {
      const rids = [...offer.matchAll(/a=rid:(\S+) send/g)].map((m) => m[1]);
      if (!rids.length) return answer;
      const lines = rids.map((rid) => `a=rid:${rid} recv`).join('\r\n') + `\r\na=simulcast:recv ${rids.join(';')}\r\n`;
      const sections = answer.split(/(?=\r\nm=)/);
      return sections.map((s) => (s.startsWith('\r\nm=video') ? s.replace(/\r\n$/, '') + '\r\n' + lines.replace(/\r\n$/, '') : s)).join('');
    }

    const out = {};
    // 480p camera: three layers, VP8 first.
    const big = await publish({ width: 640, height: 480 });
    const offer = big.sent.find((m) => m.type === 'offer');
    const videoSection = offer.sdp.split('\r\nm=').find((s) => s.startsWith('video'));
    out.simulcastLine = (videoSection.match(/a=simulcast:(.*)/) || [])[1] || null;
    const firstPt = videoSection.split('\r\n')[0].split(' ')[3];
    out.firstCodec = (videoSection.match(new RegExp(`a=rtpmap:${firstPt} ([^/]+)`)) || [])[1] || null;
    const camTrack = big.local.getVideoTracks()[0];
    out.declared = offer.tracks;
    const sender = () => big.call.pcs.publisher.getTransceivers().find((t) => t.sender.track && t.sender.track.kind === 'video').sender;
    const actives = () => Object.fromEntries(sender().getParameters().encodings.map((e) => [e.rid, e.active]));
    out.before = actives();
    await big.call.setPublishLayers({ type: 'publish_layers', track_id: camTrack.id,
      layers: [{ rid: 'q', active: true }, { rid: 'h', active: true }, { rid: 'f', active: false }] });
    out.fOff = actives();
    // Device switch: the announced id still names the camera's sender.
    const other = camTrack.clone();
    await big.call.replaceTrack('video', other);
    await big.call.setPublishLayers({ type: 'publish_layers', track_id: camTrack.id,
      layers: [{ rid: 'q', active: false }, { rid: 'h', active: true }, { rid: 'f', active: true }] });
    out.afterReplace = actives();
    // Unknown tracks and malformed messages are logged, never thrown.
    await big.call.setPublishLayers({ type: 'publish_layers', track_id: 'nope', layers: [{ rid: 'q', active: false }] });
    await big.call.setPublishLayers({ type: 'publish_layers' });
    out.afterJunk = actives();
    // A shared screen stays one encoding.
    const screen = camTrack.clone();
    await big.call.setScreen({ track: screen, stream: new MediaStream([screen]) });
    const screenTr = big.call.pcs.publisher.getTransceivers().find((t) => big.call.sources.get(t) === 'screen');
    out.screenEncodings = screenTr.sender.getParameters().encodings.length;
    big.call.stop();

    // 240p camera: one encoding, no rid.
    const small = await publish({ width: 320, height: 240 });
    const smallOffer = small.sent.find((m) => m.type === 'offer');
    out.smallSimulcast = /a=simulcast:/.test(smallOffer.sdp);
    small.call.stop();

    // videoview.js: sizes in device pixels, one message per notable change.
    const msgs = [];
    const view = new VideoView((m) => { msgs.push(m); return true; });
    const tile = new Tile('pid-x', 'X');
    document.body.append(tile.node);
    tile.node.style.cssText = 'position:fixed;left:0;top:0;width:400px;height:300px';
    tile.video.style.cssText = 'width:100%;height:100%;display:block';
    const remote = camTrack.clone();
    tile.setTracks([remote]);
    view.refresh(new Map([['pid-x', tile]]));
    await wait(700);
    out.firstSize = msgs.slice();
    tile.node.style.width = '420px'; // +5 %: not worth a message
    await wait(700);
    out.afterSmallChange = msgs.length;
    tile.node.style.width = '200px'; // halved
    for (let i = 0; i < 5; i++) { tile.node.style.height = `${150 - i}px`; await wait(50); } // a burst
    await wait(700);
    out.afterHalving = msgs.slice(out.firstSize.length);
    tile.node.hidden = true;
    view.evaluate();
    await wait(700);
    out.afterHide = msgs.slice(out.firstSize.length + out.afterHalving.length);
    out.dpr = window.devicePixelRatio;
    out.trackId = remote.id;

    // tile.js: stream_state paused / active.
    tile.node.hidden = false;
    tile.setStreamPaused(true);
    out.paused = { attr: tile.node.dataset.streamState || null, badge: !tile.streamBadge.hidden,
      text: tile.streamBadge.textContent, noVideo: tile.node.classList.contains('no-video') };
    tile.setVideoPaused(true); // audio only too: its badge wins
    out.bothBadges = { stream: !tile.streamBadge.hidden, audioOnly: !tile.pausedBadge.hidden };
    tile.setVideoPaused(false);
    tile.setStreamPaused(false);
    out.active = { attr: tile.node.dataset.streamState || null, badge: !tile.streamBadge.hidden };
    return out;
  });
  console.log(JSON.stringify(r, null, 1));
  check(r.simulcastLine === 'send q;h;f', 'camera offer has a=simulcast:send q;h;f');
  check(/vp8/i.test(r.firstCodec || ''), 'VP8 is the first camera codec');
  check(r.declared.some((t) => t.source === 'camera'), 'camera declared in offer.tracks');
  check(JSON.stringify(r.before) === '{"q":true,"h":true,"f":true}', 'three active layers at start');
  check(JSON.stringify(r.fOff) === '{"q":true,"h":true,"f":false}', 'publish_layers switches f off');
  check(JSON.stringify(r.afterReplace) === '{"q":false,"h":true,"f":true}', 'publish_layers by announced id after replaceTrack');
  check(JSON.stringify(r.afterJunk) === JSON.stringify(r.afterReplace), 'junk publish_layers changes nothing');
  check(r.screenEncodings === 1, 'screen share has one encoding');
  check(r.smallSimulcast === false, '240p camera is not simulcast');
  const px = (v) => Math.round(v * r.dpr);
  check(r.firstSize.length === 1 && r.firstSize[0].visible === true && r.firstSize[0].track_id === r.trackId
    && r.firstSize[0].width === px(400) && r.firstSize[0].height === px(300), 'first size reported once, in device pixels');
  check(r.afterSmallChange === 1, 'a 5 % change sends nothing');
  check(r.afterHalving.length === 1 && r.afterHalving[0].width === px(200) && r.afterHalving[0].height === px(146),
    'a burst of resizes is one message with the final size');
  check(r.afterHide.length === 1 && r.afterHide[0].visible === false, 'hiding sends visible: false');
  check(r.paused.attr === 'paused' && r.paused.badge && r.paused.noVideo && r.paused.text === 'Paused: weak connection',
    'stream_state paused shows on the tile');
  check(!r.bothBadges.stream && r.bothBadges.audioOnly, 'audio-only badge wins over the weak-connection one');
  check(r.active.attr === null && !r.active.badge, 'active clears the paused state');
} catch (e) {
  console.error(e);
  failures.push(String(e));
}
if (failures.length) { console.error('failed:', failures); dumpLogs(); }
await browser.close();
console.log(failures.length ? 'layers-unit: FAILED' : 'layers-unit: ok');
process.exit(failures.length ? 1 : 0);
