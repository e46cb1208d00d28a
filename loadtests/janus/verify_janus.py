#!/usr/bin/env python3
"""End-to-end check that media flows through Janus VideoRoom, and a worked example of
the Janus WebSocket API flow that theraroom-load implements (see README.md here).

One publisher (aiortc: VP8 test video + Opus) and one subscriber, both real WebRTC
peers, talk to Janus over its WebSocket API (subprotocol "janus-protocol"):

  create session -> attach janus.plugin.videoroom (publisher handle)
  -> "create" room (1 Mbit/s, 120 publishers) -> "join" ptype=publisher
  -> "configure" + JSEP offer -> JSEP answer -> trickle {completed:true}
  -> wait for "webrtcup" -> attach a 2nd handle -> "join" ptype=subscriber
     streams=[{feed: id}] -> JSEP offer from Janus -> "start" + JSEP answer
  -> count decoded frames / RTP packets on the subscriber for N seconds.

Exit 0 when the subscriber received >= --min-frames video frames and audio packets.

Run inside the namespace that runs Janus (see README.md), e.g.
  /tmp/janus-venv/bin/python verify_janus.py --url ws://127.0.0.1:8188 --bind 127.0.0.1
Needs: pip install aiortc websockets (a venv under /tmp is fine).
"""
import argparse
import asyncio
import fractions
import json
import random
import re
import string
import sys
import time

import aioice.ice
import numpy as np
import websockets
from aiortc import (MediaStreamTrack, RTCPeerConnection, RTCSessionDescription,
                    VideoStreamTrack)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket, is_rtcp
from av import VideoFrame

ARGS = None
SENT = {}      # payload bytes -> (time, ssrc, seq, ts) as the publishers sent them
RECV = []      # (time, ssrc, seq, ts, payload) as the subscriber received them


def install_packet_taps():
    """Records plaintext RTP on both ends: which payloads Janus forwards unchanged,
    how it rewrites SSRC/seq/timestamp, and the one-way forwarding latency."""
    orig_send = RTCDtlsTransport._send_rtp
    orig_recv = RTCRtpReceiver._handle_rtp_packet

    async def send(self, data):
        if not is_rtcp(data):
            p = RtpPacket.parse(data)
            # a payload sent twice (Opus silence, equal frames) is ambiguous: drop it
            SENT[p.payload] = None if p.payload in SENT else (
                time.monotonic(), p.ssrc, p.sequence_number, p.timestamp)
        return await orig_send(self, data)

    async def recv(self, packet, arrival_time_ms):
        RECV.append((time.monotonic(), packet.ssrc, packet.sequence_number, packet.timestamp,
                     packet.payload))
        return await orig_recv(self, packet, arrival_time_ms)

    RTCDtlsTransport._send_rtp = send
    RTCRtpReceiver._handle_rtp_packet = recv


def packet_report():
    matched, lat, offs = 0, [], {}
    unique = sum(1 for t, ssrc, seq, ts, payload in RECV if SENT.get(payload, 0) is not None)
    for t, ssrc, seq, ts, payload in RECV:
        s = SENT.get(payload)
        if s is None:
            continue
        matched += 1
        lat.append((t - s[0]) * 1000)
        offs.setdefault((s[1], ssrc), set()).add(((seq - s[2]) % 65536, (ts - s[3]) % 2**32))
    lat.sort()
    q = (lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))], 2)) if lat else (lambda f: None)
    log(f"packets: received {len(RECV)}, with a payload sent once: {unique}, of which "
        f"found byte-identical among sent payloads: {matched}; "
        f"forwarding latency ms p50 {q(0.5)} p95 {q(0.95)} p99 {q(0.99)}")
    for (a, b), o in offs.items():
        log(f"  ssrc {a} -> {b}: (seq, ts) offsets seen: {sorted(o)[:4]}{' ...' if len(o) > 4 else ''}")
T0 = time.monotonic()


