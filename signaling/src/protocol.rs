//! Wire types of the signaling protocol, version 1 (see `PROTOCOL.md`).
//!
//! Messages are JSON objects tagged by `type`. Parsing is strict: unknown types and
//! missing fields are errors, reported to the client as `bad_message`.

use serde::{Deserialize, Serialize};

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest accepted frame, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Which of the participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcName {
    /// Client → server media; the client offers.
    Publisher,
    /// Server → client media; the server offers.
    Subscriber,
}

impl PcName {
    /// The protocol spelling (`"publisher"` / `"subscriber"`), for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            PcName::Publisher => "publisher",
            PcName::Subscriber => "subscriber",
        }
    }
}

/// Media kind of a track or mute switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Microphone.
    Audio,
    /// Camera.
    Video,
}

/// What a track carries, declared by its publisher (`offer.tracks`) so that clients can
/// lay a shared screen out large and tell it from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// A camera (the default for video).
    #[default]
    Camera,
    /// A microphone (the default for audio).
    Microphone,
    /// A shared screen, window or tab.
    Screen,
    /// The sound of a shared tab or screen.
    ScreenAudio,
}

impl TrackSource {
    /// The source of a track its publisher did not declare.
    pub fn default_for(kind: Kind) -> TrackSource {
        match kind {
            Kind::Audio => TrackSource::Microphone,
            Kind::Video => TrackSource::Camera,
        }
    }
}

/// One local track's declared source, as listed in a publisher `offer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackSourceDecl {
    /// The browser's `MediaStreamTrack.id` (the track part of `a=msid`).
    pub track_id: String,
    /// What it carries.
    pub source: TrackSource,
}

/// An ICE candidate in the browser's `RTCIceCandidateInit` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateInit {
    /// The `candidate:` line; empty means end of candidates.
    pub candidate: String,
    /// Media id the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// Media line index.
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_mline_index: Option<u16>,
    /// ICE username fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a session's room.
    Join {
        /// Must be [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Session to enter.
        session_id: String,
        /// JWT (optional when sent as an `Authorization` header on upgrade).
        #[serde(default)]
        token: Option<String>,
        /// Name override for signed-in users.
        #[serde(default)]
        display_name: Option<String>,
        /// The page's connection instance (PROTOCOL.md, "People, devices and
        /// instances"): the same instance resumes, another one is a second participant.
        #[serde(default)]
        instance: Option<String>,
    },
    /// Pre-call connectivity check: a throw-away publisher connection.
    Probe {
        /// Must be [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Session the check is for (its rules decide whether the token may check).
        session_id: String,
        /// JWT (optional when sent as an `Authorization` header on upgrade).
        #[serde(default)]
        token: Option<String>,
    },
    /// Listen for notifications without entering a room.
    Listen {
        /// Must be [`PROTOCOL_VERSION`].
        protocol: u32,
        /// JWT (optional when sent as an `Authorization` header on upgrade).
        #[serde(default)]
        token: Option<String>,
    },
    /// SDP offer (publisher connection).
    Offer {
        /// Must be `publisher`.
        pc: PcName,
        /// The SDP.
        sdp: String,
        /// Declared sources of the local tracks (undeclared: camera / microphone).
        #[serde(default)]
        tracks: Vec<TrackSourceDecl>,
    },
    /// SDP answer (subscriber connection).
    Answer {
        /// Must be `subscriber`.
        pc: PcName,
        /// The SDP.
        sdp: String,
    },
    /// Trickle ICE candidate; `None` means end of candidates.
    Candidate {
        /// Connection it belongs to.
        pc: PcName,
        /// The candidate.
        #[serde(default)]
        candidate: Option<CandidateInit>,
    },
    /// Own microphone/camera switched.
    Mute {
        /// Which.
        kind: Kind,
        /// New state.
        muted: bool,
    },
    /// Ask for a keyframe of a remote track.
    RequestKeyframe {
        /// The track.
        track_id: String,
    },
    /// Whether a remote video is on screen: a hidden one (scrolled away, tab in the
    /// background, tile collapsed) is not sent at all until it is visible again.
    VideoView {
        /// The remote track (as announced in `track_published`).
        track_id: String,
        /// On screen.
        visible: bool,
        /// Width the page shows it at, in device pixels (CSS pixels × device pixel
        /// ratio), so the server forwards a simulcast layer no larger than needed. Given
        /// with `height` or not at all; 1..=[`MAX_VIEW_DIMENSION`].
        #[serde(default)]
        width: Option<u32>,
        /// Height the page shows it at, in device pixels; see `width`.
        #[serde(default)]
        height: Option<u32>,
    },
    /// Receive audio only (true) or everything again (false): for a connection too weak
    /// for video. Own publishing is not affected.
    AudioOnly {
        /// New state.
        enabled: bool,
    },
    /// Leave the room.
    Leave,
    /// Host: let a waiting participant in.
    Admit {
        /// The waiting participant.
        participant_id: String,
    },
    /// Host: let everyone waiting in.
    AdmitAll,
    /// Host: refuse a waiting participant.
    Decline {
        /// The waiting participant.
        participant_id: String,
    },
    /// A chat message, to the room or (with `to`) to one participant.
    Chat {
        /// Plain text (trimmed; 1..=1000 characters).
        text: String,
        /// One recipient's participant id, for a private message.
        #[serde(default)]
        to: Option<String>,
    },
    /// Keepalive.
    Ping {
        /// Echoed back.
        #[serde(default)]
        ts: Option<serde_json::Value>,
    },
}

