//! Errors returned by the SFU's public API.

/// Why an SFU operation failed. Signaling maps these onto protocol errors
/// (`negotiation_failed`, `internal`, ...), so the variants separate "the client sent
/// something wrong" from "the server could not do it".
#[derive(thiserror::Error, Debug)]
pub enum SfuError {
    /// The SDP (or ICE candidate) the client sent could not be parsed or applied.
    #[error("invalid sdp: {0}")]
    InvalidSdp(String),
    /// The ICE candidate the client sent could not be parsed or applied.
    #[error("invalid ice candidate: {0}")]
    InvalidCandidate(String),
    /// The call does not fit the negotiation state (e.g. an answer with no offer outstanding).
    #[error("invalid negotiation state: {0}")]
    InvalidState(String),
    /// The participant or room has been closed.
    #[error("closed")]
    Closed,
    /// The WebRTC core failed for a reason the client cannot fix.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// The configuration is unusable (e.g. an inverted port range).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl SfuError {
    pub(crate) fn webrtc(err: impl std::fmt::Display) -> Self {
        SfuError::WebRtc(err.to_string())
    }
}