def log(*a):
    print(f"[{time.monotonic() - T0:7.3f}]", *a, flush=True)


def tid():
    return "".join(random.choices(string.ascii_letters + string.digits, k=12))


class Janus:
    """Minimal Janus WebSocket API client: one socket, one session, many handles."""

    def __init__(self, ws, transcript):
        self.ws = ws
        self.transcript = transcript  # file object or None: every JSON message, one a line
        self.pending = {}             # transaction -> Future (first non-ack reply)
        self.acks = {}                # transaction -> Future (the "ack")
        self.events = {}              # handle id -> asyncio.Queue of events (by "sender")
        self.session = None
        self.reader = asyncio.ensure_future(self._read())
        self.keepalive_task = None

    def _note(self, direction, msg):
        if self.transcript:
            self.transcript.write(json.dumps({"dir": direction, "t": round(time.monotonic() - T0, 3),
                                              "msg": msg}) + "\n")
            self.transcript.flush()

    async def send(self, msg):
        msg.setdefault("transaction", tid())
        if self.session is not None and "session_id" not in msg and msg["janus"] != "create":
            msg["session_id"] = self.session
        loop = asyncio.get_running_loop()
        self.pending[msg["transaction"]] = loop.create_future()
        self.acks[msg["transaction"]] = loop.create_future()
        self._note(">", msg)
        await self.ws.send(json.dumps(msg))
        return msg["transaction"]

    async def request(self, msg, timeout=10):
        """Sends, returns the first reply that is not an "ack" ("success", "error" or
        "event" carrying the same transaction)."""
        t = await self.send(msg)
        return await asyncio.wait_for(self.pending[t], timeout)

    async def ack(self, msg, timeout=10):
        """Sends, waits only for the "ack" (trickle, keepalive, async plugin messages)."""
        t = await self.send(msg)
        return await asyncio.wait_for(self.acks[t], timeout)

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            self._note("<", msg)
            kind = msg.get("janus")
            t = msg.get("transaction")
            if kind == "ack":
                if t in self.acks and not self.acks[t].done():
                    self.acks[t].set_result(msg)
                continue
            if t in self.pending and not self.pending[t].done():
                self.pending[t].set_result(msg)
                # a plugin "event" with our transaction is ALSO delivered to the handle queue
                if kind != "event":
                    continue
            sender = msg.get("sender")
            if sender is not None:
                self.events.setdefault(sender, asyncio.Queue()).put_nowait(msg)
            elif kind not in ("success",):
                log("unrouted:", msg)

    async def create_session(self):
        r = await self.request({"janus": "create"})
        assert r["janus"] == "success", r
        self.session = r["data"]["id"]
        self.keepalive_task = asyncio.ensure_future(self._keepalive())
        return self.session

    async def _keepalive(self):
        # session_timeout is 60 s: anything (a keepalive here) at least every ~25 s.
        while True:
            await asyncio.sleep(ARGS.keepalive)
            r = await self.ack({"janus": "keepalive"})
            assert r["janus"] == "ack", r

    async def attach(self, plugin="janus.plugin.videoroom"):
        r = await self.request({"janus": "attach", "plugin": plugin})
        assert r["janus"] == "success", r
        h = r["data"]["id"]
        self.events.setdefault(h, asyncio.Queue())
        return h

    async def message(self, handle, body, jsep=None, timeout=10):
        """A plugin message. Synchronous requests (create, exists, list, ...) answer with
        "success" + plugindata; asynchronous ones (join, configure, publish, start, leave)
        answer "ack" first and then an "event" with the same transaction."""
        msg = {"janus": "message", "handle_id": handle, "body": body}
        if jsep:
            msg["jsep"] = jsep
        return await self.request(msg, timeout)

    async def next_event(self, handle, pred, timeout=10):
        q = self.events.setdefault(handle, asyncio.Queue())
        end = time.monotonic() + timeout
        while True:
            m = await asyncio.wait_for(q.get(), max(0.01, end - time.monotonic()))
            if pred(m):
                return m

    async def close(self):
        if self.keepalive_task:
            self.keepalive_task.cancel()
        try:
            await self.request({"janus": "destroy"}, timeout=3)
        except Exception as e:  # noqa
            log("destroy:", e)
        await self.ws.close()
        self.reader.cancel()