/// Largest `video_view` width or height accepted, in device pixels: twice an 8K screen's
/// width, so every real display fits and a nonsense size is refused as `bad_message`.
pub const MAX_VIEW_DIMENSION: u32 = 16_384;

impl ClientMessage {
    /// Field rules serde cannot express, checked after parsing so that a message that
    /// breaks them is `bad_message` like any other malformed one.
    fn validate(&self) -> Result<(), String> {
        match self {
            ClientMessage::VideoView { width, height, .. } => {
                view_size(*width, *height).map(|_| ())
            }
            _ => Ok(()),
        }
    }
}

/// The size of a `video_view` as `(width, height)`: both given and each in
/// 1..=[`MAX_VIEW_DIMENSION`], or neither given (`None`: size unknown).
pub fn view_size(width: Option<u32>, height: Option<u32>) -> Result<Option<(u32, u32)>, String> {
    let in_range = |v: u32| (1..=MAX_VIEW_DIMENSION).contains(&v);
    match (width, height) {
        (None, None) => Ok(None),
        (Some(w), Some(h)) if in_range(w) && in_range(h) => Ok(Some((w, h))),
        (Some(_), Some(_)) => Err(format!(
            "video_view width and height must be 1..={MAX_VIEW_DIMENSION}"
        )),
        _ => Err("video_view width and height go together".to_string()),
    }
}

/// Why a text frame is not a [`ClientMessage`]; [`ParseError::code`] is the
/// `error` code the client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Over [`MAX_MESSAGE_BYTES`]: `message_too_large` (fatal).
    TooLarge,
    /// Not JSON, not an object, unknown `type`, missing or mistyped fields:
    /// `bad_message` (not fatal). Holds the parser's explanation.
    Bad(String),
}

impl ParseError {
    /// The protocol error code (see PROTOCOL.md).
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::TooLarge => "message_too_large",
            ParseError::Bad(_) => "bad_message",
        }
    }

    /// A message for the client.
    pub fn message(&self) -> String {
        match self {
            ParseError::TooLarge => format!("messages are limited to {MAX_MESSAGE_BYTES} bytes"),
            ParseError::Bad(why) => format!("invalid message: {why}"),
        }
    }
}

/// Parses one text frame. Pure and total: any input gives a message or a
/// [`ParseError`], never a panic (JSON nesting is bounded by serde_json's
/// recursion limit).
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge);
    }
    let message: ClientMessage =
        serde_json::from_str(text).map_err(|err| ParseError::Bad(err.to_string()))?;
    message.validate().map_err(ParseError::Bad)?;
    Ok(message)
}

/// Session summary in `joined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `instant` or `group`.
    pub kind: String,
    /// Capacity.
    pub max_participants: u32,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// Whether guests and clients wait to be admitted.
    #[serde(default)]
    pub waiting_room: bool,
}

