//! The `TheraRoom-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<body>"` with the endpoint's secret, so a receiver can check that a request
//! comes from TheraRoom, unchanged, and recently (it compares `t` with its clock).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "TheraRoom-Signature";
/// Name of the event id header (receivers dedupe on it: delivery is at least once).
pub const EVENT_ID_HEADER: &str = "TheraRoom-Event-Id";

/// The HMAC-SHA256 state after `"<timestamp>.<body>"`.
fn mac_of(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail; `<Hmac as
    // KeyInit>::new` would need a fixed-size array.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn mac_hex(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac_of(secret, timestamp, body).finalize().into_bytes())
}

/// The header value for `body` signed at `timestamp` (Unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", mac_hex(secret, timestamp, body))
}

/// Checks a header value against `body` in constant time, as a receiver would (the
/// tests use it; receivers have the example in docs/WEBHOOKS.md). Returns the signed
/// timestamp when the signature is right.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<i64> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(hex::decode(v).ok()?),
            _ => {}
        }
    }
    let timestamp = timestamp?;
    let ok = signatures
        .iter()
        .any(|sig| mac_of(secret, timestamp, body).verify_slice(sig).is_ok());
    ok.then_some(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_does_not() {
        let header = signature_header(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify(b"secret", &header, b"{\"a\":1}"),
            Some(1_700_000_000)
        );
        assert_eq!(verify(b"secret", &header, b"{\"a\":2}"), None);
        assert_eq!(verify(b"other", &header, b"{\"a\":1}"), None);
        assert_eq!(verify(b"secret", "v1=00", b"{}"), None);
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: `printf '12.x' | openssl dgst -sha256 -hmac Jefe`.
        assert_eq!(
            mac_hex(b"Jefe", 12, b"x"),
            "fb6d2f41b7073846c15426925fffb761ad3135bd1c5db33c2e010c7f8bf33efe"
        );
    }
}
