//! Tables on stdout and the JSON report.

use serde::Serialize;

use super::relay::RelayResult;
use super::scenario::Measurement;

fn f(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".into()
    }
}

fn k(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Prints one row per measurement.
pub fn print_table(rows: &[Measurement]) {
    println!(
        "{:<10} {:<16} {:>5} {:>5} {:>5} {:>8} {:>8} {:>8} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}",
        "server", "scenario", "parts", "pub", "fwdT", "fwd pps", "fwd bps", "recv pps",
        "srv%", "tool%", "us/pkt", "kpkt/s", "RSS", "dlv min", "dlv avg", "p50ms", "p95ms", "p99ms",
        "jn50", "jn95", "err"
    );
    for m in rows {
        println!(
            "{:<10} {:<16} {:>5} {:>5} {:>5} {:>8} {:>8} {:>8} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}",
            m.server,
            m.scenario,
            m.participants,
            m.published_tracks,
            m.forwarded_tracks,
            k(m.server_fwd_pps.unwrap_or(f64::NAN)),
            k(m.server_fwd_bps.unwrap_or(m.recv_bps)),
            k(m.recv_pps),
            f(m.server_cpu_pct, 1),
            f(m.tool_cpu_pct, 1),
            f(m.server_cpu_us_per_pkt, 1),
            f(m.pkts_per_cpu_s / 1e3, 1),
            f(m.server_rss_mib, 0),
            f(m.delivery_min * 100.0, 2),
            f(m.delivery_avg * 100.0, 2),
            f(m.latency_p50_ms, 1),
            f(m.latency_p95_ms, 1),
            f(m.latency_p99_ms, 1),
            f(m.join_p50_ms, 0),
            f(m.join_p95_ms, 0),
            m.errors
        );
    }
    println!(
        "(fwd = server's own counter; recv = what the subscribers got; srv% / tool% = server / load tool CPU in % of one core; \
us/pkt and kpkt/s = server CPU per forwarded packet and forwarded packets per CPU-second; \
dlv = delivery per subscriber in %; p50..p99 = one-way latency; jn = join → first packet of every remote track, ms)"
    );
    for m in rows {
        if m.tool_cpu_pct > 0.0 {
            println!(
                "  {} {}: load tool ({}) {:.2} CPU-s vs server {:.2} CPU-s (tool/server {:.2}){}{}",
                m.server,
                m.scenario,
                m.client,
                m.tool_cpu_s,
                m.server_cpu_s,
                m.tool_cpu_s / m.server_cpu_s,
                m.server_dropped
                    .map(|d| format!(", server queue drops {d:.0}"))
                    .unwrap_or_default(),
                if m.error_samples.is_empty() {
                    String::new()
                } else {
                    format!(", errors: {}", m.error_samples.join("; "))
                }
            );
        }
    }
}

/// Several nodes: each row's CPU per node, join times and the signaling relayed
/// between nodes (compare `nodes direct` with `nodes spread` for the relay's cost).
pub fn print_nodes(rows: &[Measurement]) {
    println!();
    println!(
        "{:<14} {:<16} {:<28} {:>8} {:>7} {:>7} {:>9} {:>8}",
        "routing",
        "scenario",
        "CPU % per node",
        "total %",
        "j50 ms",
        "j95 ms",
        "relay f/s",
        "relayed"
    );
    for m in rows {
        let per_node: Vec<String> = m
            .node_cpu_pct
            .iter()
            .map(|(_, c)| format!("{c:.1}"))
            .collect();
        println!(
            "{:<14} {:<16} {:<28} {:>8} {:>7} {:>7} {:>9} {:>8}",
            m.server,
            m.scenario,
            per_node.join(" / "),
            f(m.server_cpu_pct, 1),
            f(m.join_p50_ms, 0),
            f(m.join_p95_ms, 0),
            m.relayed_frames_per_s.map_or("-".into(), |r| f(r, 1)),
            m.relayed_sockets.map_or("-".into(), |r| f(r, 0)),
        );
    }
}

/// Prints TheraRoom against Janus for the scenarios both ran, with ratios.
pub fn print_comparison(rows: &[Measurement]) {
    let thera: Vec<&Measurement> = rows.iter().filter(|m| m.server == "theraroom").collect();
    let pairs: Vec<(&Measurement, &Measurement)> = thera
        .iter()
        .filter_map(|t| {
            rows.iter()
                .find(|j| j.server == "janus" && j.scenario == t.scenario)
                .map(|j| (*t, j))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<16} {:>10} {:>10} {:>6} | {:>8} {:>8} {:>6} | {:>7} {:>7} | {:>6} {:>6} | {:>6} {:>6}",
        "scenario",
        "TR pkt/cpu",
        "JA pkt/cpu",
        "ratio",
        "TR cpu%",
        "JA cpu%",
        "ratio",
        "TR dlv",
        "JA dlv",
        "TR p99",
        "JA p99",
        "TR j95",
        "JA j95"
    );
    for (t, j) in pairs {
        // Same basis for both: packets that reached subscribers per server CPU-second.
        let tp = t.recv_pps * t.window_s / (t.server_cpu_pct / 100.0 * t.window_s);
        let jp = j.recv_pps * j.window_s / (j.server_cpu_pct / 100.0 * j.window_s);
        println!(
            "{:<16} {:>10} {:>10} {:>6} | {:>8} {:>8} {:>6} | {:>7} {:>7} | {:>6} {:>6} | {:>6} {:>6}",
            t.scenario,
            k(tp),
            k(jp),
            f(tp / jp, 2),
            f(t.server_cpu_pct, 1),
            f(j.server_cpu_pct, 1),
            f(t.server_cpu_pct / j.server_cpu_pct, 2),
            f(t.delivery_min * 100.0, 2),
            f(j.delivery_min * 100.0, 2),
            f(t.latency_p99_ms, 1),
            f(j.latency_p99_ms, 1),
            f(t.join_p95_ms, 0),
            f(j.join_p95_ms, 0),
        );
    }
    println!("(pkt/cpu = packets received by subscribers per server CPU-second; ratio = TheraRoom / Janus)");
}

/// The raw relay run for one TheraRoom scenario (same packet rate and fan-out).
#[derive(Debug, Clone, Serialize)]
pub struct RelayRow {
    /// The scenario whose rate and fan-out the relay reproduced.
    pub scenario: String,
    /// What the relay did.
    pub relay: RelayResult,
}

/// Prints one relay line, as the `relay-baseline` command shows it.
pub fn print_relay_result(relay: &RelayResult) {
    println!(
        "raw UDP relay: {} senders -> {} receivers, {} B packets: forwarded {} pkt/s, relay thread CPU {:.1}%, {} pkt per CPU-second (whole process incl. sender and receiver threads: {:.0}% CPU, {} pkt per CPU-second), delivery {:.2}%",
        relay.senders,
        relay.receivers,
        relay.packet_bytes,
        k(relay.forwarded_pps),
        relay.relay_cpu_pct,
        k(relay.pkts_per_cpu_s),
        relay.process_cpu_pct,
        k(relay.pkts_per_process_cpu_s),
        relay.delivery * 100.0
    );
}

/// Prints each TheraRoom row next to the relay run at its own rate and fan-out.
pub fn print_relay(relays: &[RelayRow], rows: &[Measurement]) {
    if relays.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<16} {:>9} {:>7} | {:>10} {:>10} | {:>8}",
        "scenario", "in pkt/s", "fan-out", "TR pkt/cpu", "relay", "TR/relay"
    );
    for r in relays {
        let Some(m) = rows
            .iter()
            .find(|m| m.server == "theraroom" && m.scenario == r.scenario)
        else {
            continue;
        };
        println!(
            "{:<16} {:>9} {:>7} | {:>10} {:>10} | {:>7.1}%",
            r.scenario,
            k(m.sent_pps),
            r.relay.receivers,
            k(m.pkts_per_cpu_s),
            k(r.relay.pkts_per_cpu_s),
            m.pkts_per_cpu_s / r.relay.pkts_per_cpu_s * 100.0
        );
    }
    println!("(relay = raw UDP relay thread, no ICE/SRTP/RTP, at the scenario's input rate and fan-out; pkt/cpu = forwarded packets per CPU-second)");
}

/// The JSON report.
#[derive(Serialize)]
pub struct Report<'a> {
    /// CPUs, model, kernel.
    pub machine: serde_json::Value,
    /// Every measured window.
    pub results: &'a [Measurement],
    /// Ramp capacity per server (1:1 rooms), if a ramp ran.
    pub capacity: serde_json::Value,
    /// Relay baselines, one per TheraRoom scenario, if they ran.
    pub relay: &'a [RelayRow],
}
