// call.js — the two RTCPeerConnections of one participant (see signaling/PROTOCOL.md).
// Why: all WebRTC details live here — publisher (we offer, sendonly mic + camera and an
// optional screen), subscriber (server offers, we answer), trickle ICE with queuing,
// remote track → participant mapping (a=msid per mid), device switching without
// renegotiation (replaceTrack), camera simulcast with the layers the server asks for
// (`publish_layers`) and stats.

import { msidByMid } from './sdp.js';

/**
 * Whether the camera is sent in simulcast layers at all (when the capture is large
 * enough). On by default; page option `simulcast=0` sends one encoding.
 */
let simulcastEnabled = true;

/** Turns camera simulcast on or off for connections built after the call. */
export function enableSimulcast(on) {
  simulcastEnabled = !!on;
}

/** Capture height from which the camera is sent as three simulcast layers. */
export const SIMULCAST_MIN_HEIGHT = 360;

/**
 * The camera's simulcast layers (rid q/h/f: quarter, half and full resolution), lowest
 * first. The server forwards each receiver the layer its tile size and downlink call for.
 */
export const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', maxBitrate: 1200000 },
];

/**
 * sendEncodings for a camera track of this capture height: three layers from
 * SIMULCAST_MIN_HEIGHT, else none (one encoding, the browser's default; a quarter of a
 * small picture is too small to be worth sending).
 */
export function cameraEncodings(height) {
  return height >= SIMULCAST_MIN_HEIGHT ? CAMERA_LAYERS.map((l) => ({ ...l })) : null;
}

/** `codecs` with VP8 first (the server reads VP8 frame sizes to pick layers). */
export function vp8First(codecs) {
  const isVp8 = (c) => /^video\/vp8$/i.test(c.mimeType || '');
  return [...codecs.filter(isVp8), ...codecs.filter((c) => !isVp8(c))];
}

export class Call {
  /**
   * @param {object} o
   * @param {{send: (msg: object) => boolean}} o.signaling
   * @param {(negotiated: boolean) => void} [o.onRemoteChange] the set of received tracks may have
   *   changed (negotiated: a new subscriber description was just applied)
   */
  constructor({ signaling, onRemoteChange, log = console }) {
    this.sig = signaling;
    this.onRemoteChange = onRemoteChange || (() => {});
    this.log = log;
    this.localStream = null;
    this.screen = null; // {track, stream} while sharing
    this.pcs = { publisher: null, subscriber: null };
    this.pending = { publisher: [], subscriber: [] }; // remote candidates before remoteDescription
    this.chains = { publisher: Promise.resolve(), subscriber: Promise.resolve() };
    this.sources = new Map(); // publisher transceiver → source
    this.announced = new Map(); // track id announced in our offers (a=msid) → publisher transceiver
    this.layerChain = Promise.resolve(); // setParameters calls, one at a time
    this.remoteMsid = new Map(); // subscriber mid → {streamId, trackId}
    this.trackOwner = new Map(); // receiver track id → participant id (fallback without msid)
    this.renegotiate = false;
    this.generation = 0;
  }

  setLocalStream(stream) {
    this.localStream = stream;
  }

