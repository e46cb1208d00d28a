//! The mutable surroundings a connection or room works in while the core handles one
//! input: the clock, where output goes, the demultiplexer and timers to keep current,
//! the counters and the configuration. Built by [`super::Core`] per call, passed down.

use std::time::Instant;

use rtc::peer_connection::certificate::RTCCertificate;

use super::demux::Demux;
use super::io::{CoreConfig, Outputs, TimerKey};
use super::timers::TimerHeap;
use crate::stats::{Counters, PacketMetrics};

/// One input's worth of context.
pub(crate) struct Ctx<'a> {
    /// The time of the input being handled.
    pub now: Instant,
    /// Datagrams and events produced.
    pub out: &'a mut Outputs,
    /// Address and ufrag routing, updated as connections learn credentials and close.
    pub demux: &'a mut Demux,
    /// Deadlines, updated after every connection is fed.
    pub timers: &'a mut TimerHeap<TimerKey>,
    /// Process-wide counters.
    pub counters: &'a Counters,
    /// Cached `metrics` handles for the per-packet counters.
    pub metrics: &'a PacketMetrics,
    /// The worker's network configuration.
    pub config: &'a CoreConfig,
    /// The worker's DTLS certificate, shared by all its connections (`None`: each
    /// connection makes its own).
    pub certificate: Option<&'a RTCCertificate>,
}