/// An ICE server for the client's peer connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceServerInfo {
    /// URIs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A published track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackView {
    /// Track id (also the browser track id).
    pub track_id: String,
    /// Kind.
    pub kind: Kind,
    /// What it carries, as its publisher declared it.
    #[serde(default)]
    pub source: TrackSource,
    /// Publisher's participant id.
    pub stream_id: String,
}

/// How well a participant's connection carries the call (in `connection_quality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionQuality {
    /// Nothing noticeable.
    Excellent,
    /// Some loss or delay.
    Good,
    /// Video freezes or lags; audio only usually helps.
    Poor,
    /// The connection is down.
    Lost,
}

/// One participant's connection verdict (in `connection_quality`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityView {
    /// Who.
    pub participant_id: String,
    /// The verdict.
    pub quality: ConnectionQuality,
}

/// One participant speaking (in `active_speakers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerView {
    /// Who.
    pub participant_id: String,
    /// Smoothed loudness 0..1 (two decimals), for the strength of the indicator.
    pub level: f32,
}

/// Whether a remote video flows to this client (in `stream_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// It flows (again).
    Active,
    /// The server stopped forwarding it.
    Paused,
}

/// Why a remote video's [`StreamState`] changed (in `stream_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStateReason {
    /// The client's downlink cannot carry it (paused), or can again (active).
    Bandwidth,
}

/// One simulcast layer of the client's own video (in `publish_layers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerView {
    /// The encoding's rid (`q`, `h`, `f`).
    pub rid: String,
    /// Whether the client should encode and send it.
    pub active: bool,
}

/// Whether a participant's signaling connection is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Connected.
    Connected,
    /// Dropped, within the grace period.
    Reconnecting,
}

/// Someone in the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantView {
    /// Participant id (one connection instance of a person).
    pub participant_id: String,
    /// The person (registration row) this participant is an instance of.
    #[serde(default)]
    pub person_id: String,
    /// Name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// True for anonymous guests.
    pub is_guest: bool,
    /// Signaling connection state.
    pub connection: ConnectionStatus,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera off.
    pub video_muted: bool,
    /// Published tracks.
    pub tracks: Vec<TrackView>,
}

