//! `theraroom-load`: drives a separate TheraRoom (and optionally Janus) server process
//! with simulated WebRTC participants sending real VP8 + Opus, and reports what a
//! browser would get (delivery, latency, join time) and what it costs the server (CPU
//! from /proc, RSS, CPU per forwarded packet). See `loadtests/RESULTS.md`.

mod tool;

/// The rtc client core allocates per packet, as the server's does: the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use theraroom_load::engine::EngineConfig;
use theraroom_load::{ClipSet, MediaRate, Publish};

use tool::backend::{Backend, Client, Media, TheraBackend};
use tool::scenario::{progress, Fleet, JoinPace, Measurement, RoomSpec, AUDIO_ONLY};
use tool::server::TheraServer;

/// Load tests for TheraRoom (and Janus side by side).
#[derive(Debug, Parser)]
#[command(name = "theraroom-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Only the raw UDP relay baseline (no ICE, no SRTP).
    RelayBaseline(RelayArgs),
}

#[derive(Debug, Clone, Args)]
struct RelayArgs {
    /// Sender sockets.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Receiver sockets (each gets every packet).
    #[arg(long, default_value_t = 1)]
    receivers: usize,
    /// Total packets/s offered; 0 = as fast as the sender can.
    #[arg(long, default_value_t = 0.0)]
    pps: f64,
    /// Packet size (bytes).
    #[arg(long, default_value_t = 1200)]
    bytes: usize,
    /// Measurement window (s).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// TheraRoom binary to spawn (fresh data dir, free port, 127.0.0.1).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// An already running TheraRoom (`http://127.0.0.1:8080`); needs --server-pid and
    /// --therapist-token.
    #[arg(long)]
    server_url: Option<String>,
    /// Process id of the running server (CPU and RSS from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Therapist token of the running server (`theraroom demo --json`).
    #[arg(long)]
    therapist_token: Option<String>,
    /// Servers to drive: theraroom, janus, or both.
    #[arg(long, default_value = "theraroom")]
    target: String,
    /// Janus WebSocket URL (see loadtests/janus/README.md).
    #[arg(long, default_value = "ws://127.1.0.1:8188")]
    janus_ws: String,
    /// Janus process id (default: found with `pidof janus`).
    #[arg(long)]
    janus_pid: Option<u32>,
    /// Scenarios, comma-separated: all, one-to-one, group, fanout, audio, storm.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    scenario: Vec<String>,
    /// 1:1 room counts to run (two participants each, both publishing).
    #[arg(long, default_value = "10,25", value_delimiter = ',')]
    rooms: Vec<usize>,
    /// Size of the group room (everyone publishes audio and video).
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Subscriber counts of the one-publisher fan-out (TheraRoom rooms hold ≤ 50).
    #[arg(long, default_value = "20,49", value_delimiter = ',')]
    fanout: Vec<usize>,
    /// Size of the audio-only room (everyone publishes audio).
    #[arg(long, default_value_t = 16)]
    audio_room: usize,
    /// Join storm: joins per second.
    #[arg(long, default_value_t = 20.0)]
    storm_rate: f64,
    /// Join storm: participants (rooms of two).
    #[arg(long, default_value_t = 40)]
    storm_count: usize,
    /// Measurement window per scenario (s).
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Settling time after every track flows, before measuring (s).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Joins in flight while setting a scenario up.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Directory of video.ivf and audio.ogg (made by media/make.sh when missing).
    #[arg(long)]
    media_dir: Option<PathBuf>,
    /// Send synthetic tagged packets instead of real VP8/Opus.
    #[arg(long)]
    synthetic: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Ramp mode: add 1:1 rooms step by step until delivery < 99.5% or p99 > 50 ms.
    #[arg(long)]
    ramp: bool,
    /// Rooms added per ramp step.
    #[arg(long, default_value_t = 5)]
    ramp_step: usize,
    /// Stop the ramp at this many rooms.
    #[arg(long, default_value_t = 100)]
    ramp_max: usize,
    /// Also run the raw UDP relay baseline at the end.
    #[arg(long)]
    relay: bool,
    /// Client stack of the simulated participants: `engine` (sans-IO rtc peer
    /// connections on one loop thread per core) or `webrtc` (webrtc-rs peer connections,
    /// a task and sockets per connection: the client before the engine, for comparison).
    #[arg(long, default_value = "engine")]
    client: String,
    /// Loop threads of the client engine (default: one per available core).
    #[arg(long)]
    engine_threads: Option<usize>,
    /// Client engine: a busy loop turns at most once per this many µs and timers fire up
    /// to this late (latency is still measured from kernel arrival stamps); 0 = turn on
    /// every event.
    #[arg(long, default_value_t = theraroom_load::engine::DEFAULT_COALESCE.as_micros() as u64)]
    engine_coalesce_us: u64,
    /// Publishers send their camera as three simulcast layers (rid q, h, f; engine
    /// client): every subscriber gets one of them. Labels get " simulcast".
    #[arg(long)]
    simulcast: bool,
    /// Group scenario: shape the last member's downlink to this many kbit/s (tc on
    /// `lo`, needs root in the namespace); it is reported apart (its audio delivery and
    /// the video it still gets), and delivery and latency are the others'.
    #[arg(long)]
    constrain_kbit: Option<u32>,
    /// Seconds between shaping the constrained member and measuring (the server's
    /// estimate and allocation settle).
    #[arg(long, default_value_t = 8)]
    constrain_settle: u64,
    /// Several TheraRoom nodes (spawned from --server-bin) sharing one Redis and one
    /// PostgreSQL schema; 1 is the single server. Reports each node's CPU and the relay
    /// of signaling through nodes that do not hold the room (see --routing).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// With --nodes: how participants pick a node, comma-separated: `direct` (every
    /// member of a room on its node) and/or `spread` (member k on node home+k: all but
    /// the first relayed).
    #[arg(long, default_value = "direct,spread", value_delimiter = ',')]
    routing: Vec<String>,
    /// With --nodes: PostgreSQL to share (a fresh schema is made in it with `psql`).
    #[arg(
        long,
        default_value = "postgres://root@localhost/test?host=/var/run/postgresql"
    )]
    database_url: String,
    /// With --nodes: a Redis to share (default: a private redis-server on loopback).
    #[arg(long)]
    redis_url: Option<String>,
    /// Smoke mode: 2 rooms of 2 for a few seconds; exits non-zero unless media is
    /// delivered (≥ 95% per subscriber) without errors. Asserts no timing.
    #[arg(long)]
    smoke: bool,
}