  /** Build fresh peer connections (first join, or resume = ICE restart) and publish. */
  start(iceServers) {
    this.stop();
    const gen = ++this.generation;
    const pub = makePc(iceServers, this.log);
    const sub = makePc(iceServers, this.log);
    this.pcs = { publisher: pub, subscriber: sub };
    this.pending = { publisher: [], subscriber: [] };
    this.chains = { publisher: Promise.resolve(), subscriber: Promise.resolve() };
    this.sources.clear();
    this.announced.clear();
    this.remoteMsid.clear();
    this.trackOwner.clear();
    this.renegotiate = false;

    for (const [name, pc] of Object.entries(this.pcs)) {
      pc.onicecandidate = (ev) => {
        if (gen !== this.generation) return;
        this.sig.send({ type: 'candidate', pc: name, candidate: ev.candidate ? ev.candidate.toJSON() : null });
      };
      pc.onconnectionstatechange = () => {
        this.log.info(`${name} pc: ${pc.connectionState}`);
        if (name === 'publisher' && pc.connectionState === 'failed' && gen === this.generation) {
          // We own the publisher offer: try an ICE restart on the same socket.
          this.enqueue('publisher', () => this.offerPublisher({ iceRestart: true }));
        }
      };
    }
    sub.ontrack = (ev) => {
      const stream = ev.streams && ev.streams[0];
      if (stream) this.trackOwner.set(ev.track.id, stream.id);
      this.onRemoteChange(false);
    };

    const stream = this.localStream;
    for (const [kind, source] of [['audio', 'microphone'], ['video', 'camera']]) {
      const track = stream && stream.getTracks().find((t) => t.kind === kind);
      const tr = track
        ? pub.addTransceiver(track, this.sendInit(track, stream, source))
        : pub.addTransceiver(kind, { direction: 'sendonly' });
      this.sources.set(tr, source);
      if (source === 'camera') this.preferVp8(tr);
    }
    if (this.screen && this.screen.track.readyState === 'live') this.addScreenTransceiver();
    this.enqueue('publisher', () => this.offerPublisher());
  }

  /** addTransceiver options of a local track: the camera gets simulcast layers when large enough. */
  sendInit(track, stream, source) {
    const init = { direction: 'sendonly', streams: [stream] };
    if (source !== 'camera') return init;
    const settings = typeof track.getSettings === 'function' ? track.getSettings() : {};
    const encodings = simulcastEnabled ? cameraEncodings(settings.height || 0) : null;
    if (encodings) init.sendEncodings = encodings;
    return init;
  }

  /** Puts VP8 first on a video transceiver where the browser lets us choose. */
  preferVp8(tr) {
    if (typeof tr.setCodecPreferences !== 'function') return;
    // Which capabilities the browser checks the list against differs (receiver in the
    // older spec, sender for a sendonly transceiver in the newer one): try both.
    for (const api of [globalThis.RTCRtpReceiver, globalThis.RTCRtpSender]) {
      const caps = api && typeof api.getCapabilities === 'function' ? api.getCapabilities('video') : null;
      if (!caps || !caps.codecs || !caps.codecs.length) continue;
      try {
        tr.setCodecPreferences(vp8First(caps.codecs));
        return;
      } catch (e) {
        this.log.warn('setCodecPreferences failed:', e && e.message);
      }
    }
  }

  /**
   * Server `publish_layers`: switch our camera's simulcast encodings on and off by rid
   * (dynacast: a layer nobody receives is not encoded). Failures are logged, never thrown.
   */
  setPublishLayers(msg) {
    if (!msg || typeof msg.track_id !== 'string' || !Array.isArray(msg.layers)) return Promise.resolve();
    const wanted = new Map();
    for (const l of msg.layers) if (l && typeof l.rid === 'string') wanted.set(l.rid, !!l.active);
    this.layerChain = this.layerChain
      .then(() => this.applyLayers(msg.track_id, wanted))
      .catch((e) => this.log.warn('publish_layers not applied:', e && (e.name || e.message)));
    return this.layerChain;
  }

  /** The publisher sender of a track id: announced in our offer, or the one it sends now. */
  senderOf(trackId) {
    const tr = this.announced.get(trackId);
    if (tr && this.pcs.publisher && this.pcs.publisher.getTransceivers().includes(tr)) return tr.sender;
    const pc = this.pcs.publisher;
    const found = pc && pc.getTransceivers().find((t) => t.sender.track && t.sender.track.id === trackId);
    return found ? found.sender : null;
  }

  async applyLayers(trackId, wanted) {
    const sender = this.senderOf(trackId);
    if (!sender) {
      this.log.warn('publish_layers for a track we do not send:', trackId);
      return;
    }
    const params = sender.getParameters();
    let changed = false;
    for (const enc of params.encodings || []) {
      if (!enc.rid || !wanted.has(enc.rid) || enc.active === wanted.get(enc.rid)) continue;
      enc.active = wanted.get(enc.rid);
      changed = true;
    }
    if (changed) await sender.setParameters(params);
  }

