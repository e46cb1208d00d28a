//! Janus VideoRoom driver: the same scenarios through Janus's own WebSocket API
//! (subprotocol `janus-protocol`), following loadtests/janus/README.md.
//!
//! Per simulated participant, like a browser on the Janus demo: one WebSocket and one
//! session; a publisher handle that joins the room (everyone joins as a publisher, to
//! get the `publishers` notifications) and, when publishing, `configure`s with our
//! offer; one multistream subscriber handle/peer connection that `join`s with the feeds
//! known so far and adds later ones with `subscribe` (renegotiation), answering each
//! offer with `start`. That mirrors TheraRoom's two connections per participant.
//! Candidates are trickled; keepalive every 20 s. Janus asks publishers for a keyframe
//! itself when a subscriber starts, so `request_keyframe` is a no-op here.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use theraroom_load::client::protocol::CandidateInit;
use theraroom_load::client::standalone::StandalonePc;
use theraroom_load::engine::{EnginePc, EngineStats, PcEvent};
use theraroom_load::{Publish, RemoteTrackStats, SentStats};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::backend::{Backend, Client, Media, Peer, RoomHandle};
use super::server::ServerCounters;

/// Process id of a running `janus`, if any.
pub fn pidof_janus() -> Option<u32> {
    let out = std::process::Command::new("pidof")
        .arg("janus")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One Janus WebSocket: requests matched to replies by transaction, everything else
/// (unsolicited events) on a channel.
struct Conn {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next: AtomicU64,
    closed: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Conn {
    async fn open(url: &str) -> Result<(Conn, mpsc::UnboundedReceiver<Value>), String> {
        let mut req = url
            .into_client_request()
            .map_err(|e| format!("bad Janus URL: {e}"))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("janus websocket: {e}"))?;
        let (mut write, mut read) = ws.split();
        let (out, mut queue) = mpsc::unbounded_channel::<Message>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(async move {
            while let Some(m) = queue.recv().await {
                if write.send(m).await.is_err() {
                    break;
                }
            }
            let _ = write.close().await;
        });
        let reader = {
            let pending = Arc::clone(&pending);
            let closed = Arc::clone(&closed);
            tokio::spawn(async move {
                while let Some(Ok(m)) = read.next().await {
                    let Message::Text(text) = m else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    if v["janus"] == "ack" {
                        continue;
                    }
                    let waiter = v["transaction"]
                        .as_str()
                        .and_then(|t| pending.lock().unwrap_or_else(|e| e.into_inner()).remove(t));
                    match waiter {
                        Some(w) => {
                            let _ = w.send(v);
                        }
                        None => {
                            let _ = events_tx.send(v);
                        }
                    }
                }
                closed.store(true, Ordering::Relaxed);
            })
        };
        let conn = Conn {
            out,
            pending,
            next: AtomicU64::new(1),
            closed,
            tasks: vec![writer, reader],
        };
        Ok((conn, events))
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends without waiting for anything (keepalive, trickle).
    fn send(&self, mut msg: Value) {
        msg["transaction"] = json!(self.transaction());
        let _ = self.out.send(Message::text(msg.to_string()));
    }

    /// Sends and waits for the reply that is not an ack (success, event, error).
    async fn call(&self, mut msg: Value) -> Result<Value, String> {
        let t = self.transaction();
        msg["transaction"] = json!(t);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.clone(), tx);
        self.out
            .send(Message::text(msg.to_string()))
            .map_err(|_| "janus websocket closed".to_string())?;
        let reply = tokio::time::timeout(Duration::from_secs(15), rx)
            .await
            .map_err(|_| format!("janus: no reply to {}", msg["janus"]))?
            .map_err(|_| "janus websocket closed".to_string())?;
        if reply["janus"] == "error" {
            return Err(format!("janus error: {}", reply["error"]));
        }
        Ok(reply)
    }

    async fn create_session(&self) -> Result<u64, String> {
        let r = self.call(json!({"janus": "create"})).await?;
        r["data"]["id"].as_u64().ok_or("no session id".into())
    }

    async fn attach(&self, session: u64) -> Result<u64, String> {
        let r = self
            .call(json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "session_id": session}))
            .await?;
        r["data"]["id"].as_u64().ok_or("no handle id".into())
    }

    /// A videoroom request; returns (plugin data, jsep) or the plugin's error.
    async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, Value), String> {
        let mut msg =
            json!({"janus": "message", "session_id": session, "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let r = self.call(msg).await?;
        let data = r["plugindata"]["data"].clone();
        if let Some(code) = data["error_code"].as_u64() {
            return Err(format!("videoroom {code}: {}", data["error"]));
        }
        Ok((data, r["jsep"].clone()))
    }

    fn keepalive(self: &Arc<Self>, session: u64) -> JoinHandle<()> {
        let conn = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match conn.upgrade() {
                    Some(c) => c.send(json!({"janus": "keepalive", "session_id": session})),
                    None => break,
                }
            }
        })
    }
}

