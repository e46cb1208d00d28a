//! Which settings are secret and how their values are shown: the one rule that keeps
//! JWT and TURN secrets, the data key and database passwords out of `--help` and `config print`.

use clap::Arg;

/// What a secret value is replaced with.
pub const MASK: &str = "********";

/// A setting is secret when its argument says `hide_env_values = true` (the
/// attribute that already keeps its value out of `--help`); a new secret field of
/// [`super::Settings`] needs nothing else.
pub fn is_secret(arg: &Arg) -> bool {
    arg.is_hide_env_values_set()
}

/// A secret value as it may be shown: a URL keeps everything but its password (in the
/// user info or a `...password=` query parameter), anything else is masked whole.
pub fn mask(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    match value.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => format!("{scheme}://{}", mask_url_rest(rest)),
        _ => MASK.to_string(),
    }
}

/// `postgres`, `sqlite`, `redis+tls`: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Masks the password of `user:password@host/path?query` (what follows `scheme://`).
fn mask_url_rest(rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{MASK}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => format!("{path}?{}", mask_query(query)),
        None => tail.to_string(),
    };
    format!("{authority}{tail}")
}

/// Masks the value of every query parameter whose name ends in `password`.
fn mask_query(query: &str) -> String {
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => {
                format!("{name}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    match fragment {
        Some(fragment) => format!("{}#{fragment}", masked.join("&")),
        None => masked.join("&"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    #[test]
    fn plain_secrets_are_masked_whole() {
        assert_eq!(mask("a-configured-secret-of-32-bytes!"), MASK);
        assert_eq!(mask("not a url: but://close"), MASK);
        assert_eq!(mask(""), "");
    }

    #[test]
    fn urls_keep_everything_but_the_password() {
        assert_eq!(
            mask("postgres://app:s3cr%40t@db.internal:5432/theraroom?sslmode=require"),
            format!("postgres://app:{MASK}@db.internal:5432/theraroom?sslmode=require")
        );
        assert_eq!(
            mask("postgres://app@db/theraroom?password=hunter2&sslmode=disable"),
            format!("postgres://app@db/theraroom?password={MASK}&sslmode=disable")
        );
        assert_eq!(
            mask("postgres://db/x?sslpassword=k#frag"),
            format!("postgres://db/x?sslpassword={MASK}#frag")
        );
        let sqlite = "sqlite:///var/lib/theraroom/theraroom.db?mode=rwc";
        assert_eq!(mask(sqlite), sqlite);
    }

    #[test]
    fn the_secret_settings_are_the_ones_hidden_from_help() {
        let settings = super::super::Settings::augment_args(Command::new("settings"));
        let secret: Vec<&str> = settings
            .get_arguments()
            .filter(|arg| is_secret(arg))
            .map(|arg| arg.get_id().as_str())
            .collect();
        for id in ["database_url", "jwt_secret", "turn_secret", "data_key"] {
            assert!(secret.contains(&id), "{id} is not secret: {secret:?}");
        }
        assert!(!secret.contains(&"bind"), "{secret:?}");
    }
}
