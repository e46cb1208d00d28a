//! One client peer connection without TheraRoom signaling: the same webrtc-rs setup,
//! media pacer and receive accounting as [`super::Participant`], for drivers of other
//! servers' signaling (the load tool's Janus VideoRoom driver). The caller moves SDP and
//! candidates itself.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use webrtc::peer_connection::RTCSessionDescription;

use super::clip::ClipSet;
use super::media::{self, ClientPc, LocalTrack, ReceiveTable};
use super::pacer::{MediaRate, Pacer, SentCounters};
use super::protocol::{CandidateInit, ClientMessage, Kind, PcName};
use super::signal::Outgoing;
use super::stats::{RemoteTrackStats, SentStats};
use super::{to_init, webrtc_err, ClientError, PcState, Publish};

/// A standalone peer connection bound to one IP: a publisher (we offer, sending our
/// tracks) or a subscriber (the server offers, we receive).
pub struct StandalonePc {
    pc: ClientPc,
    candidates: Mutex<Option<mpsc::UnboundedReceiver<CandidateInit>>>,
    received: Arc<ReceiveTable>,
    local: Vec<(LocalTrack, Arc<SentCounters>)>,
    pacer: Mutex<Option<Pacer>>,
}

/// Turns the candidate messages of the shared gate into bare candidates.
fn candidate_channel(
    pc_name: PcName,
) -> (
    mpsc::UnboundedSender<Outgoing>,
    mpsc::UnboundedReceiver<CandidateInit>,
) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let (cand_tx, cand_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            if let Outgoing::Message(ClientMessage::Candidate {
                pc,
                candidate: Some(c),
            }) = o
            {
                if pc == pc_name && cand_tx.send(c).is_err() {
                    break;
                }
            }
        }
    });
    (out_tx, cand_rx)
}

impl StandalonePc {
    /// A publisher connection with the tracks of `publish` (VP8 camera, Opus microphone).
    pub async fn publisher(bind_ip: IpAddr, publish: Publish) -> Result<Self, ClientError> {
        let (out, cand) = candidate_channel(PcName::Publisher);
        let pc = media::build_pc(PcName::Publisher, bind_ip, &[], out, None).await?;
        let stream_id = format!("{:016x}", rand::random::<u64>());
        let mut local = Vec::new();
        for (on, kind) in [(publish.video, Kind::Video), (publish.audio, Kind::Audio)] {
            if on {
                let t = media::add_local_track(&pc.pc, &stream_id, kind).await?;
                let c = SentCounters::new(&t.track_id, kind);
                local.push((t, c));
            }
        }
        Ok(StandalonePc {
            pc,
            candidates: Mutex::new(Some(cand)),
            received: Arc::new(ReceiveTable::default()),
            local,
            pacer: Mutex::new(None),
        })
    }

    /// A receive-only connection that accounts every remote track.
    pub async fn subscriber(bind_ip: IpAddr) -> Result<Self, ClientError> {
        let (out, cand) = candidate_channel(PcName::Subscriber);
        let received = Arc::new(ReceiveTable::default());
        let pc = media::build_pc(
            PcName::Subscriber,
            bind_ip,
            &[],
            out,
            Some(Arc::clone(&received)),
        )
        .await?;
        Ok(StandalonePc {
            pc,
            candidates: Mutex::new(Some(cand)),
            received,
            local: Vec::new(),
            pacer: Mutex::new(None),
        })
    }

    /// Our local candidates, as they are gathered after the first description was
    /// made (once: the receiver is handed out to the first caller).
    pub fn take_candidates(&self) -> Option<mpsc::UnboundedReceiver<CandidateInit>> {
        self.candidates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Creates an offer, sets it locally and returns its SDP.
    pub async fn offer(&self) -> Result<String, ClientError> {
        let offer = self.pc.pc.create_offer(None).await.map_err(webrtc_err)?;
        self.pc
            .pc
            .set_local_description(offer)
            .await
            .map_err(webrtc_err)?;
        let sdp = self.local_sdp().await?;
        self.pc.gate.release();
        Ok(sdp)
    }

    async fn local_sdp(&self) -> Result<String, ClientError> {
        Ok(self
            .pc
            .pc
            .local_description()
            .await
            .ok_or_else(|| ClientError::WebRtc("no local description".into()))?
            .sdp)
    }

    /// Applies the remote answer to our offer.
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), ClientError> {
        let desc = RTCSessionDescription::answer(sdp.to_owned()).map_err(webrtc_err)?;
        self.pc
            .pc
            .set_remote_description(desc)
            .await
            .map_err(webrtc_err)
    }

    /// Applies a remote offer and returns our answer's SDP.
    pub async fn answer(&self, offer_sdp: &str) -> Result<String, ClientError> {
        let desc = RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(webrtc_err)?;
        self.pc
            .pc
            .set_remote_description(desc)
            .await
            .map_err(webrtc_err)?;
        let answer = self.pc.pc.create_answer(None).await.map_err(webrtc_err)?;
        self.pc
            .pc
            .set_local_description(answer)
            .await
            .map_err(webrtc_err)?;
        let sdp = self.local_sdp().await?;
        self.pc.gate.release();
        Ok(sdp)
    }

    /// Adds a remote candidate.
    pub async fn add_candidate(&self, c: CandidateInit) -> Result<(), ClientError> {
        self.pc
            .pc
            .add_ice_candidate(to_init(c))
            .await
            .map_err(webrtc_err)
    }

    /// Connection state.
    pub fn state(&self) -> PcState {
        *self.pc.state.borrow()
    }

    /// Starts looping real media on our tracks (publisher only).
    pub fn start_clips(&self, clips: &Arc<ClipSet>) {
        let mut slot = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        slot.take();
        *slot = Some(Pacer::start_clips(&self.local, clips, &self.pc.state));
    }

    /// Starts synthetic media on our tracks (publisher only).
    pub fn start_media(&self, rate: MediaRate) {
        let mut slot = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        slot.take();
        *slot = Some(Pacer::start(&self.local, rate, &self.pc.state));
    }

    /// What our tracks sent.
    pub fn sent(&self) -> Vec<SentStats> {
        self.local.iter().map(|(_, c)| c.snapshot()).collect()
    }

    /// What every remote track delivered (webrtc's stream and track ids).
    pub fn received(&self) -> Vec<RemoteTrackStats> {
        self.received.snapshot()
    }

    /// Stops media and closes the connection.
    pub async fn close(&self) {
        self.pacer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = self.pc.pc.close().await;
    }
}

impl Drop for StandalonePc {
    fn drop(&mut self) {
        self.pacer
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let pc = Arc::clone(&self.pc.pc);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}