class SmallVideo(VideoStreamTrack):
    """A cheap moving test pattern (keeps the VP8 encoder busy with real changes)."""

    def __init__(self, w=320, h=240, seed=0):
        super().__init__()
        self.w, self.h, self.n = w, h, 0
        self.color = (255, 128, seed * 97 % 256)

    async def recv(self):
        pts, tb = await self.next_timestamp()
        img = np.zeros((self.h, self.w, 3), np.uint8)
        x = (self.n * 4) % self.w
        img[:, max(0, x - 20):x, :] = self.color
        img[(self.n * 2) % self.h, :, :] = 255
        self.n += 1
        f = VideoFrame.from_ndarray(img, format="bgr24")
        f.pts, f.time_base = pts, tb
        return f


def strip_candidates(sdp):
    """SDP without a=candidate / a=end-of-candidates lines, and the candidates."""
    cands = []
    out = []
    mid = None
    mline = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline += 1
        if line.startswith("a=mid:"):
            mid = line[6:]
        if line.startswith("a=candidate:"):
            cands.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": mline})
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n", cands


async def offer_with_trickle(j, handle, pc, body):
    """Sends body + JSEP offer; with --trickle, candidates go as "trickle" messages."""
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    if ARGS.trickle:
        sdp, cands = strip_candidates(sdp)
    reply = await j.message(handle, body, {"type": "offer", "sdp": sdp})
    if ARGS.trickle:
        for c in cands:
            await j.ack({"janus": "trickle", "handle_id": handle, "candidate": c})
    # Tell Janus no more candidates come (aiortc gathers all before the offer).
    await j.ack({"janus": "trickle", "handle_id": handle, "candidate": {"completed": True}})
    return reply


