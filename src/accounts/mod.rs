//! Accounts: e-mail + password sign-in with rotating refresh tokens, invitations that
//! let people set their password, and the management of an organization's people.
//!
//! The rules are written down in `docs/ACCOUNTS.md`; this module is where they are
//! enforced. Everything here answers [`AccountError`]s; their HTTP statuses are chosen in
//! `src/api/accounts_errors.rs`.

pub mod invitations;
pub mod limiter;
pub mod me;
pub mod onboarding;
pub mod password;
pub mod people;
pub mod signin;

use std::time::Duration;

pub use limiter::SignInLimiter;

/// Lifetime of an access token minted by sign-in or refresh.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Lifetime of a sign-in (its refresh token family), counted from the sign-in.
pub const REFRESH_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// Lifetime of an invitation link.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What accounts need from the server's configuration, plus the sign-in limiter's state.
/// Cheap to clone; clones share the limiter.
#[derive(Clone)]
pub struct AccountsConfig {
    /// Base of links handed out (invitations): scheme, host and port, no trailing `/`.
    pub public_url: String,
    /// Whether the refresh cookie carries `Secure` (false only for plain HTTP on loopback).
    pub secure_cookie: bool,
    /// Failed sign-ins per e-mail and per address.
    pub limiter: SignInLimiter,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_string(),
            secure_cookie: true,
            limiter: SignInLimiter::default(),
        }
    }
}

/// Why an account action was refused. Stable codes; the API picks the status.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Unknown e-mail, wrong password or deactivated account: deliberately one answer.
    #[error("the e-mail address or the password is not right")]
    InvalidCredentials,
    /// Too many failed sign-ins for this e-mail or from this address.
    #[error("too many failed sign-ins; try again in {0} seconds")]
    TooManyAttempts(u64),
    /// The refresh token is unknown, expired, used before or revoked.
    #[error("your sign-in has ended; please sign in again")]
    InvalidRefreshToken,
    /// A password outside the length rule.
    #[error("a password needs {min} to {max} characters", min = password::MIN_LEN, max = password::MAX_LEN)]
    WeakPassword,
    /// The e-mail address does not look like one.
    #[error("that is not an e-mail address")]
    InvalidEmail,
    /// A name that is empty or too long.
    #[error("a name needs 1 to 200 characters")]
    InvalidName,
    /// The role cannot be invited (or not by this caller).
    #[error("people of that role cannot be invited here")]
    InvalidRole,
    /// Someone already has an account with that e-mail.
    #[error("someone already has an account with that e-mail address")]
    EmailTaken,
    /// No such invitation (or withdrawn, or of another organization).
    #[error("this invitation does not exist or was withdrawn")]
    InvitationNotFound,
    /// The invitation was accepted already.
    #[error("this invitation was used already; sign in instead")]
    InvitationUsed,
    /// The invitation is past its expiry.
    #[error("this invitation has expired; ask for a new one")]
    InvitationExpired,
    /// No such organization (or not visible to the caller).
    #[error("organization not found")]
    OrganizationNotFound,
    /// No such person (or not visible to the caller).
    #[error("person not found")]
    PersonNotFound,
    /// The therapist named for a client is not a therapist of the organization.
    #[error("therapist not found in this organization")]
    TherapistNotFound,
    /// The caller's role may not do this.
    #[error("your role may not do this")]
    Forbidden,
    /// Something on our side failed (logged where it happened).
    #[error("internal error")]
    Internal(&'static str),
    /// The database failed.
    #[error("storage error: {0}")]
    Store(#[from] sqlx::Error),
}

impl AccountError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::InvalidCredentials => "invalid_credentials",
            AccountError::TooManyAttempts(_) => "too_many_attempts",
            AccountError::InvalidRefreshToken => "invalid_refresh_token",
            AccountError::WeakPassword => "weak_password",
            AccountError::InvalidEmail => "invalid_email",
            AccountError::InvalidName => "invalid_name",
            AccountError::InvalidRole => "invalid_role",
            AccountError::EmailTaken => "email_taken",
            AccountError::InvitationNotFound => "invitation_not_found",
            AccountError::InvitationUsed => "invitation_used",
            AccountError::InvitationExpired => "invitation_expired",
            AccountError::OrganizationNotFound => "organization_not_found",
            AccountError::PersonNotFound => "person_not_found",
            AccountError::TherapistNotFound => "therapist_not_found",
            AccountError::Forbidden => "forbidden",
            AccountError::Internal(_) | AccountError::Store(_) => "internal",
        }
    }
}

/// E-mail addresses are compared lower-cased and trimmed; anything without one `@`
/// between non-empty parts, with spaces or over 254 characters is refused.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(email)
    } else {
        Err(AccountError::InvalidEmail)
    }
}

/// A display name: trimmed, 1 to 200 characters.
pub fn normalize_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if (1..=200).contains(&name.chars().count()) {
        Ok(name.to_string())
    } else {
        Err(AccountError::InvalidName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.ORG ").unwrap(),
            "ada@example.org"
        );
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@",
            "ada@example",
            "a b@example.org",
            "a@b@c.org",
            "ada@.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name("  Ada ").unwrap(), "Ada");
        assert!(normalize_name("   ").is_err());
        assert!(normalize_name(&"x".repeat(201)).is_err());
    }
}