  stop() {
    this.generation++;
    for (const pc of Object.values(this.pcs)) {
      if (pc) {
        pc.onicecandidate = null;
        pc.ontrack = null;
        pc.onconnectionstatechange = null;
        try { pc.close(); } catch {}
      }
    }
    this.pcs = { publisher: null, subscriber: null };
  }

  enqueue(name, fn) {
    const gen = this.generation;
    const next = this.chains[name].then(() => (gen === this.generation ? fn() : undefined));
    this.chains[name] = next.catch((e) => this.log.error(`${name} negotiation:`, e));
    return this.chains[name];
  }

  async offerPublisher({ iceRestart = false } = {}) {
    const pc = this.pcs.publisher;
    if (!pc) return;
    if (pc.signalingState !== 'stable') {
      this.renegotiate = true; // an answer is outstanding: offer again once it is applied
      return;
    }
    const offer = await pc.createOffer({ iceRestart });
    await pc.setLocalDescription(offer);
    const sdp = pc.localDescription.sdp;
    this.sig.send({ type: 'offer', pc: 'publisher', sdp, tracks: this.describeTracks(pc, sdp) });
  }

  /** `tracks` of a publisher offer: each sending section's msid track id and its source. */
  describeTracks(pc, sdp) {
    const msids = msidByMid(sdp);
    const out = [];
    for (const tr of pc.getTransceivers()) {
      const source = this.sources.get(tr);
      const m = tr.mid != null ? msids.get(tr.mid) : null;
      if (source && m && (tr.direction === 'sendonly' || tr.direction === 'sendrecv')) {
        out.push({ track_id: m.trackId, source });
        // The server names our tracks by this id (publish_layers), also after replaceTrack.
        this.announced.set(m.trackId, tr);
      }
    }
    return out;
  }

