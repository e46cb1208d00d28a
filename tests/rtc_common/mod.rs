//! Harness of the live-video tests: the real server (REST + `/rtc` + SFU) in-process on
//! 127.0.0.1 over a fresh SQLite database, wired exactly like `theraroom serve`, and
//! helpers around the protocol client of `loadtests/` (`theraroom_load`).
//!
//! Media tests must run inside a network namespace that has only `lo` (see
//! scripts/test.sh); everything binds to 127.0.0.1 anyway.

#![allow(dead_code)]

pub mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use signaling::HubConfig;
use theraroom::auth::JwtKeys;
use theraroom::demo::DemoData;
use theraroom::rtc::{HubControl, StoreGatekeeper};
use theraroom::state::AppState;
use theraroom::store::participants::Participant as ParticipantRow;
use theraroom::store::Store;
use theraroom::turn::TurnIssuer;
use theraroom_load::rest::{self, CreatedSession, GuestToken};
use theraroom_load::{
    ClientError, CloseInfo, JoinOptions, Kind, MediaRate, Participant, Publish, ServerMessage,
};
use tokio::task::JoinHandle;

/// Reconnect grace of the server under test (production: 30 s).
pub const GRACE: Duration = Duration::from_secs(2);
/// Minimum fraction of the packets sent in the measured window that must arrive.
pub const MIN_DELIVERY: f64 = 0.90;
/// Media rate of the tests: 100 video + 50 audio packets per second per publisher.
pub const RATE: MediaRate = MediaRate {
    video_pps: 100,
    video_bytes: 800,
    audio_pps: 50,
    audio_bytes: 120,
};

/// The media tests share two cores with each other: one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Logs to the test output: warnings, minus the per-packet drop lines of the webrtc
/// driver (RUST_LOG overrides).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,webrtc::peer_connection::driver=off,rtc_ice::agent=error,rtc_dtls::config=error")
            }),
        )
        .with_test_writer()
        .try_init();
}

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `ws://127.0.0.1:port/rtc`.
    pub ws: String,
    /// Its database.
    pub store: Store,
    /// Its token keys (to mint user tokens).
    pub jwt: JwtKeys,
    /// Demo organization, admin, two therapists and a client, with tokens.
    pub demo: DemoData,
    /// The media plane (for its counters).
    pub sfu: sfu::Sfu,
    /// The signaling hub (for its room and connection counts).
    pub hub: signaling::Hub,
    dir: PathBuf,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts the server on a fresh SQLite database in a temporary directory.
    pub async fn start() -> Server {
        Self::start_with(HubConfig {
            reconnect_grace: GRACE,
            ..HubConfig::default()
        })
        .await
    }

    /// [`Server::start`] with other hub settings (limits, deadlines).
    pub async fn start_with(config: HubConfig) -> Server {
        let dir =
            std::env::temp_dir().join(format!("theraroom-rtc-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("open sqlite");
        store.migrate().await.expect("migrate");
        let jwt = JwtKeys::new(b"rtc-test-jwt-secret-0123456789abcdef");
        // No TURN URIs: `joined.ice_servers` is empty and clients use host candidates.
        let turn = TurnIssuer::new(
            b"rtc-test-turn-secret-0123456789abcdef".to_vec(),
            Vec::new(),
            600,
        );
        let demo = theraroom::demo::ensure_demo(&store, &jwt, 3600, "rtc-test-password")
            .await
            .expect("demo data");

        let sfu = sfu::Sfu::new(sfu::SfuConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..sfu::SfuConfig::default()
        })
        .expect("sfu");
        let hub = theraroom::rtc::hub(
            sfu.clone(),
            StoreGatekeeper {
                store: store.clone(),
                jwt: jwt.clone(),
                turn: turn.clone(),
            },
            config,
        );
        let state = AppState {
            store: store.clone(),
            jwt: jwt.clone(),
            turn,
            live: Arc::new(HubControl(hub.clone())),
            auth_guard: theraroom::auth::AuthGuard::default(),
            accounts: Default::default(),
        };
        let extra = theraroom::rtc::routes(hub.clone(), None).merge(theraroom::metrics::routes());
        let static_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        // Every test client comes from 127.0.0.1: REST limits far above any test's use.
        let rate = theraroom::api::rate_limit::Rate {
            count: 100_000,
            per: Duration::from_secs(60),
        };
        let options = theraroom::app::HttpOptions {
            limiters: theraroom::api::RateLimiters::new(&theraroom::api::RateLimits {
                guest_tokens: rate,
                share_lookups: rate,
                session_creation: rate,
                trust_proxy: false,
            }),
            headers: Default::default(),
        };
        let app = theraroom::app::build_with(state, static_dir, extra, &options);
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
                .await
                .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            // Like `theraroom serve`: peer addresses feed the per-address connection cap.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app).await.expect("serve");
        });
        Server {
            base: format!("http://{addr}"),
            ws: format!("ws://{addr}/rtc"),
            store,
            jwt,
            demo,
            sfu,
            hub,
            dir,
            task,
        }
    }

    /// First demo therapist: (user id, token).
    pub fn therapist(&self) -> (&str, &str) {
        (&self.demo.therapists[0].id, &self.demo.therapists[0].token)
    }

    /// A session of `therapist_token`'s therapist, created over REST.
    pub async fn session(&self, therapist_token: &str, max_participants: u32) -> CreatedSession {
        rest::create_session(
            &self.base,
            therapist_token,
            "Live video test",
            max_participants,
        )
        .await
        .expect("create session")
    }

    /// A guest token through the share link, over REST.
    pub async fn guest(&self, share_token: &str, name: &str) -> GuestToken {
        rest::guest_token(&self.base, share_token, name)
            .await
            .expect("guest token")
    }

    /// A REST call; returns (status, JSON body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let resp = rest::request(&self.base, method, path, Some(token), body.as_ref())
            .await
            .expect("http request");
        (resp.status, resp.json())
    }

    /// Participant rows of a session, from the database.
    pub async fn rows(&self, session_id: &str) -> Vec<ParticipantRow> {
        self.store
            .participants(session_id)
            .await
            .expect("participants")
    }

    /// Stops the server and removes its database.
    pub async fn stop(self) {
        self.task.abort();
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Joins with the defaults of the tests (127.0.0.1, `publish`).
pub async fn join(
    server: &Server,
    session_id: &str,
    token: &str,
    publish: Publish,
) -> Result<Participant, ClientError> {
    let mut opts = JoinOptions::new(&server.ws, session_id, token);
    opts.publish = publish;
    Participant::join(opts).await
}

/// Expects a refusal and returns (error code, close frame).
pub async fn refused(
    server: &Server,
    session_id: &str,
    token: &str,
) -> (String, Option<CloseInfo>) {
    match join(server, session_id, token, Publish::NOTHING).await {
        Err(ClientError::Refused { code, close, .. }) => (code, close),
        Err(other) => panic!("expected a refusal, got error {other}"),
        Ok(p) => {
            let id = p.participant_id().to_owned();
            p.close().await;
            panic!("expected a refusal, but {id} joined")
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Same as [`eventually`] for a condition that needs to await (database reads).
pub async fn eventually_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True when `sub` receives both an audio and a video track of `publisher` with packets
/// of this tool on each.
pub fn receiving_from(sub: &Participant, publisher: &str) -> bool {
    let tracks = sub.received_from(publisher);
    [Kind::Audio, Kind::Video].iter().all(|k| {
        tracks
            .iter()
            .any(|t| t.kind == *k && !t.ended && t.unique > 0)
    })
}

/// The live (not ended) track of `kind` that `sub` receives from `publisher`.
pub fn track_from(
    sub: &Participant,
    publisher: &str,
    kind: Kind,
) -> theraroom_load::RemoteTrackStats {
    sub.received_from(publisher)
        .into_iter()
        .filter(|t| t.kind == kind && !t.ended)
        .max_by_key(|t| t.first_packet_at)
        .unwrap_or_else(|| {
            panic!(
                "{} receives no {kind:?} track of {publisher}",
                sub.participant_id()
            )
        })
}

/// Track ids that `observer` saw announced for `publisher` in `track_published`,
/// with their kind; asserts that each announced stream id is the publisher's id.
pub fn announced(observer: &Participant, publisher: &str) -> Vec<(String, Kind)> {
    observer
        .event_log()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::TrackPublished {
                participant_id,
                track,
            } if participant_id == publisher => {
                assert_eq!(
                    track.stream_id, publisher,
                    "announced stream_id is the publisher's id"
                );
                Some((track.track_id, track.kind))
            }
            _ => None,
        })
        .collect()
}

/// One measured direction: what `publisher` sent of `kind` and what `subscriber` got.
#[derive(Debug)]
pub struct Delivery {
    pub label: String,
    pub sent: u64,
    pub received: u64,
    pub duplicates: u64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Receiver's view of the whole track: (index range, missing inside it).
    pub track: (Option<(u32, u32)>, u64),
}

impl Delivery {
    pub fn ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.received as f64 / self.sent as f64
        }
    }
}

