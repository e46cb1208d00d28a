// call.js — the two RTCPeerConnections of one participant (see signaling/PROTOCOL.md).
// Why: all WebRTC details live here — publisher (we offer, sendonly mic + camera),
// subscriber (server offers, we answer), trickle ICE with queuing, remote track →
// participant mapping (MediaStream id = publisher's participant_id) and stats.

export class Call {
  /**
   * @param {object} o
   * @param {{send: (msg: object) => boolean}} o.signaling
   * @param {(pid: string, stream: MediaStream, track: MediaStreamTrack) => void} o.onRemoteTrack
   */
  constructor({ signaling, onRemoteTrack, log = console }) {
    this.sig = signaling;
    this.onRemoteTrack = onRemoteTrack || (() => {});
    this.log = log;
    this.localStream = null;
    this.pcs = { publisher: null, subscriber: null };
    this.pending = { publisher: [], subscriber: [] }; // remote candidates before remoteDescription
    this.chains = { publisher: Promise.resolve(), subscriber: Promise.resolve() };
    this.trackOwner = new Map(); // receiver track id → participant id
    this.generation = 0;
  }

  setLocalStream(stream) {
    this.localStream = stream;
  }

  /** Build fresh peer connections (first join, or resume = ICE restart) and publish. */
  start(iceServers) {
    this.stop();
    const gen = ++this.generation;
    const config = { iceServers: normalizeIceServers(iceServers), bundlePolicy: 'max-bundle' };
    const makePc = () => {
      try {
        return new RTCPeerConnection(config);
      } catch (e) {
        // A malformed ICE server entry must not stop the call: loopback/LAN may still work.
        this.log.warn('ice_servers rejected by the browser, continuing without them:', e && e.message);
        return new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      }
    };

    const pub = makePc();
    const sub = makePc();
    this.pcs = { publisher: pub, subscriber: sub };
    this.pending = { publisher: [], subscriber: [] };
    this.chains = { publisher: Promise.resolve(), subscriber: Promise.resolve() };
    this.trackOwner.clear();

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
      if (!stream) {
        this.log.warn('subscriber track without a stream; cannot tell whose it is', ev.track.id);
        return;
      }
      this.trackOwner.set(ev.track.id, stream.id);
      this.onRemoteTrack(stream.id, stream, ev.track);
    };

    const stream = this.localStream;
    for (const kind of ['audio', 'video']) {
      const track = stream && stream.getTracks().find((t) => t.kind === kind);
      if (track) pub.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      else pub.addTransceiver(kind, { direction: 'sendonly' });
    }
    this.enqueue('publisher', () => this.offerPublisher());
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
    if (!pc || pc.signalingState !== 'stable') return;
    const offer = await pc.createOffer({ iceRestart });
    await pc.setLocalDescription(offer);
    this.sig.send({ type: 'offer', pc: 'publisher', sdp: pc.localDescription.sdp });
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
    });
  }

  /** Server `offer` (pc: subscriber): set it and answer. */
  handleOffer(msg) {
    if (msg.pc !== 'subscriber') return;
    return this.enqueue('subscriber', async () => {
      const pc = this.pcs.subscriber;
      if (!pc) return;
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await this.flushCandidates('subscriber');
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.sig.send({ type: 'answer', pc: 'subscriber', sdp: pc.localDescription.sdp });
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

  /**
   * Receive stats per remote participant, from the subscriber connection.
   * Only currently receiving transceivers count (a stopped track from before a peer's
   * reload must not hide that the new one is not flowing).
   */
  async stats(participantIds = []) {
    const out = new Map();
    const entry = (pid) => {
      if (!out.has(pid)) {
        out.set(pid, {
          participant_id: pid,
          video: { framesDecoded: 0, bytesReceived: 0 },
          audio: { bytesReceived: 0, packetsReceived: 0 },
        });
      }
      return out.get(pid);
    };
    for (const pid of participantIds) entry(pid);
    const pc = this.pcs.subscriber;
    if (!pc) return [...out.values()];

    const live = new Set();
    for (const t of pc.getTransceivers()) {
      if (t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv') live.add(t.receiver.track.id);
    }
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      let tid = r.trackIdentifier;
      if (!tid && r.trackId && report.get(r.trackId)) tid = report.get(r.trackId).trackIdentifier; // older Chrome
      if (!tid || !live.has(tid)) return;
      const pid = this.trackOwner.get(tid);
      if (!pid) return;
      const e = entry(pid);
      const kind = r.kind || r.mediaType;
      if (kind === 'video') {
        e.video.framesDecoded += r.framesDecoded || 0;
        e.video.bytesReceived += r.bytesReceived || 0;
      } else if (kind === 'audio') {
        e.audio.bytesReceived += r.bytesReceived || 0;
        e.audio.packetsReceived += r.packetsReceived || 0;
      }
    });
    return [...out.values()];
  }
}

function normalizeIceServers(list) {
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