/// Someone in the waiting room, as hosts see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingView {
    /// The participant id they will have once admitted.
    pub participant_id: String,
    /// The person.
    pub person_id: String,
    /// Name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// True for anonymous guests.
    pub is_guest: bool,
    /// When they started waiting, RFC 3339.
    pub since: String,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// You are in.
    Joined {
        /// Protocol version.
        protocol: u32,
        /// Your participant id.
        participant_id: String,
        /// The person you are (shared by your other devices' participants).
        person_id: String,
        /// True when this join took over an existing participant.
        resumed: bool,
        /// True when you may admit and decline waiting participants.
        host: bool,
        /// The session.
        session: SessionSummary,
        /// ICE servers, with fresh TURN credentials.
        ice_servers: Vec<IceServerInfo>,
        /// Everyone else.
        participants: Vec<ParticipantView>,
    },
    /// You wait in the session's waiting room.
    Waiting {
        /// Your participant id once admitted.
        participant_id: String,
        /// Your person id.
        person_id: String,
        /// The session.
        session: SessionSummary,
        /// Who will let you in.
        therapist_name: String,
        /// Whether a host is in the room now.
        host_present: bool,
    },
    /// Hosts: the whole waiting queue.
    WaitingRoom {
        /// Everyone waiting, longest first.
        waiting: Vec<WaitingView>,
    },
    /// A chat message.
    Chat {
        /// Sender's participant id.
        from: String,
        /// Sender's name.
        from_name: String,
        /// The text.
        text: String,
        /// True when it was sent to you alone.
        private: bool,
        /// When the server relayed it, RFC 3339.
        sent_at: String,
    },
    /// The connectivity probe may start.
    ProbeReady {
        /// ICE servers for the probe's peer connection.
        ice_servers: Vec<IceServerInfo>,
    },
    /// Acknowledges `listen`: notifications for `subject` will arrive here.
    Listening {
        /// The token's subject.
        subject: String,
    },
    /// Answer to a publisher offer.
    Answer {
        /// Always `publisher`.
        pc: PcName,
        /// SDP.
        sdp: String,
    },
    /// Subscriber offer.
    Offer {
        /// Always `subscriber`.
        pc: PcName,
        /// SDP.
        sdp: String,
    },
    /// Server ICE candidate.
    Candidate {
        /// Connection.
        pc: PcName,
        /// Candidate.
        candidate: CandidateInit,
    },
    /// Someone entered.
    ParticipantJoined {
        /// Who.
        participant: ParticipantView,
    },
    /// Someone is gone for good.
    ParticipantLeft {
        /// Who.
        participant_id: String,
        /// `left`, `disconnected`, `removed`, `session_ended`.
        reason: String,
    },
    /// Someone's connection dropped; they may come back.
    ParticipantReconnecting {
        /// Who.
        participant_id: String,
    },
    /// A new remote track.
    TrackPublished {
        /// Publisher.
        participant_id: String,
        /// Track.
        track: TrackView,
    },
    /// A remote track is gone.
    TrackUnpublished {
        /// Publisher.
        participant_id: String,
        /// Track.
        track_id: String,
    },
    /// The room's speakers changed: who is speaking now, loudest first (empty: nobody).
    ActiveSpeakers {
        /// Speakers.
        speakers: Vec<SpeakerView>,
    },
    /// Connection verdicts that changed (a newcomer gets everyone's once).
    ConnectionQuality {
        /// Verdicts.
        updates: Vec<QualityView>,
    },
    /// A remote video stopped (paused) or started again (active) reaching you, for a
    /// reason of the server's (not `video_view` nor `audio_only`).
    StreamState {
        /// The video, as announced in `track_published`.
        track_id: String,
        /// Whether it flows.
        state: StreamState,
        /// Why it changed.
        reason: StreamStateReason,
    },
    /// Which simulcast layers of your own video to encode (the others nobody receives).
    PublishLayers {
        /// Your track, by its `MediaStreamTrack.id` as in your offer's `a=msid`.
        track_id: String,
        /// Every layer of the track, lowest first.
        layers: Vec<LayerView>,
    },
    /// Someone's mute state changed.
    Mute {
        /// Who.
        participant_id: String,
        /// Which.
        kind: Kind,
        /// New state.
        muted: bool,
    },
    /// The session is over.
    SessionEnded {
        /// `ended_by_therapist` or `expired`.
        reason: String,
    },
    /// You were removed by the therapist.
    Removed {
        /// Why.
        reason: String,
    },
    /// Acknowledges `leave`.
    Left,
    /// Answer to `ping`.
    Pong {
        /// Echo of the ping's `ts`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<serde_json::Value>,
    },
    /// A stored notification for the signed-in user.
    Notification {
        /// The notification.
        notification: serde_json::Value,
    },
    /// Something was refused.
    Error {
        /// Stable code.
        code: String,
        /// Human message.
        message: String,
        /// The server closes the socket after a fatal error.
        fatal: bool,
    },
}

impl ServerMessage {
    /// Builds an `error`.
    pub fn error(code: &str, message: impl Into<String>, fatal: bool) -> Self {
        ServerMessage::Error {
            code: code.to_string(),
            message: message.into(),
            fatal,
        }
    }
}

