//! Password hashing: argon2id with the crate's default (OWASP-recommended) cost, as PHC
//! strings. Hashing runs on the blocking pool, so sign-ins never stall the async workers.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::AccountError;

/// Shortest accepted password.
pub const MIN_LEN: usize = 10;
/// Longest accepted password (bounds the hashing work a request can ask for).
pub const MAX_LEN: usize = 128;

/// Refuses passwords outside [`MIN_LEN`]..=[`MAX_LEN`] characters.
pub fn check_strength(password: &str) -> Result<(), AccountError> {
    let len = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&len) {
        Ok(())
    } else {
        Err(AccountError::WeakPassword)
    }
}

/// Hashes a password into a PHC string with a fresh random salt.
pub async fn hash(password: &str) -> Result<String, AccountError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|_| AccountError::Internal("password hashing task failed"))?
}

fn hash_now(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| AccountError::Internal("password hashing failed"))
}

/// Verifies `password` against `stored`, or, when there is no stored hash (unknown
/// e-mail, no password set yet), against a fixed dummy hash and answers false: both
/// paths cost one argon2 verification, so timing does not tell them apart.
pub async fn verify(password: &str, stored: Option<String>) -> bool {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (dummy_hash().to_string(), false),
        };
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && real
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, made once per process with the same cost as real ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = crate::random::url_token();
        hash_now(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let phc = hash("correct horse battery").await.expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery", Some(phc.clone())).await);
        assert!(!verify("correct horse battery!", Some(phc)).await);
    }

    #[tokio::test]
    async fn without_a_stored_hash_nothing_verifies() {
        assert!(!verify("anything at all", None).await);
        assert!(!verify("", Some("not a phc string".into())).await);
    }

    #[test]
    fn strength_is_a_length_between_ten_and_128() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("exactly10!").is_ok());
        assert!(check_strength(&"x".repeat(128)).is_ok());
        assert!(check_strength(&"x".repeat(129)).is_err());
    }
}
