//! Just enough STUN (RFC 8489) to route a datagram without handing it to any connection:
//! recognise a message, its class, transaction id and the local part of its USERNAME,
//! and check MESSAGE-INTEGRITY with a connection's local password. Everything but the
//! integrity check reads the datagram in place and allocates nothing.

use rtc::crypto::RTCCrypto;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::Message;

const HEADER_LEN: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
/// Longest USERNAME accepted (RFC 8489 §14.3: less than 513 bytes).
const MAX_USERNAME: usize = 512;

/// The class of a STUN Binding message (other methods are [`StunClass::Other`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StunClass {
    /// Binding request: a connectivity check or a consent refresh.
    Request,
    /// Binding success or error response: the answer to a check a connection sent.
    Response,
    /// Binding indication or any non-Binding method.
    Other,
}

/// The fixed header of a STUN message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StunHeader {
    /// Class of the message.
    pub class: StunClass,
    /// Transaction id (pairs a response with its request).
    pub transaction: [u8; 12],
}

/// Parses the STUN header of `data`, or `None` when the datagram is not STUN (DTLS, SRTP
/// and SRTCP never start with two zero bits followed by the magic cookie).
pub(crate) fn header(data: &[u8]) -> Option<StunHeader> {
    if data.len() < HEADER_LEN || data[0] & 0xc0 != 0 || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
    if length % 4 != 0 || HEADER_LEN + length > data.len() {
        return None;
    }
    let typ = u16::from_be_bytes([data[0], data[1]]);
    // Method bits M0-M11 interleaved with class bits C0 (0x0010) and C1 (0x0100).
    let method = (typ & 0x000f) | ((typ & 0x00e0) >> 1) | ((typ & 0x3e00) >> 2);
    let class_bits = ((typ & 0x0100) >> 7) | ((typ & 0x0010) >> 4);
    let class = match (method, class_bits) {
        (0x001, 0b00) => StunClass::Request,
        (0x001, 0b10 | 0b11) => StunClass::Response,
        _ => StunClass::Other,
    };
    let mut transaction = [0u8; 12];
    transaction.copy_from_slice(&data[8..20]);
    Some(StunHeader { class, transaction })
}

/// The local ufrag a connectivity check is addressed to: USERNAME is
/// `"<receiver ufrag>:<sender ufrag>"` (RFC 8445 §7.2.2), so the part before the first
/// colon names the connection on this side. `None` without a (well-formed) USERNAME.
pub(crate) fn local_ufrag(data: &[u8]) -> Option<&str> {
    let length = usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?]));
    let body = data.get(HEADER_LEN..HEADER_LEN + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if typ == ATTR_USERNAME {
            if len > MAX_USERNAME {
                return None;
            }
            let text = std::str::from_utf8(value).ok()?;
            let ufrag = text.split(':').next()?;
            return (!ufrag.is_empty()).then_some(ufrag);
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Whether `data` carries a MESSAGE-INTEGRITY made with the short-term credential `pwd`
/// (RFC 8489 §9.1): only a peer that got the connection's password through signaling can
/// produce it, so a check that passes may move the address binding of that connection.
pub(crate) fn integrity_ok(data: &[u8], pwd: &str, crypto: &dyn RTCCrypto) -> bool {
    let mut message = Message::new();
    if message.unmarshal_binary(data).is_err() {
        return false;
    }
    MessageIntegrity::check(&mut message, pwd.as_bytes(), crypto).is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rtc::stun::attributes::ATTR_USERNAME as USERNAME;
    use rtc::stun::message::{Setter, BINDING_REQUEST, BINDING_SUCCESS};
    use rtc::stun::textattrs::TextAttribute;

    /// A binding request with `username` and, when `pwd` is given, MESSAGE-INTEGRITY.
    pub(crate) fn binding_request(username: &str, pwd: Option<&str>) -> Vec<u8> {
        let provider = rtc::crypto::default_provider().expect("crypto provider");
        let mut m = Message::new();
        m.set_type(BINDING_REQUEST);
        m.new_transaction_id().expect("transaction id");
        m.write_header(); // the cookie must be in place before MESSAGE-INTEGRITY is computed
        TextAttribute::new(USERNAME, username.to_owned())
            .add_to(&mut m)
            .expect("username");
        if let Some(pwd) = pwd {
            MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.to_owned(),
                provider.crypto(),
            )
            .add_to(&mut m)
            .expect("integrity");
        }
        m.raw.clone()
    }

    #[test]
    fn classifies_requests_responses_and_non_stun() {
        let req = binding_request("abcd:efgh", None);
        let h = header(&req).expect("stun");
        assert_eq!(h.class, StunClass::Request);
        let mut resp = Message::new();
        resp.set_type(BINDING_SUCCESS);
        resp.new_transaction_id().unwrap();
        resp.write_header();
        let h = header(&resp.raw).expect("stun");
        assert_eq!(h.class, StunClass::Response);
        assert_eq!(h.transaction, resp.transaction_id.0);
        // DTLS record (content type 22) and RTP (version 2) are not STUN.
        assert!(
            header(&[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none()
        );
        assert!(header(&[0x80; 40]).is_none());
        assert!(header(&req[..10]).is_none(), "truncated");
    }

    #[test]
    fn finds_the_local_ufrag() {
        let req = binding_request("server1:client9", None);
        assert_eq!(local_ufrag(&req), Some("server1"));
        let bare = binding_request("lonely", None);
        assert_eq!(local_ufrag(&bare), Some("lonely"));
        let empty = binding_request(":client", None);
        assert_eq!(local_ufrag(&empty), None);
        let mut junk = req.clone();
        junk[22..24].copy_from_slice(&[0xff, 0xff]); // attribute length past the end
        assert_eq!(local_ufrag(&junk), None);
    }

    #[test]
    fn integrity_needs_the_right_password() {
        let provider = rtc::crypto::default_provider().unwrap();
        let req = binding_request("u:v", Some("the-password-of-u-123456"));
        assert!(integrity_ok(
            &req,
            "the-password-of-u-123456",
            provider.crypto()
        ));
        assert!(!integrity_ok(
            &req,
            "another-password-1234567",
            provider.crypto()
        ));
        let unsigned = binding_request("u:v", None);
        assert!(!integrity_ok(
            &unsigned,
            "the-password-of-u-123456",
            provider.crypto()
        ));
    }
}