/// The WebSocket close code for a fatal error code (see PROTOCOL.md).
pub fn close_code_for(code: &str) -> u16 {
    match code {
        "unauthorized" | "token_revoked" => 4401,
        "forbidden"
        | "therapist_disabled"
        | "organization_disabled"
        | "removed"
        | "declined"
        | "guests_not_allowed" => 4403,
        "session_not_found" => 4404,
        "room_full" | "waiting_room_full" | "replaced" => 4409,
        "session_ended" => 4410,
        "rate_limited" => 4429,
        "protocol_version" | "join_timeout" | "message_too_large" | "bad_message"
        | "invalid_name" => 4400,
        _ => 4500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_join_and_candidate() {
        let join: ClientMessage =
            serde_json::from_str(r#"{"type":"join","protocol":1,"session_id":"s1","token":"t"}"#)
                .unwrap();
        assert_eq!(
            join,
            ClientMessage::Join {
                protocol: 1,
                session_id: "s1".into(),
                token: Some("t".into()),
                display_name: None,
                instance: None,
            }
        );
        let cand: ClientMessage = serde_json::from_str(
            r#"{"type":"candidate","pc":"publisher","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
        )
        .unwrap();
        match cand {
            ClientMessage::Candidate {
                pc: PcName::Publisher,
                candidate: Some(c),
            } => {
                assert_eq!(c.sdp_mid.as_deref(), Some("0"));
                assert_eq!(c.sdp_mline_index, Some(0));
            }
            other => panic!("unexpected {other:?}"),
        }
        let end: ClientMessage =
            serde_json::from_str(r#"{"type":"candidate","pc":"subscriber","candidate":null}"#)
                .unwrap();
        assert_eq!(
            end,
            ClientMessage::Candidate {
                pc: PcName::Subscriber,
                candidate: None
            }
        );
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"leave"}"#).unwrap(),
            ClientMessage::Leave
        );
    }

    #[test]
    fn rejects_unknown_and_incomplete() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"offer","pc":"publisher"}"#).is_err()
        );
        assert!(serde_json::from_str::<ClientMessage>(
            r#"{"type":"mute","kind":"smell","muted":true}"#
        )
        .is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"[1,2]"#).is_err());
    }

    #[test]
    fn video_view_size_is_optional_paired_and_bounded() {
        let parse = |text: &str| parse_client_message(text);
        assert_eq!(
            parse(
                r#"{"type":"video_view","track_id":"t","visible":true,"width":640,"height":360}"#
            ),
            Ok(ClientMessage::VideoView {
                track_id: "t".into(),
                visible: true,
                width: Some(640),
                height: Some(360),
            })
        );
        assert_eq!(
            parse(r#"{"type":"video_view","track_id":"t","visible":false}"#),
            Ok(ClientMessage::VideoView {
                track_id: "t".into(),
                visible: false,
                width: None,
                height: None,
            })
        );
        assert!(parse(&format!(
            r#"{{"type":"video_view","track_id":"t","visible":true,"width":{MAX_VIEW_DIMENSION},"height":1}}"#
        ))
        .is_ok());
        for bad in [
            r#"{"type":"video_view","track_id":"t","visible":true,"width":640}"#,
            r#"{"type":"video_view","track_id":"t","visible":true,"height":360}"#,
            r#"{"type":"video_view","track_id":"t","visible":true,"width":0,"height":360}"#,
            r#"{"type":"video_view","track_id":"t","visible":true,"width":16385,"height":360}"#,
            r#"{"type":"video_view","track_id":"t","visible":true,"width":-1,"height":360}"#,
            r#"{"type":"video_view","track_id":"t","visible":true,"width":64.5,"height":360}"#,
            r#"{"type":"video_view","track_id":"t","visible":true,"width":"640","height":360}"#,
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.code(), "bad_message", "{bad}");
        }
    }

    #[test]
    fn serializes_stream_state_and_publish_layers() {
        let paused = ServerMessage::StreamState {
            track_id: "t".into(),
            state: StreamState::Paused,
            reason: StreamStateReason::Bandwidth,
        };
        assert_eq!(
            serde_json::to_value(&paused).unwrap(),
            serde_json::json!({"type":"stream_state","track_id":"t","state":"paused","reason":"bandwidth"})
        );
        let layers = ServerMessage::PublishLayers {
            track_id: "cam".into(),
            layers: vec![
                LayerView {
                    rid: "q".into(),
                    active: true,
                },
                LayerView {
                    rid: "f".into(),
                    active: false,
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&layers).unwrap(),
            serde_json::json!({"type":"publish_layers","track_id":"cam",
                "layers":[{"rid":"q","active":true},{"rid":"f","active":false}]})
        );
    }

    #[test]
    fn serializes_server_messages() {
        let msg = ServerMessage::error("room_full", "full", true);
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            serde_json::json!({"type":"error","code":"room_full","message":"full","fatal":true})
        );
        let pong = ServerMessage::Pong {
            ts: Some(serde_json::json!(5)),
        };
        assert_eq!(
            serde_json::to_string(&pong).unwrap(),
            r#"{"type":"pong","ts":5}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerMessage::Left).unwrap(),
            r#"{"type":"left"}"#
        );
    }
}