async def publish(j, room, display):
    """Attach + join as publisher + configure with an offer; returns after webrtcup and
    Janus's first "media receiving" for video (from then on the feed is subscribable)."""
    h = await j.attach()
    r = await j.message(h, {"request": "join", "ptype": "publisher", "room": room,
                            "display": display})
    d = r["plugindata"]["data"]
    assert d["videoroom"] == "joined", r
    feed, private_id = d["id"], d["private_id"]
    log(f"{display}: handle {h} joined: feed {feed} private_id {private_id} "
        f"publishers already there: {json.dumps(d['publishers'])}")

    pc = RTCPeerConnection()
    pc.addTransceiver(SmallVideo(seed=sum(map(ord, display))), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.on("connectionstatechange", lambda: log(f"{display} pc:", pc.connectionState))

    r = await offer_with_trickle(j, h, pc, {"request": ARGS.publish_request, "audio": True, "video": True})
    d = r["plugindata"]["data"]
    assert d.get("configured") == "ok", r
    await pc.setRemoteDescription(RTCSessionDescription(r["jsep"]["sdp"], r["jsep"]["type"]))
    log(f"{display}: configured; janus candidates:",
        re.findall(r"a=candidate:\S+ \d \w+ \d+ (\S+ \d+) typ (\w+)", r["jsep"]["sdp"]))

    if ARGS.early_subscribe:
        # Pitfall demo: subscribe before the publisher's PeerConnection is up.
        h0 = await j.attach()
        r0 = await j.message(h0, {"request": "join", "ptype": "subscriber", "room": room,
                                  "streams": [{"feed": feed}]})
        log("EARLY subscribe answer:", json.dumps(r0["plugindata"]["data"]))
        await j.request({"janus": "detach", "handle_id": h0})

    await j.next_event(h, lambda m: m["janus"] == "webrtcup", timeout=15)
    log(f"{display}: webrtcup")
    await j.next_event(h, lambda m: m["janus"] == "media" and m.get("type") == "video"
                       and m.get("receiving"), timeout=15)
    log(f"{display}: janus receiving its video")
    return h, pc, feed, private_id


async def answer(j, sh, pc, offer_msg, room):
    """Answers a subscriber offer from Janus with "start"."""
    await pc.setRemoteDescription(RTCSessionDescription(offer_msg["jsep"]["sdp"],
                                                        offer_msg["jsep"]["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    sdp = pc.localDescription.sdp
    cands = []
    if ARGS.trickle:
        sdp, cands = strip_candidates(sdp)
    r = await j.message(sh, {"request": "start", "room": room}, {"type": "answer", "sdp": sdp})
    assert r["plugindata"]["data"].get("started") == "ok", r
    for c in cands:
        await j.ack({"janus": "trickle", "handle_id": sh, "candidate": c})
    await j.ack({"janus": "trickle", "handle_id": sh, "candidate": {"completed": True}})


async def main():
    # Client ICE: aiortc's host candidates = exactly --bind (aioice skips 127.0.0.1 itself).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [ARGS.bind]
    install_packet_taps()

    transcript = open(ARGS.transcript, "w") if ARGS.transcript else None
    ws = await websockets.connect(ARGS.url, subprotocols=["janus-protocol"], max_size=None)
    j = Janus(ws, transcript)

    t_start = time.monotonic()
    session = await j.create_session()
    log("session", session)

    # ---- room (created through the first handle; any videoroom handle can do it) -----
    ph, ppc, feed, private_id = None, None, None, None
    h_admin = await j.attach()
    room = ARGS.room or random.randint(10_000_000, 99_999_999)
    r = await j.message(h_admin, {"request": "create", "room": room, "description": "load",
                                  "publishers": ARGS.publishers, "bitrate": ARGS.bitrate,
                                  "fir_freq": 0, "videocodec": "vp8", "audiocodec": "opus",
                                  "notify_joining": False, "permanent": False})
    assert r["janus"] == "success" and r["plugindata"]["data"]["videoroom"] == "created", r
    log("room", room, "created")

    # ---- publisher 1 -------------------------------------------------------------------
    ph, ppc, feed, private_id = await publish(j, room, "pub-1")
    log("publisher 1 up after", round(time.monotonic() - t_start, 3), "s")

    # ---- subscriber (one handle = one PeerConnection, any number of feeds) ----------
    sh = await j.attach()
    for attempt in range(20):
        r = await j.message(sh, {"request": "join", "ptype": "subscriber", "room": room,
                                 "streams": [{"feed": feed}],   # all of that feed's streams
                                 "private_id": private_id})      # optional: ties to our publisher
        if "jsep" in r:
            break
        log("subscribe attempt", attempt, "no jsep:", json.dumps(r["plugindata"]["data"]))
        await asyncio.sleep(0.25)
    else:
        raise SystemExit("subscriber never got an offer")
    d = r["plugindata"]["data"]
    assert d["videoroom"] == "attached", r
    log("subscriber attached, streams:", json.dumps(d["streams"]))

    spc = RTCPeerConnection()
    counts = {}       # track id -> frames
    kinds = {}
    first = {}

    async def consume(track):
        while True:
            try:
                await track.recv()
            except Exception:
                return
            counts[track.id] = counts.get(track.id, 0) + 1
            first.setdefault(track.id, time.monotonic())

    @spc.on("track")
    def on_track(track):
        kinds[track.id] = track.kind
        log("subscriber got track", track.kind, track.id)
        asyncio.ensure_future(consume(track))

    spc.on("connectionstatechange", lambda: log("subscriber pc:", spc.connectionState))
    await answer(j, sh, spc, r, room)
    await j.next_event(sh, lambda m: m["janus"] == "webrtcup", timeout=15)
    t_sub = time.monotonic()
    log("subscriber webrtcup after", round(t_sub - t_start, 3), "s")

    # ---- publisher 2 joins: pub-1 is told; the subscriber adds it (renegotiation) -------
    ph2 = ppc2 = None
    if ARGS.second_publisher:
        ph2, ppc2, feed2, _ = await publish(j, room, "pub-2")
        ev = await j.next_event(ph, lambda m: "publishers" in m.get("plugindata", {})
                                .get("data", {}), timeout=10)
        log("pub-1 notified:", json.dumps(ev["plugindata"]["data"]))
        r = await j.message(sh, {"request": "subscribe", "streams": [{"feed": feed2}]})
        d = r["plugindata"]["data"]
        assert d["videoroom"] == "updated" and "jsep" in r, r
        log("subscriber updated, streams:", json.dumps(d["streams"]))
        await answer(j, sh, spc, r, room)

    await asyncio.sleep(ARGS.seconds)
    stats = await spc.getStats()
    rtp = {s.kind + "/" + str(s.ssrc): (s.packetsReceived, s.packetsLost)
           for s in stats.values() if s.type == "inbound-rtp"}
    log("subscriber frames per track:", {kinds[k] + "/" + k[:8]: v for k, v in counts.items()})
    log("inbound-rtp (packetsReceived, packetsLost):", rtp)
    for k, t in first.items():
        log(f"first {kinds[k]} {k[:8]} after subscriber webrtcup: {t - t_sub:.3f} s")

    packet_report()

    # ---- teardown -------------------------------------------------------------------
    r = await j.message(sh, {"request": "leave"})
    log("subscriber leave ->", r["plugindata"]["data"])
    r = await j.message(ph, {"request": "unpublish"})
    log("publisher unpublish ->", r["plugindata"]["data"])
    r = await j.message(ph, {"request": "leave"})
    log("publisher leave ->", r["plugindata"]["data"])
    r = await j.message(h_admin, {"request": "destroy", "room": room})
    log("room destroy ->", r["plugindata"]["data"])
    for h in (sh, ph, ph2, h_admin):
        if h:
            await j.request({"janus": "detach", "handle_id": h})
    for pc in (ppc, ppc2, spc):
        if pc:
            await pc.close()
    await j.close()

    video = [v for k, v in counts.items() if kinds[k] == "video"]
    audio = [v for k, v in counts.items() if kinds[k] == "audio"]
    want = 2 if ARGS.second_publisher else 1
    ok = (len(video) == want and min(video) >= ARGS.min_frames
          and len(audio) == want and min(audio) > 0)
    print("VERIFY", "OK" if ok else "FAILED", json.dumps({"video": video, "audio": audio}),
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="ws://127.0.0.1:8188")
    ap.add_argument("--bind", default="127.0.0.1", help="client ICE host address")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--room", type=int, default=0)
    ap.add_argument("--bitrate", type=int, default=1_000_000)
    ap.add_argument("--publishers", type=int, default=120)
    ap.add_argument("--keepalive", type=float, default=25)
    ap.add_argument("--min-frames", type=int, default=30)
    ap.add_argument("--trickle", action="store_true",
                    help="send candidates as trickle messages instead of inside the SDP")
    ap.add_argument("--early-subscribe", action="store_true",
                    help="also try subscribing before the publisher is up (pitfall demo)")
    ap.add_argument("--second-publisher", action="store_true",
                    help="a second publisher joins; the subscriber adds it with 'subscribe'")
    ap.add_argument("--publish-request", default="configure", choices=["configure", "publish"],
                    help="request that carries the publisher's offer")
    ap.add_argument("--transcript", help="write every JSON message (JSONL) here")
    ARGS = ap.parse_args()
    try:
        rc = asyncio.run(main())
    except (asyncio.TimeoutError, TimeoutError):
        import traceback
        traceback.print_exc()
        print("VERIFY FAILED: timed out (ICE? see the last step logged above)", flush=True)
        rc = 1
    sys.exit(rc)