fn media(args: &RunArgs) -> Media {
    let fallback = Media::Synthetic(MediaRate {
        video_pps: 60,
        video_bytes: 1000,
        audio_pps: 50,
        audio_bytes: 120,
    });
    if args.synthetic {
        return fallback;
    }
    let dir = args
        .media_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("media"));
    if !dir.join("video.ivf").exists() || !dir.join("audio.ogg").exists() {
        progress(format!("making media files in {}", dir.display()));
        let _ = std::process::Command::new("sh")
            .arg(dir.join("make.sh"))
            .status();
    }
    match ClipSet::load(&dir) {
        Ok(c) => {
            progress(format!(
                "media: VP8 {:.0} kbit/s {:.0} pkt/s ({} frames), Opus {:.0} kbit/s {:.0} pkt/s",
                c.video.bitrate() / 1e3,
                c.video.packet_rate(),
                c.video.frames.len(),
                c.audio.bitrate() / 1e3,
                c.audio.packet_rate()
            ));
            Media::Clips(Arc::new(c))
        }
        Err(e) => {
            progress(format!(
                "WARNING: no media files ({e}); sending synthetic packets instead"
            ));
            fallback
        }
    }
}

/// What the publishers of a normal scenario send: camera and microphone, the camera in
/// simulcast layers with `--simulcast`.
fn both(args: &RunArgs) -> Publish {
    if args.simulcast {
        Publish::SIMULCAST
    } else {
        Publish::BOTH
    }
}

/// A scenario label, marked when the cameras are simulcast.
fn labelled(args: &RunArgs, label: String) -> String {
    if args.simulcast {
        format!("{label} simulcast")
    } else {
        label
    }
}