/// Measures delivery between every (publisher, subscriber) pair of `pairs` over a
/// window of `window` while media flows: counters are read before and after, with a
/// drain pause after the publishers stop. Leaves the media stopped.
pub async fn measure(pairs: &[(&Participant, &Participant)], window: Duration) -> Vec<Delivery> {
    let kinds = [Kind::Video, Kind::Audio];
    // (sent, received, track id) per pair and kind; the same track is read afterwards.
    let before: Vec<(u64, u64, String)> = pairs
        .iter()
        .flat_map(|(p, s)| {
            kinds.iter().map(move |k| {
                let sent = p.sent_of(*k).map_or(0, |x| x.packets);
                let t = track_from(s, p.participant_id(), *k);
                (sent, t.unique, t.track_id)
            })
        })
        .collect();
    tokio::time::sleep(window).await;
    for (p, _) in pairs {
        p.stop_media();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut out = Vec::new();
    let mut i = 0;
    for (p, s) in pairs {
        for k in kinds {
            let sent = p.sent_of(k).map_or(0, |x| x.packets);
            let (sent0, got0, track_id) = &before[i];
            let (sent0, got0) = (*sent0, *got0);
            i += 1;
            let t = s
                .received_track(track_id)
                .expect("measured track still known");
            let d = Delivery {
                label: format!(
                    "{} -> {} {k:?} ({})",
                    p.participant_id(),
                    s.participant_id(),
                    t.track_id
                ),
                sent: sent - sent0,
                received: t.unique - got0,
                duplicates: t.duplicates,
                p50_us: t.latency.quantile_us(0.5),
                p99_us: t.latency.quantile_us(0.99),
                track: (t.index_range, t.missing()),
            };
            eprintln!(
                "[delivery] {}: {}/{} packets ({:.1}%), {} duplicates, latency p50 {:?} µs p99 {:?} µs, \
                 track indices {:?} with {} missing",
                d.label,
                d.received,
                d.sent,
                d.ratio() * 100.0,
                d.duplicates,
                d.p50_us,
                d.p99_us,
                d.track.0,
                d.track.1
            );
            out.push(d);
        }
    }
    out
}
