//! Wire types of the TheraRoom signaling protocol, version 1, as `signaling/PROTOCOL.md`
//! describes them.
//!
//! Deliberately a copy, not an import of the server's types: the load tool is a client of
//! the published protocol, so a server change that breaks the document breaks this too.
//! Parsing is lenient where the document allows growth (unknown fields are ignored) and
//! strict where a client must understand the message (unknown `type` values are kept as
//! [`ServerMessage::Unknown`] rather than dropped).

use serde::{Deserialize, Serialize};

/// The protocol version this client speaks, sent in `join`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Which of the participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcName {
    /// Client → server media; the client offers.
    Publisher,
    /// Server → client media; the server offers.
    Subscriber,
}

/// Media kind of a track or mute switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Microphone.
    Audio,
    /// Camera.
    Video,
}

/// An ICE candidate in the browser's `RTCIceCandidateInit` shape (camelCase on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Messages the client sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Enter a session's room (must be the first message).
    Join {
        /// Always [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Session to enter.
        session_id: String,
        /// TheraRoom JWT (user or guest token).
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Name override for signed-in users.
        #[serde(skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
    },
    /// Publisher offer.
    Offer {
        /// Always `publisher`.
        pc: PcName,
        /// SDP.
        sdp: String,
    },
    /// Answer to the server's subscriber offer.
    Answer {
        /// Always `subscriber`.
        pc: PcName,
        /// SDP.
        sdp: String,
    },
    /// Trickle ICE; `None` means end of candidates.
    Candidate {
        /// Connection the candidate belongs to.
        pc: PcName,
        /// The candidate.
        candidate: Option<CandidateInit>,
    },
    /// Own microphone/camera switched.
    Mute {
        /// Which.
        kind: Kind,
        /// New state.
        muted: bool,
    },
    /// Ask the publisher of a remote track for a keyframe.
    RequestKeyframe {
        /// The remote track.
        track_id: String,
    },
    /// Leave the room now.
    Leave,
    /// Keepalive.
    Ping {
        /// Echoed in `pong`.
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<serde_json::Value>,
    },
}

/// Session summary in `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
}

/// An ICE server to build the peer connections with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IceServerInfo {
    /// URIs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default)]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default)]
    pub credential: Option<String>,
}

/// A published track.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TrackInfo {
    /// Track id (also the remote track's id on the subscriber connection).
    pub track_id: String,
    /// Kind.
    pub kind: Kind,
    /// Publisher's participant id.
    pub stream_id: String,
}

/// Someone in the room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParticipantInfo {
    /// Participant id.
    pub participant_id: String,
    /// Name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// True for anonymous guests.
    pub is_guest: bool,
    /// `connected` or `reconnecting`.
    pub connection: String,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera off.
    pub video_muted: bool,
    /// Published tracks.
    #[serde(default)]
    pub tracks: Vec<TrackInfo>,
}

/// The `joined` message: what the server told us when it let us in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Joined {
    /// Protocol version of the server.
    pub protocol: u32,
    /// Our participant id.
    pub participant_id: String,
    /// True when this join took over an existing participant (reload, reconnect).
    pub resumed: bool,
    /// The session.
    pub session: SessionSummary,
    /// ICE servers for both peer connections.
    #[serde(default)]
    pub ice_servers: Vec<IceServerInfo>,
    /// Everyone else, with their tracks.
    #[serde(default)]
    pub participants: Vec<ParticipantInfo>,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// You are in.
    Joined(Joined),
    /// Answer to the publisher offer.
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
    /// Server ICE candidate (`null` or empty: end of candidates).
    Candidate {
        /// Connection.
        pc: PcName,
        /// Candidate.
        #[serde(default)]
        candidate: Option<CandidateInit>,
    },
    /// Someone entered (or came back: same id as before).
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
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
    /// A new remote track; it arrives through the next subscriber offer.
    TrackPublished {
        /// Publisher.
        participant_id: String,
        /// Track.
        track: TrackInfo,
    },
    /// A remote track is gone.
    TrackUnpublished {
        /// Publisher.
        participant_id: String,
        /// Track.
        track_id: String,
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
    /// The session is over; the server closes right after.
    SessionEnded {
        /// `ended_by_therapist` or `expired`.
        reason: String,
    },
    /// The therapist removed us; the server closes right after.
    Removed {
        /// Why.
        reason: String,
    },
    /// Acknowledges `leave`.
    Left,
    /// Answer to `ping`.
    Pong {
        /// Echo of the ping's `ts`.
        #[serde(default)]
        ts: Option<serde_json::Value>,
    },
    /// A stored notification for the signed-in user.
    Notification {
        /// The notification.
        notification: serde_json::Value,
    },
    /// Something was refused.
    Error {
        /// Stable code (see PROTOCOL.md).
        code: String,
        /// Human message.
        message: String,
        /// The server closes the socket after a fatal error.
        fatal: bool,
    },
    /// A message type this client does not know (the protocol grew): kept, not dropped.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_match_the_document() {
        let join = ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            session_id: "s".into(),
            token: Some("t".into()),
            display_name: None,
        };
        assert_eq!(
            serde_json::to_value(&join).unwrap(),
            serde_json::json!({"type":"join","protocol":1,"session_id":"s","token":"t"})
        );
        let cand = ClientMessage::Candidate {
            pc: PcName::Publisher,
            candidate: Some(CandidateInit {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            }),
        };
        assert_eq!(
            serde_json::to_value(&cand).unwrap(),
            serde_json::json!({"type":"candidate","pc":"publisher","candidate":{
                "candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}})
        );
        assert_eq!(
            serde_json::to_string(&ClientMessage::Leave).unwrap(),
            r#"{"type":"leave"}"#
        );
    }

    #[test]
    fn server_messages_parse() {
        let joined: ServerMessage = serde_json::from_str(
            r#"{"type":"joined","protocol":1,"participant_id":"p","resumed":false,
            "session":{"id":"s","name":"n","kind":"instant","max_participants":2,"expires_at":"x"},
            "ice_servers":[],"participants":[{"participant_id":"q","display_name":"Q","role":"guest",
            "is_guest":true,"connection":"connected","audio_muted":false,"video_muted":false,
            "tracks":[{"track_id":"t","kind":"video","stream_id":"q"}]}]}"#,
        )
        .unwrap();
        match joined {
            ServerMessage::Joined(j) => {
                assert_eq!(j.participant_id, "p");
                assert_eq!(j.participants[0].tracks[0].kind, Kind::Video);
            }
            other => panic!("{other:?}"),
        }
        let err: ServerMessage = serde_json::from_str(
            r#"{"type":"error","code":"room_full","message":"m","fatal":true}"#,
        )
        .unwrap();
        assert!(matches!(err, ServerMessage::Error { fatal: true, .. }));
        let end: ServerMessage =
            serde_json::from_str(r#"{"type":"candidate","pc":"subscriber","candidate":null}"#)
                .unwrap();
        assert_eq!(
            end,
            ServerMessage::Candidate {
                pc: PcName::Subscriber,
                candidate: None
            }
        );
        let new: ServerMessage = serde_json::from_str(r#"{"type":"something_new","x":1}"#).unwrap();
        assert_eq!(new, ServerMessage::Unknown);
    }
}