/// Shapes the last member's downlink to `kbit` and waits for the server to adapt.
async fn constrain_last(
    fleet: &mut Fleet,
    kbit: u32,
    settle: Duration,
) -> Option<tool::shape::Shaper> {
    let last = fleet.last_member()?;
    let Some(port) = fleet.constrain(last) else {
        progress("  --constrain-kbit needs the engine client: not shaped");
        return None;
    };
    match tool::shape::Shaper::limit(port, kbit) {
        Ok(shaper) => {
            progress(format!(
                "  downlink of member {last} (port {}) shaped to {kbit} kbit/s; settling {} s",
                shaper.port(),
                settle.as_secs()
            ));
            tokio::time::sleep(settle).await;
            Some(shaper)
        }
        Err(e) => {
            progress(format!("  could not shape the downlink: {e}"));
            None
        }
    }
}

async fn one_scenario(
    backend: &Arc<dyn Backend>,
    media: &Media,
    args: &RunArgs,
    label: &str,
    specs: Vec<RoomSpec>,
    pace: JoinPace,
) -> Measurement {
    measured_scenario(backend, media, args, label, specs, pace, None).await
}

async fn measured_scenario(
    backend: &Arc<dyn Backend>,
    media: &Media,
    args: &RunArgs,
    label: &str,
    specs: Vec<RoomSpec>,
    pace: JoinPace,
    constrain_kbit: Option<u32>,
) -> Measurement {
    let n: usize = specs.iter().map(|s| s.members.len()).sum();
    progress(format!(
        "{}: scenario {label}: {} rooms, {n} participants",
        backend.name(),
        specs.len()
    ));
    let mut fleet = Fleet::new(Arc::clone(backend), media.clone());
    fleet.add_rooms(&specs, pace).await;
    let missing = fleet.wait_flowing(Duration::from_secs(30)).await;
    if missing > 0 {
        progress(format!("  {missing} remote tracks still silent after 30 s"));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let shaper = match constrain_kbit {
        Some(kbit) => {
            constrain_last(&mut fleet, kbit, Duration::from_secs(args.constrain_settle)).await
        }
        None => None,
    };
    let mut m = fleet.measure(label, Duration::from_secs(args.window)).await;
    drop(shaper);
    if let Some(d) = m.constrained_audio_delivery {
        progress(format!(
            "  constrained member: audio delivery {:.2}%, audio p99 {:.1} ms, video {:.0} kbit/s",
            d * 100.0,
            m.constrained_audio_p99_ms.unwrap_or(f64::NAN),
            m.constrained_video_kbps.unwrap_or(f64::NAN)
        ));
    }
    progress(format!(
        "  CPU over the window: tool {:.2} s ({:.0}%), server {:.2} s ({:.0}%), tool/server {:.2}",
        m.tool_cpu_s,
        m.tool_cpu_pct,
        m.server_cpu_s,
        m.server_cpu_pct,
        m.tool_cpu_s / m.server_cpu_s
    ));
    if let Some(e) = &m.engine {
        let dt = m.window_s.max(1e-3);
        progress(format!(
            "  engine: {} connections, {:.0} datagrams/s in ({:.1} per recvmmsg), {:.0} out ({:.1} per sendmmsg), {:.0} wake-ups/s, {:.2} CPU-s in the rtc cores",
            e.connections,
            e.datagrams_in as f64 / dt,
            e.datagrams_in as f64 / e.recv_calls.max(1) as f64,
            e.datagrams_out as f64 / dt,
            e.datagrams_out as f64 / e.send_calls.max(1) as f64,
            e.wakeups as f64 / dt,
            e.core_ns as f64 / 1e9
        ));
    }
    let (errors, secs) = fleet.leave_all().await;
    progress(format!(
        "  everyone left in {secs:.1} s ({} errors)",
        errors.len()
    ));
    m.errors += errors.len();
    m.error_samples.extend(errors.into_iter().take(3));
    // Let the server settle (closing connections) before the next scenario.
    tokio::time::sleep(Duration::from_secs(2)).await;
    m
}

fn wants(args: &RunArgs, name: &str) -> bool {
    args.scenario.iter().any(|s| s == "all" || s == name)
}

async fn run_scenarios(
    backend: Arc<dyn Backend>,
    media: &Media,
    args: &RunArgs,
) -> Vec<Measurement> {
    let mut out = Vec::new();
    let pace = JoinPace::Parallel(args.parallel);
    if wants(args, "one-to-one") {
        for &n in &args.rooms {
            let specs = vec![RoomSpec::uniform(2, both(args)); n];
            let label = labelled(args, format!("1:1 x{n}"));
            out.push(one_scenario(&backend, media, args, &label, specs, pace).await);
        }
    }
    if wants(args, "group") {
        let specs = vec![RoomSpec::uniform(args.group_size, both(args))];
        let mut label = labelled(args, format!("group {}", args.group_size));
        if let Some(kbit) = args.constrain_kbit {
            label = format!("{label}, one at {kbit} kbit/s");
        }
        out.push(
            measured_scenario(
                &backend,
                media,
                args,
                &label,
                specs,
                pace,
                args.constrain_kbit,
            )
            .await,
        );
    }
    if wants(args, "fanout") {
        for &n in &args.fanout {
            let mut members = vec![both(args)];
            members.extend(std::iter::repeat_n(Publish::NOTHING, n));
            let label = labelled(args, format!("1->{n}"));
            out.push(
                one_scenario(
                    &backend,
                    media,
                    args,
                    &label,
                    vec![RoomSpec { members }],
                    pace,
                )
                .await,
            );
        }
    }
    if wants(args, "audio") {
        let specs = vec![RoomSpec::uniform(args.audio_room, AUDIO_ONLY)];
        let label = format!("audio {}", args.audio_room);
        out.push(one_scenario(&backend, media, args, &label, specs, pace).await);
    }
    if wants(args, "storm") {
        let specs = vec![RoomSpec::uniform(2, Publish::BOTH); args.storm_count.div_ceil(2)];
        let label = format!("storm {}/s", args.storm_rate);
        out.push(
            one_scenario(
                &backend,
                media,
                args,
                &label,
                specs,
                JoinPace::Rate(args.storm_rate),
            )
            .await,
        );
    }
    out
}

/// Adds 1:1 rooms step by step; returns every step and the last good room count.
async fn ramp(
    backend: Arc<dyn Backend>,
    media: &Media,
    args: &RunArgs,
) -> (Vec<Measurement>, usize) {
    let mut fleet = Fleet::new(Arc::clone(&backend), media.clone());
    let mut rows = Vec::new();
    let mut capacity = 0;
    let mut rooms = 0;
    while rooms + args.ramp_step <= args.ramp_max {
        rooms += args.ramp_step;
        progress(format!(
            "{}: ramp step to {rooms} 1:1 rooms",
            backend.name()
        ));
        let specs = vec![RoomSpec::uniform(2, Publish::BOTH); args.ramp_step];
        fleet
            .add_rooms(&specs, JoinPace::Parallel(args.parallel))
            .await;
        fleet.wait_flowing(Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        let m = fleet
            .measure(&format!("ramp x{rooms}"), Duration::from_secs(args.window))
            .await;
        let good = m.delivery_min >= 0.995 && m.latency_p99_ms <= 50.0 && m.errors == 0;
        progress(format!(
            "  {rooms} rooms: delivery min {:.2}%, p99 {:.1} ms, {} errors, server CPU {:.0}% -> {}",
            m.delivery_min * 100.0,
            m.latency_p99_ms,
            m.errors,
            m.server_cpu_pct,
            if good { "good" } else { "over capacity" }
        ));
        rows.push(m);
        if !good {
            break;
        }
        capacity = rooms;
    }
    let (errors, secs) = fleet.leave_all().await;
    progress(format!(
        "  ramp teardown {secs:.1} s, {} errors",
        errors.len()
    ));
    (rows, capacity)
}

/// The client stack `--client` asks for.
fn client(args: &RunArgs) -> Result<Client, String> {
    match args.client.as_str() {
        "engine" => {
            let threads = args
                .engine_threads
                .unwrap_or_else(theraroom_load::engine::default_threads);
            let engine = theraroom_load::engine::Engine::start_with(EngineConfig {
                threads,
                coalesce: Duration::from_micros(args.engine_coalesce_us),
            })
            .map_err(|e| format!("client engine: {e}"))?;
            progress(format!(
                "client: engine, {} loop threads, {} µs coalescing",
                engine.threads(),
                args.engine_coalesce_us
            ));
            Ok(Client::Engine(engine))
        }
        "webrtc" => {
            progress("client: webrtc-rs peer connections");
            Ok(Client::Webrtc)
        }
        other => Err(format!("unknown --client {other} (engine or webrtc)")),
    }
}

async fn thera_backend(args: &RunArgs, client: &Client) -> Result<Arc<dyn Backend>, String> {
    let server = match (&args.server_bin, &args.server_url) {
        (Some(bin), _) => {
            progress(format!("starting {}", bin.display()));
            TheraServer::spawn(bin).await?
        }
        (None, Some(url)) => {
            let pid = args.server_pid.ok_or("--server-url needs --server-pid")?;
            let token = args
                .therapist_token
                .as_deref()
                .ok_or("--server-url needs --therapist-token")?;
            TheraServer::attach(url, pid, token)
        }
        (None, None) => return Err("give --server-bin PATH or --server-url URL".into()),
    };
    progress(format!("TheraRoom at {} (pid {})", server.base, server.pid));
    Ok(Arc::new(TheraBackend {
        server,
        client: client.clone(),
    }))
}

/// `--nodes N`: the scenarios once per routing, each on a fresh cluster of N nodes.
async fn nodes_main(args: &RunArgs, media: &Media, client: &Client) -> ExitCode {
    let mut rows = Vec::new();
    for routing in &args.routing {
        let routing = match routing.as_str() {
            "direct" => tool::cluster::Routing::Direct,
            "spread" => tool::cluster::Routing::Spread,
            other => {
                eprintln!("unknown --routing {other} (direct or spread)");
                return ExitCode::FAILURE;
            }
        };
        let cluster = match tool::cluster::start(
            args.server_bin.as_deref(),
            args.nodes,
            &args.database_url,
            args.redis_url.as_deref(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("nodes: {e}");
                return ExitCode::FAILURE;
            }
        };
        progress(format!("{} nodes, routing {}", args.nodes, routing.label()));
        let backend: Arc<dyn Backend> = Arc::new(tool::cluster::ClusterBackend::new(
            cluster,
            client.clone(),
            routing,
        ));
        rows.extend(run_scenarios(Arc::clone(&backend), media, args).await);
    }
    println!();
    tool::report::print_table(&rows);
    tool::report::print_nodes(&rows);
    if let Some(path) = &args.json {
        let (cpus, model, kernel) = tool::procfs::machine();
        let report = tool::report::Report {
            machine: serde_json::json!({"cpus": cpus, "model": model, "kernel": kernel}),
            results: &rows,
            capacity: serde_json::Value::Null,
            relay: &[],
        };
        if let Ok(text) = serde_json::to_string_pretty(&report) {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("writing {}: {e}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}

async fn janus_backend(args: &RunArgs, client: &Client) -> Result<Arc<dyn Backend>, String> {
    let pid = match args.janus_pid {
        Some(p) => p,
        None => tool::janus::pidof_janus()
            .ok_or("janus is not running (start loadtests/janus/start.sh) and no --janus-pid")?,
    };
    let b = tool::janus::JanusBackend::connect(&args.janus_ws, pid, client.clone()).await?;
    Ok(Arc::new(b))
}

async fn smoke(args: &RunArgs) -> ExitCode {
    let backend = match client(args) {
        Ok(c) => thera_backend(args, &c).await,
        Err(e) => Err(e),
    };
    let backend = match backend {
        Ok(b) => b,
        Err(e) => {
            eprintln!("smoke: {e}");
            return ExitCode::FAILURE;
        }
    };
    let media = media(args);
    let mut a = args.clone();
    a.window = 4;
    a.warmup = 1;
    let specs = vec![RoomSpec::uniform(2, Publish::BOTH); 2];
    let m = one_scenario(
        &backend,
        &media,
        &a,
        "smoke 2x1:1",
        specs,
        JoinPace::Parallel(4),
    )
    .await;
    tool::report::print_table(std::slice::from_ref(&m));
    let ok = m.delivery_min >= 0.95 && m.errors == 0 && m.forwarded_tracks == 8;
    if ok {
        println!(
            "smoke: OK (delivery min {:.2}%, no errors)",
            m.delivery_min * 100.0
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "smoke: FAILED (delivery min {:.2}%, {} forwarded tracks of 8, {} errors: {:?})",
            m.delivery_min * 100.0,
            m.forwarded_tracks,
            m.errors,
            m.error_samples
        );
        ExitCode::FAILURE
    }
}

/// The raw relay at each TheraRoom scenario's own shape and rate: as many datagrams in
/// per second as its publishers sent, each sent on to as many receivers as the server
/// forwarded it to on average (1 in 1:1 rooms, 9 in a group of 10). At these rates the
/// relay's cost per packet depends strongly on the rate (wake-ups), so one relay run at
/// another rate is no baseline.
fn relay_per_scenario(rows: &[tool::scenario::Measurement]) -> Vec<tool::report::RelayRow> {
    let mut out = Vec::new();
    for m in rows
        .iter()
        .filter(|m| m.server == "theraroom" && m.sent_pps > 0.0)
    {
        let forwarded = m.server_fwd_pps.unwrap_or(m.recv_pps);
        let fan_out = (forwarded / m.sent_pps).round().max(1.0) as usize;
        progress(format!(
            "raw UDP relay for {}: {:.0} pkt/s in, each to {fan_out}",
            m.scenario, m.sent_pps
        ));
        match tool::relay::run(1, fan_out, m.sent_pps, 1200, Duration::from_secs(5)) {
            Ok(relay) => out.push(tool::report::RelayRow {
                scenario: m.scenario.clone(),
                relay,
            }),
            Err(e) => eprintln!("relay for {}: {e}", m.scenario),
        }
    }
    tool::report::print_relay(&out, rows);
    out
}

fn relay_only(r: &RelayArgs) -> ExitCode {
    match tool::relay::run(
        r.senders,
        r.receivers,
        r.pps,
        r.bytes,
        Duration::from_secs(r.seconds),
    ) {
        Ok(res) => {
            tool::report::print_relay_result(&res);
            println!("{}", serde_json::to_string_pretty(&res).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::RelayBaseline(r)) = &cli.command {
        return relay_only(r);
    }
    let args = cli.run;
    if args.smoke {
        return smoke(&args).await;
    }
    let media = media(&args);
    let client = match client(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    let mut capacity = serde_json::Map::new();
    let targets: Vec<&str> = match args.target.as_str() {
        "both" => vec!["theraroom", "janus"],
        t => vec![t],
    };
    if args.nodes > 1 {
        return nodes_main(&args, &media, &client).await;
    }
    for target in targets {
        let backend = match target {
            "theraroom" => thera_backend(&args, &client).await,
            "janus" => janus_backend(&args, &client).await,
            other => Err(format!("unknown target {other}")),
        };
        let backend = match backend {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{target}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if args.ramp {
            let (r, cap) = ramp(Arc::clone(&backend), &media, &args).await;
            rows.extend(r);
            capacity.insert(target.into(), serde_json::json!(cap));
            println!(
                "{target}: capacity {cap} 1:1 rooms ({} participants)",
                cap * 2
            );
        } else {
            rows.extend(run_scenarios(Arc::clone(&backend), &media, &args).await);
        }
        drop(backend);
    }
    println!();
    tool::report::print_table(&rows);
    tool::report::print_comparison(&rows);
    let relay = if args.relay {
        relay_per_scenario(&rows)
    } else {
        Vec::new()
    };
    if let Some(path) = &args.json {
        let (cpus, model, kernel) = tool::procfs::machine();
        let report = tool::report::Report {
            machine: serde_json::json!({"cpus": cpus, "model": model, "kernel": kernel}),
            results: &rows,
            capacity: serde_json::Value::Object(capacity),
            relay: &relay,
        };
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                if let Err(e) = std::fs::write(path, text) {
                    eprintln!("writing {}: {e}", path.display());
                }
            }
            Err(e) => eprintln!("json: {e}"),
        }
    }
    ExitCode::SUCCESS
}