/// Janus through its WebSocket API.
pub struct JanusBackend {
    url: String,
    pid: u32,
    client: Client,
    admin: Arc<Conn>,
    session: u64,
    handle: u64,
    _keepalive: JoinHandle<()>,
}

impl JanusBackend {
    /// Connects an admin session (to create rooms) to Janus at `ws_url`; participants
    /// join with `client`.
    pub async fn connect(ws_url: &str, pid: u32, client: Client) -> Result<JanusBackend, String> {
        let (conn, _events) = Conn::open(ws_url).await?;
        let conn = Arc::new(conn);
        let session = conn.create_session().await?;
        let handle = conn.attach(session).await?;
        let keepalive = conn.keepalive(session);
        Ok(JanusBackend {
            url: ws_url.to_owned(),
            pid,
            client,
            admin: conn,
            session,
            handle,
            _keepalive: keepalive,
        })
    }
}

#[async_trait::async_trait]
impl Backend for JanusBackend {
    fn name(&self) -> &'static str {
        "janus"
    }

    fn client(&self) -> String {
        self.client.label()
    }

    fn engine_stats(&self) -> Option<EngineStats> {
        self.client.engine_stats()
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    async fn create_room(&self, size: usize) -> Result<RoomHandle, String> {
        let room = u64::from(rand::random::<u32>() >> 1) + 1;
        let (data, _) = self
            .admin
            .message(
                self.session,
                self.handle,
                json!({"request": "create", "room": room, "description": "load",
                       "publishers": size + 1, "bitrate": 1_000_000, "fir_freq": 0,
                       "videocodec": "vp8", "audiocodec": "opus",
                       "notify_joining": false, "permanent": false}),
                None,
            )
            .await?;
        let id = data["room"].as_u64().unwrap_or(room);
        Ok(RoomHandle {
            id: id.to_string(),
            secret: String::new(),
        })
    }

    async fn join(
        &self,
        room: &RoomHandle,
        index: usize,
        publish: Publish,
    ) -> Result<(Arc<dyn Peer>, Instant), String> {
        let room: u64 = room.id.parse().map_err(|_| "bad room id")?;
        let start = Instant::now();
        let peer = JanusPeer::join(&self.url, &self.client, room, index, publish).await?;
        Ok((peer, start))
    }

    async fn counters(&self) -> Option<ServerCounters> {
        None
    }
}

const BIND: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A client peer connection of either stack, so Janus runs with the same client as
/// TheraRoom.
enum AnyPc {
    Webrtc(StandalonePc),
    Engine(EnginePc),
}

/// Where a connection's local candidates come from.
enum Candidates {
    Webrtc(mpsc::UnboundedReceiver<CandidateInit>),
    Engine(mpsc::UnboundedReceiver<PcEvent>),
}

impl Candidates {
    async fn recv(&mut self) -> Option<CandidateInit> {
        match self {
            Candidates::Webrtc(rx) => rx.recv().await,
            Candidates::Engine(rx) => loop {
                if let PcEvent::LocalCandidate(c) = rx.recv().await? {
                    return Some(c);
                }
            },
        }
    }
}

