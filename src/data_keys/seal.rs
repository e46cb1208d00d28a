//! AES-256-GCM sealing of one text under one data key, with the row it belongs to as
//! associated data: a ciphertext copied into another row does not open there.
//!
//! The cipher is `ring`'s (already in the build through rustls and jsonwebtoken), so
//! encryption at rest adds no crate to compile.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// Length of a data key: 256 bits.
pub const KEY_BYTES: usize = 32;

/// A text as stored: which key sealed it, the nonce and the ciphertext with its tag
/// (both base64, so they fit a TEXT column on either database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the data key (see [`super::key_id`]).
    pub key_id: String,
    /// The 96-bit nonce, base64; random for every sealing.
    pub nonce: String,
    /// Ciphertext followed by the 128-bit tag, base64.
    pub ciphertext: String,
}

/// Why a text could not be sealed or opened. Never carries key material or text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The row names a key the keyring does not hold.
    #[error("data key {0} is not in the keyring")]
    UnknownKey(String),
    /// Nonce or ciphertext is not valid base64 or has the wrong length.
    #[error("malformed sealed value")]
    Malformed,
    /// The tag does not match: wrong key, other row, or altered ciphertext.
    #[error("sealed value does not open (wrong key, other row, or altered)")]
    Rejected,
}

/// Seals `plaintext` under `key` (id `key_id`) bound to `aad`.
pub fn seal(
    key_id: &str,
    key: &[u8; KEY_BYTES],
    aad: &str,
    plaintext: &str,
) -> Result<Sealed, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut in_out = plaintext.as_bytes().to_vec();
    cipher(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| SealError::Rejected)?;
    Ok(Sealed {
        key_id: key_id.to_string(),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(in_out),
    })
}

/// Opens `sealed` with `key`, checking that it was sealed for `aad`.
pub fn open(key: &[u8; KEY_BYTES], aad: &str, sealed: &Sealed) -> Result<String, SealError> {
    let nonce: [u8; NONCE_LEN] = B64
        .decode(&sealed.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(SealError::Malformed)?;
    let mut in_out = B64
        .decode(&sealed.ciphertext)
        .map_err(|_| SealError::Malformed)?;
    let plain = cipher(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| SealError::Rejected)?;
    String::from_utf8(plain.to_vec()).map_err(|_| SealError::Malformed)
}

fn cipher(key: &[u8; KEY_BYTES]) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_BYTES] = [7; KEY_BYTES];

    #[test]
    fn sealed_text_opens_only_for_its_row_and_key() {
        let sealed = seal("k1", &KEY, "note:1", "Client reports panic attacks").unwrap();
        assert_eq!(
            open(&KEY, "note:1", &sealed).unwrap(),
            "Client reports panic attacks"
        );
        assert!(!sealed.ciphertext.contains("panic"));
        assert_eq!(open(&KEY, "note:2", &sealed), Err(SealError::Rejected));
        assert_eq!(
            open(&[8; KEY_BYTES], "note:1", &sealed),
            Err(SealError::Rejected)
        );
        let mut altered = sealed.clone();
        altered.ciphertext = B64.encode(b"not the ciphertext at all, longer than a tag");
        assert_eq!(open(&KEY, "note:1", &altered), Err(SealError::Rejected));
        altered.nonce = "???".into();
        assert_eq!(open(&KEY, "note:1", &altered), Err(SealError::Malformed));
    }

    #[test]
    fn every_sealing_takes_a_fresh_nonce() {
        let a = seal("k1", &KEY, "note:1", "same text").unwrap();
        let b = seal("k1", &KEY, "note:1", "same text").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(B64.decode(&a.nonce).unwrap().len(), 12);
    }
}