  /** Server `answer` (pc: publisher). */
  handleAnswer(msg) {
    if (msg.pc !== 'publisher') return;
    return this.enqueue('publisher', async () => {
      const pc = this.pcs.publisher;
      if (!pc || pc.signalingState !== 'have-local-offer') {
        this.log.warn('publisher answer without an outstanding offer; ignored');
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      await this.flushCandidates('publisher');
      if (this.renegotiate) {
        this.renegotiate = false;
        await this.offerPublisher();
      }
    });
  }

  /** Server `offer` (pc: subscriber): set it and answer. */
  handleOffer(msg) {
    if (msg.pc !== 'subscriber') return;
    return this.enqueue('subscriber', async () => {
      const pc = this.pcs.subscriber;
      if (!pc) return;
      this.remoteMsid = msidByMid(msg.sdp);
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await this.flushCandidates('subscriber');
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.sig.send({ type: 'answer', pc: 'subscriber', sdp: pc.localDescription.sdp });
      this.onRemoteChange(true);
    });
  }

  /** Server `candidate`: add now, or queue until the remote description is set. */
  handleCandidate(msg) {
    const pc = this.pcs[msg.pc];
    if (!pc) return;
    if (!pc.remoteDescription) {
      this.pending[msg.pc].push(msg.candidate);
      return;
    }
    return this.addCandidate(pc, msg.candidate);
  }

  async flushCandidates(name) {
    const pc = this.pcs[name];
    const queued = this.pending[name];
    this.pending[name] = [];
    for (const c of queued) await this.addCandidate(pc, c);
  }

  async addCandidate(pc, c) {
    try {
      if (!c || !c.candidate) {
        await pc.addIceCandidate(); // end of candidates
        return;
      }
      const init = { ...c };
      if (init.sdpMid == null && init.sdpMLineIndex == null) init.sdpMLineIndex = 0; // bundled
      await pc.addIceCandidate(init);
    } catch (e) {
      this.log.warn('addIceCandidate failed:', e && e.message, JSON.stringify(c));
    }
  }

  /** Enable/disable our own track of a kind (the caller tells the server). */
  setEnabled(kind, enabled) {
    if (!this.localStream) return;
    for (const t of this.localStream.getTracks()) if (t.kind === kind) t.enabled = enabled;
  }

  /** Switch camera or microphone: the sender gets the new track, no renegotiation. */
  async replaceTrack(kind, track) {
    const pc = this.pcs.publisher;
    if (!pc) return;
    const source = kind === 'audio' ? 'microphone' : 'camera';
    for (const tr of pc.getTransceivers()) {
      if (this.sources.get(tr) === source) await tr.sender.replaceTrack(track);
    }
  }

  /** Start (track) or stop (null) publishing a screen; renegotiates the publisher. */
  setScreen(screen) {
    const pc = this.pcs.publisher;
    this.screen = screen;
    if (!pc) return Promise.resolve();
    if (screen) {
      this.addScreenTransceiver();
    } else {
      for (const tr of pc.getTransceivers()) {
        if (this.sources.get(tr) === 'screen' && tr.sender.track) {
          pc.removeTrack(tr.sender); // the section goes inactive: the server unpublishes it
          this.sources.delete(tr);
        }
      }
    }
    return this.enqueue('publisher', () => this.offerPublisher());
  }

  addScreenTransceiver() {
    const { track, stream } = this.screen;
    const tr = this.pcs.publisher.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    this.sources.set(tr, 'screen');
  }

  /**
   * The tracks received right now: [{pid, trackId, kind, track}]. `trackId` is the one
   * announced in `track_published` (from a=msid), `pid` the publisher's participant id.
   */
  remoteTracks() {
    const pc = this.pcs.subscriber;
    if (!pc) return [];
    const out = [];
    for (const t of pc.getTransceivers()) {
      if (t.currentDirection !== 'recvonly' && t.currentDirection !== 'sendrecv') continue;
      const track = t.receiver.track;
      const m = t.mid != null ? this.remoteMsid.get(t.mid) : null;
      const pid = m ? m.streamId : this.trackOwner.get(track.id);
      if (!pid || pid === '-') continue;
      out.push({ pid, trackId: m ? m.trackId : track.id, kind: track.kind, track });
    }
    return out;
  }

  /**
   * Receive stats per remote participant, from the subscriber connection: camera video,
   * screen video and audio apart. Only currently receiving transceivers count (a stopped
   * track from before a peer's reload must not hide that the new one is not flowing).
   * @param {string[]} participantIds always listed, even with nothing received
   * @param {(trackId: string) => string|undefined} sourceOf announced source of a track
   *   ('gone' for a track already unpublished: not counted)
   */
  async stats(participantIds = [], sourceOf = () => undefined) {
    const out = new Map();
    const entry = (pid) => {
      if (!out.has(pid)) {
        out.set(pid, {
          participant_id: pid,
          video: { framesDecoded: 0, bytesReceived: 0, frameHeight: 0 },
          screen: { framesDecoded: 0, bytesReceived: 0, frameWidth: 0 },
          audio: { bytesReceived: 0, packetsReceived: 0, packetsLost: 0 },
        });
      }
      return out.get(pid);
    };
    for (const pid of participantIds) entry(pid);
    const pc = this.pcs.subscriber;
    if (!pc) return [...out.values()];

    const live = new Map(this.remoteTracks().map((r) => [r.track.id, r]));
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      let tid = r.trackIdentifier;
      if (!tid && r.trackId && report.get(r.trackId)) tid = report.get(r.trackId).trackIdentifier; // older Chrome
      const rt = tid && live.get(tid);
      if (!rt) return;
      const source = sourceOf(rt.trackId);
      if (source === 'gone') return;
      const e = entry(rt.pid);
      const kind = r.kind || r.mediaType;
      if (kind === 'video') {
        const v = source === 'screen' ? e.screen : e.video;
        v.framesDecoded += r.framesDecoded || 0;
        v.bytesReceived += r.bytesReceived || 0;
        if (v === e.screen) v.frameWidth = Math.max(v.frameWidth, r.frameWidth || 0);
        else v.frameHeight = Math.max(v.frameHeight, r.frameHeight || 0);
      } else if (kind === 'audio') {
        e.audio.bytesReceived += r.bytesReceived || 0;
        e.audio.packetsReceived += r.packetsReceived || 0;
        e.audio.packetsLost += r.packetsLost || 0;
      }
    });
    return [...out.values()];
  }

  /** The camera sender's encodings: [{rid, active}] (rid null without simulcast). */
  cameraLayers() {
    const pc = this.pcs.publisher;
    if (!pc) return [];
    const tr = pc.getTransceivers().find((t) => this.sources.get(t) === 'camera');
    if (!tr) return [];
    return (tr.sender.getParameters().encodings || []).map((e) => ({ rid: e.rid || null, active: e.active !== false }));
  }

  /** Test only: the camera sender trades frame rate, not resolution, under CPU load. */
  async maintainCameraResolution() {
    const pc = this.pcs.publisher;
    const tr = pc && pc.getTransceivers().find((t) => this.sources.get(t) === 'camera');
    if (!tr) return false;
    const params = tr.sender.getParameters();
    params.degradationPreference = 'maintain-resolution';
    await tr.sender.setParameters(params);
    return true;
  }

  /** Local port of the subscriber connection's selected candidate pair, or null. */
  async subscriberPort() {
    const t = (await this.selectedTransports()).subscriber;
    return t ? t.port : null;
  }

  /**
   * The selected candidate pair of each connection: {publisher, subscriber}, each
   * {protocol ('udp' or 'tcp'), candidateType (local), port (local)} or null.
   */
  async selectedTransports() {
    const out = {};
    for (const [name, pc] of Object.entries(this.pcs)) {
      out[name] = null;
      if (!pc) continue;
      const report = await pc.getStats();
      const pair = selectedPair(report);
      const local = pair && report.get(pair.localCandidateId);
      if (local) out[name] = { protocol: local.protocol, candidateType: local.candidateType, port: local.port };
    }
    return out;
  }

  /**
   * Cumulative network counters for the connection-quality indicator: round-trip time
   * (s) of the selected candidate pair, and packets sent/lost as the server reports them
   * back (publisher) plus packets received/lost (subscriber).
   */
  async qualityCounters() {
    const c = { rtt: null, sent: 0, lostUp: 0, received: 0, lostDown: 0 };
    for (const [name, pc] of Object.entries(this.pcs)) {
      if (!pc) continue;
      const report = await pc.getStats();
      const pair = selectedPair(report);
      if (pair && pair.currentRoundTripTime != null) c.rtt = Math.max(c.rtt || 0, pair.currentRoundTripTime);
      report.forEach((r) => {
        if (name === 'publisher' && r.type === 'outbound-rtp') {
          c.sent += r.packetsSent || 0;
        } else if (name === 'publisher' && r.type === 'remote-inbound-rtp') {
          c.lostUp += Math.max(0, r.packetsLost || 0);
        } else if (name === 'subscriber' && r.type === 'inbound-rtp') {
          c.received += r.packetsReceived || 0;
          c.lostDown += Math.max(0, r.packetsLost || 0);
        }
      });
    }
    return c;
  }
}

/**
 * The candidate pair a connection sends on, from a getStats() report: the one its transport
 * names as selected. Several pairs may be nominated and succeeded at once (a UDP pair and an
 * ICE-over-TCP pair to the same server), so "the nominated pair" is not one pair.
 */
export function selectedPair(report) {
  let pair = null;
  report.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) || pair;
  });
  return pair;
}

/** A peer connection with the server's ICE servers (or none, if the browser rejects them). */
function makePc(iceServers, log) {
  const config = { iceServers: normalizeIceServers(iceServers), bundlePolicy: 'max-bundle' };
  try {
    return new RTCPeerConnection(config);
  } catch (e) {
    // A malformed ICE server entry must not stop the call: loopback/LAN may still work.
    log.warn('ice_servers rejected by the browser, continuing without them:', e && e.message);
    return new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  }
}

/** The protocol's `ice_servers` as RTCIceServer entries, dropping empty ones. */
export function normalizeIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((s) => s && (Array.isArray(s.urls) ? s.urls.length > 0 : !!s.urls))
    .map((s) => {
      const o = { urls: s.urls };
      if (s.username != null) o.username = s.username;
      if (s.credential != null) o.credential = s.credential;
      return o;
    });
}