impl AnyPc {
    async fn publisher(client: &Client, publish: Publish) -> Result<AnyPc, String> {
        Ok(match client {
            Client::Engine(e) => AnyPc::Engine(
                e.publisher(BIND, publish)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Client::Webrtc => AnyPc::Webrtc(
                StandalonePc::publisher(BIND, publish)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        })
    }

    async fn subscriber(client: &Client) -> Result<AnyPc, String> {
        Ok(match client {
            Client::Engine(e) => {
                AnyPc::Engine(e.subscriber(BIND).await.map_err(|e| e.to_string())?)
            }
            Client::Webrtc => AnyPc::Webrtc(
                StandalonePc::subscriber(BIND)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        })
    }

    async fn offer(&self) -> Result<String, String> {
        match self {
            AnyPc::Webrtc(p) => p.offer().await,
            AnyPc::Engine(p) => p.offer().await,
        }
        .map_err(|e| e.to_string())
    }

    async fn answer(&self, sdp: &str) -> Result<String, String> {
        match self {
            AnyPc::Webrtc(p) => p.answer(sdp).await,
            AnyPc::Engine(p) => p.answer(sdp).await,
        }
        .map_err(|e| e.to_string())
    }

    async fn apply_answer(&self, sdp: &str) -> Result<(), String> {
        match self {
            AnyPc::Webrtc(p) => p.apply_answer(sdp).await,
            AnyPc::Engine(p) => p.apply_answer(sdp).await,
        }
        .map_err(|e| e.to_string())
    }

    fn take_candidates(&self) -> Option<Candidates> {
        match self {
            AnyPc::Webrtc(p) => p.take_candidates().map(Candidates::Webrtc),
            AnyPc::Engine(p) => p.take_events().map(Candidates::Engine),
        }
    }

    fn sent(&self) -> Vec<SentStats> {
        match self {
            AnyPc::Webrtc(p) => p.sent(),
            AnyPc::Engine(p) => p.sent(),
        }
    }

    fn received(&self) -> Vec<RemoteTrackStats> {
        match self {
            AnyPc::Webrtc(p) => p.received(),
            AnyPc::Engine(p) => p.received(),
        }
    }

    fn start(&self, media: &Media) {
        match (self, media) {
            (AnyPc::Webrtc(p), Media::Clips(c)) => p.start_clips(c),
            (AnyPc::Webrtc(p), Media::Synthetic(r)) => p.start_media(*r),
            (AnyPc::Engine(p), Media::Clips(c)) => p.start_clips(c),
            (AnyPc::Engine(p), Media::Synthetic(r)) => p.start_media(*r),
        }
    }

    async fn close(&self) {
        match self {
            AnyPc::Webrtc(p) => p.close().await,
            AnyPc::Engine(p) => p.close().await,
        }
    }
}

struct JanusPeer {
    feed: u64,
    conn: Arc<Conn>,
    session: u64,
    pub_handle: u64,
    publisher: Option<AnyPc>,
    subscriber: Arc<Mutex<Option<Arc<AnyPc>>>>,
    /// Subscriber-side SSRC (and mid) → publisher feed id, from the offers.
    ssrc_feed: Arc<Mutex<HashMap<u32, u64>>>,
    mid_feed: Arc<Mutex<HashMap<String, u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for JanusPeer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Sends our candidates of one handle as `trickle`, then `completed`.
fn trickle(conn: &Arc<Conn>, session: u64, handle: u64, pc: &AnyPc) -> Option<JoinHandle<()>> {
    let mut rx = pc.take_candidates()?;
    let conn = Arc::downgrade(conn);
    Some(tokio::spawn(async move {
        let mut completed = false;
        loop {
            let wait = if completed {
                Duration::from_secs(3600)
            } else {
                Duration::from_millis(300)
            };
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(c)) => {
                    let Some(conn) = conn.upgrade() else { break };
                    conn.send(json!({"janus": "trickle", "session_id": session,
                                     "handle_id": handle, "candidate": c}));
                }
                Ok(None) => break,
                Err(_) if !completed => {
                    completed = true;
                    let Some(conn) = conn.upgrade() else { break };
                    conn.send(json!({"janus": "trickle", "session_id": session,
                                     "handle_id": handle, "candidate": {"completed": true}}));
                }
                Err(_) => {}
            }
        }
    }))
}

/// SSRC → mid of every m-section of an SDP.
fn sdp_ssrcs(sdp: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut mid: Option<String> = None;
    let mut ssrcs = Vec::new();
    let flush = |mid: &Option<String>, ssrcs: &mut Vec<u32>, out: &mut Vec<(u32, String)>| {
        if let Some(m) = mid {
            for s in ssrcs.drain(..) {
                out.push((s, m.clone()));
            }
        }
        ssrcs.clear();
    };
    for line in sdp.lines() {
        let line = line.trim();
        if line.starts_with("m=") {
            flush(&mid, &mut ssrcs, &mut out);
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(rest) = line.strip_prefix("a=ssrc:") {
            if let Some(Ok(s)) = rest.split_whitespace().next().map(str::parse::<u32>) {
                if !ssrcs.contains(&s) {
                    ssrcs.push(s);
                }
            }
        }
    }
    flush(&mid, &mut ssrcs, &mut out);
    out
}

struct SubState {
    client: Client,
    conn: Arc<Conn>,
    session: u64,
    room: u64,
    handle: Option<u64>,
    pc: Arc<Mutex<Option<Arc<AnyPc>>>>,
    subscribed: HashSet<u64>,
    ssrc_feed: Arc<Mutex<HashMap<u32, u64>>>,
    mid_feed: Arc<Mutex<HashMap<String, u64>>>,
    trickle: Option<JoinHandle<()>>,
}

impl SubState {
    /// Subscribes to `feeds` (join the first time, `subscribe` after), answers the offer
    /// and `start`s.
    async fn add(&mut self, feeds: Vec<u64>) -> Result<(), String> {
        let feeds: Vec<u64> = feeds
            .into_iter()
            .filter(|f| !self.subscribed.contains(f))
            .collect();
        if feeds.is_empty() {
            return Ok(());
        }
        let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
        let (handle, first) = match self.handle {
            Some(h) => (h, false),
            None => {
                let h = self.conn.attach(self.session).await?;
                self.handle = Some(h);
                let pc = AnyPc::subscriber(&self.client).await?;
                *self.pc.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(pc));
                (h, true)
            }
        };
        let body = if first {
            json!({"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams})
        } else {
            json!({"request": "subscribe", "streams": streams})
        };
        // A feed whose publisher is not up yet answers 428: retry, bounded.
        let mut tries = 0;
        let (data, jsep) = loop {
            match self
                .conn
                .message(self.session, handle, body.clone(), None)
                .await
            {
                Ok(r) => break r,
                Err(e) if e.contains("428") && tries < 40 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(streams) = data["streams"].as_array() {
            let mut mids = self.mid_feed.lock().unwrap_or_else(|e| e.into_inner());
            for s in streams {
                if let (Some(mid), Some(feed)) = (s["mid"].as_str(), s["feed_id"].as_u64()) {
                    mids.insert(mid.to_owned(), feed);
                }
            }
        }
        let offer = jsep["sdp"].as_str().ok_or("subscribe: no offer")?;
        {
            let mids = self.mid_feed.lock().unwrap_or_else(|e| e.into_inner());
            let mut ssrcs = self.ssrc_feed.lock().unwrap_or_else(|e| e.into_inner());
            for (ssrc, mid) in sdp_ssrcs(offer) {
                if let Some(f) = mids.get(&mid) {
                    ssrcs.insert(ssrc, *f);
                }
            }
        }
        let pc = self
            .pc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or("no subscriber pc")?;
        let answer = pc.answer(offer).await?;
        if self.trickle.is_none() {
            self.trickle = trickle(&self.conn, self.session, handle, &pc);
        }
        self.conn
            .message(
                self.session,
                handle,
                json!({"request": "start", "room": self.room}),
                Some(json!({"type": "answer", "sdp": answer})),
            )
            .await?;
        self.subscribed.extend(feeds);
        Ok(())
    }
}

fn feeds_of(list: &Value, own: u64) -> Vec<u64> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_u64())
                .filter(|id| *id != own)
                .collect()
        })
        .unwrap_or_default()
}

impl JanusPeer {
    async fn join(
        url: &str,
        client: &Client,
        room: u64,
        index: usize,
        publish: Publish,
    ) -> Result<Arc<dyn Peer>, String> {
        let (conn, mut events) = Conn::open(url).await?;
        let conn = Arc::new(conn);
        let session = conn.create_session().await?;
        let mut tasks = vec![conn.keepalive(session)];
        let pub_handle = conn.attach(session).await?;
        let (joined, _) = conn
            .message(
                session,
                pub_handle,
                json!({"request": "join", "ptype": "publisher", "room": room,
                       "display": format!("load-{index}")}),
                None,
            )
            .await?;
        let feed = joined["id"].as_u64().ok_or("join: no feed id")?;
        let initial = feeds_of(&joined["publishers"], feed);

        let publisher = if publish.audio || publish.video {
            let pc = AnyPc::publisher(client, publish).await?;
            let offer = pc.offer().await?;
            if let Some(t) = trickle(&conn, session, pub_handle, &pc) {
                tasks.push(t);
            }
            let (_, jsep) = conn
                .message(
                    session,
                    pub_handle,
                    json!({"request": "configure", "audio": publish.audio, "video": publish.video}),
                    Some(json!({"type": "offer", "sdp": offer})),
                )
                .await?;
            let answer = jsep["sdp"].as_str().ok_or("configure: no answer")?;
            pc.apply_answer(answer).await?;
            Some(pc)
        } else {
            None
        };

        let subscriber: Arc<Mutex<Option<Arc<AnyPc>>>> = Arc::default();
        let ssrc_feed: Arc<Mutex<HashMap<u32, u64>>> = Arc::default();
        let mid_feed: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut sub = SubState {
            client: client.clone(),
            conn: Arc::clone(&conn),
            session,
            room,
            handle: None,
            pc: Arc::clone(&subscriber),
            subscribed: HashSet::new(),
            ssrc_feed: Arc::clone(&ssrc_feed),
            mid_feed: Arc::clone(&mid_feed),
            trickle: None,
        };
        let errs = Arc::clone(&errors);
        tasks.push(tokio::spawn(async move {
            let mut todo = initial;
            loop {
                if !todo.is_empty() {
                    if let Err(e) = sub.add(std::mem::take(&mut todo)).await {
                        errs.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("janus subscribe: {e}"));
                    }
                }
                let Some(ev) = events.recv().await else { break };
                let mut handle = |ev: &Value| {
                    if ev["sender"].as_u64() == Some(pub_handle) {
                        todo.extend(feeds_of(&ev["plugindata"]["data"]["publishers"], feed));
                    }
                };
                handle(&ev);
                while let Ok(more) = events.try_recv() {
                    handle(&more);
                }
            }
            if let Some(t) = sub.trickle.take() {
                t.abort();
            }
        }));

        Ok(Arc::new(JanusPeer {
            feed,
            conn,
            session,
            pub_handle,
            publisher,
            subscriber,
            ssrc_feed,
            mid_feed,
            errors,
            tasks,
        }))
    }

    fn sub_pc(&self) -> Option<Arc<AnyPc>> {
        self.subscriber
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl Peer for JanusPeer {
    fn id(&self) -> String {
        self.feed.to_string()
    }

    fn sent(&self) -> Vec<SentStats> {
        self.publisher
            .as_ref()
            .map(|p| p.sent())
            .unwrap_or_default()
    }

    fn received(&self) -> Vec<RemoteTrackStats> {
        let Some(pc) = self.sub_pc() else {
            return Vec::new();
        };
        let ssrcs = self
            .ssrc_feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mids = self
            .mid_feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        pc.received()
            .into_iter()
            .map(|mut t| {
                let by_track = t
                    .track_id
                    .split('#')
                    .next()
                    .and_then(|id| id.strip_prefix("janus"))
                    .and_then(|mid| mids.get(mid));
                if let Some(f) = ssrcs.get(&t.ssrc).or(by_track) {
                    t.stream_id = f.to_string();
                }
                t
            })
            .collect()
    }

    fn start_media(&self, media: &Media) {
        if let Some(p) = &self.publisher {
            p.start(media);
        }
    }

    fn request_keyframe(&self, _track_id: &str) {}

    fn subscriber_port(&self) -> Option<u16> {
        None
    }

    fn errors(&self) -> Vec<String> {
        let mut e = self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if self.conn.closed.load(Ordering::Relaxed) {
            e.push("janus websocket closed".into());
        }
        e
    }

    async fn leave(&self) -> Result<(), String> {
        let r = self
            .conn
            .message(
                self.session,
                self.pub_handle,
                json!({"request": "leave"}),
                None,
            )
            .await;
        if let Some(p) = &self.publisher {
            p.close().await;
        }
        if let Some(s) = self.sub_pc() {
            s.close().await;
        }
        let _ = self
            .conn
            .call(json!({"janus": "destroy", "session_id": self.session}))
            .await;
        r.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrcs_by_mid() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=ssrc:111 cname:janus\r\na=ssrc:111 msid:janus janus0\r\na=ssrc:112 cname:janus\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=ssrc:222 cname:janus\r\n";
        assert_eq!(
            sdp_ssrcs(sdp),
            vec![(111, "0".into()), (112, "0".into()), (222, "1".into())]
        );
    }

    #[test]
    fn feeds_skip_own() {
        let list = json!([{"id": 1}, {"id": 2}, {"display": "x"}]);
        assert_eq!(feeds_of(&list, 2), vec![1]);
    }
}
