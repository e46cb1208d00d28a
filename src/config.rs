//! Command line, environment and configuration file, shared by every subcommand so
//! that `serve`, `demo` and `token` agree on the data directory and secrets.
//! [`file`] reads `--config`, [`print`] shows the result, [`secret`] keeps secrets out.

pub mod file;
pub mod print;
pub mod secret;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use rand::RngCore;

/// TheraRoom: telehealth video server (signaling, SFU and REST in one binary).
#[derive(Debug, Parser)]
#[command(name = "theraroom", version, about)]
pub struct Cli {
    /// TOML file with settings (keys: the long flag names, e.g. `rtc_port = 7882`);
    /// flags and environment variables override it.
    #[arg(long, env = "THERAROOM_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create (idempotently) a demo organization with users and print their tokens.
    Demo {
        /// Print JSON (the only format for now; kept for scripts that pass it).
        #[arg(long)]
        json: bool,
        /// Lifetime of the printed tokens.
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
    /// Onboarding (organizations and super admins, each with an invitation link) and
    /// data-key rotation.
    Admin {
        /// What to create.
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Mint a JWT for a user (like `lk token create`).
    Token {
        /// Role: client, therapist, organization, admin, super_admin, guest.
        #[arg(long)]
        role: String,
        /// Subject (user id, or guest id).
        #[arg(long)]
        user: String,
        /// Organization id.
        #[arg(long)]
        org: Option<String>,
        /// Session id (required for guests).
        #[arg(long)]
        session: Option<String>,
        /// Lifetime, e.g. 90s, 30m, 1h, 2d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

/// `theraroom admin ...`: what an operator creates from the command line.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization and print its first administrator's invitation link.
    CreateOrganization {
        /// Name of the organization.
        #[arg(long)]
        name: String,
        /// E-mail of its first administrator.
        #[arg(long)]
        admin_email: String,
        /// Name of its first administrator.
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
        /// Per-therapist video switches and blog permissions apply.
        #[arg(long)]
        theraptrack_controlled: bool,
    },
    /// Print an invitation link for a new super admin (platform operator).
    CreateSuperAdmin {
        /// E-mail of the super admin.
        #[arg(long)]
        email: String,
        /// Name of the super admin.
        #[arg(long, default_value = "Platform operator")]
        name: String,
    },
    /// Add a new data key to the keyring file, make it current and seal every note
    /// again with it (old keys stay readable). Run it with the server stopped.
    RotateDataKey,
}

/// `theraroom config ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the settings in effect as TOML, with where each value came from; secrets
    /// are masked.
    Print,
}

/// Format of the log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people (colours only when stderr is a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Settings; each flag also reads an environment variable and a key of the
/// configuration file (`--config`; precedence: flag, environment, file, default).
/// A setting whose value is secret says `hide_env_values = true` (see [`secret`]):
/// then neither `--help` nor `config print` shows it.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address of the HTTP/WebSocket listener.
    #[arg(
        long,
        env = "THERAROOM_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,
    /// Directory for the embedded database and generated secrets.
    #[arg(
        long,
        env = "THERAROOM_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Database URL (`postgres://...` or `sqlite://...`); default: SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// HS256 secret for JWTs; generated and kept in the data dir when absent.
    #[arg(
        long,
        env = "THERAROOM_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Data key sealing clinical notes at rest: base64 of 32 bytes (`openssl rand
    /// -base64 32`). Without it the keyring file `data_keys.json` in the data dir is
    /// used (generated on the first start); once that file exists it names the current
    /// key and this one stays readable (see docs/RECORDS.md).
    #[arg(
        long,
        env = "THERAROOM_DATA_KEY",
        global = true,
        hide_env_values = true
    )]
    pub data_key: Option<String>,
    /// Shared secret with the TURN server (coturn `static-auth-secret`).
    #[arg(
        long,
        env = "THERAROOM_TURN_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub turn_secret: Option<String>,
    /// TURN/STUN URIs handed to clients, comma-separated.
    #[arg(
        long,
        env = "THERAROOM_TURN_URIS",
        value_delimiter = ',',
        global = true
    )]
    pub turn_uris: Vec<String>,
    /// Lifetime of TURN credentials, e.g. 3600, 1h.
    #[arg(long, env = "THERAROOM_TURN_TTL", default_value = "1h", global = true)]
    pub turn_ttl: String,
    /// Directory of the browser client.
    #[arg(long, env = "THERAROOM_STATIC_DIR", global = true)]
    pub static_dir: Option<PathBuf>,
    /// IP address the media (ICE/UDP) sockets bind to.
    #[arg(
        long,
        env = "THERAROOM_RTC_IP",
        default_value = "127.0.0.1",
        global = true
    )]
    pub rtc_ip: IpAddr,
    /// Public IP to announce instead of the bind IP (NAT 1:1), comma-separated.
    #[arg(
        long,
        env = "THERAROOM_RTC_PUBLIC_IPS",
        value_delimiter = ',',
        global = true
    )]
    pub rtc_public_ips: Vec<IpAddr>,
    /// UDP port of the media socket (of the first worker; worker `i` uses this + `i`).
    /// `0` lets every worker take an ephemeral port (tests run many servers at once).
    #[arg(
        long,
        env = "THERAROOM_RTC_PORT",
        default_value_t = 7882,
        global = true
    )]
    pub rtc_port: u16,
    /// Media worker threads, each with its own socket and rooms; `0` = one per core.
    #[arg(
        long,
        env = "THERAROOM_RTC_WORKERS",
        default_value_t = 0,
        global = true
    )]
    pub rtc_workers: usize,
    /// Shortest time between two receive turns of a busy media worker, in µs (0 = off):
    /// datagrams of that interval are read in one batch, at most this much added latency.
    #[arg(
        long,
        env = "THERAROOM_RTC_COALESCE_US",
        default_value_t = sfu::DEFAULT_COALESCE_US,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(sfu::MAX_COALESCE_US)),
        global = true
    )]
    pub rtc_coalesce_us: u32,
    /// Run ICE-lite on the server side (for servers with a public IP).
    #[arg(long, env = "THERAROOM_ICE_LITE", global = true)]
    pub ice_lite: bool,
    /// Do not accept ICE over TCP on the media ports (by default each media worker also
    /// listens on TCP at its UDP port, for clients whose network blocks UDP).
    #[arg(long, env = "THERAROOM_NO_ICE_TCP", global = true)]
    pub no_ice_tcp: bool,
    /// Longest lifetime of a user token, e.g. 24h; longer tokens are refused.
    #[arg(
        long,
        env = "THERAROOM_MAX_TOKEN_TTL",
        default_value = "24h",
        global = true
    )]
    pub max_token_ttl: String,
    /// Longest lifetime of a guest token, e.g. 4h; longer tokens are refused.
    #[arg(
        long,
        env = "THERAROOM_MAX_GUEST_TOKEN_TTL",
        default_value = "4h",
        global = true
    )]
    pub max_guest_token_ttl: String,
    /// Failed authentications one client address may make per minute before 429.
    #[arg(
        long,
        env = "THERAROOM_AUTH_FAILURES_PER_MINUTE",
        default_value_t = crate::auth::guard::DEFAULT_FAILURES_PER_MINUTE,
        global = true
    )]
    pub auth_failures_per_minute: u32,
    /// How long a dropped participant keeps its place, e.g. 30s.
    #[arg(
        long,
        env = "THERAROOM_RECONNECT_GRACE",
        default_value = "30s",
        global = true
    )]
    pub reconnect_grace: String,
    /// Guest tokens per client IP (`POST /api/join/{share_token}/guest`), `N/PERIOD`.
    #[arg(
        long,
        env = "THERAROOM_RATE_GUEST_TOKENS",
        default_value = crate::api::rate_limit::DEFAULT_GUEST_TOKENS,
        global = true
    )]
    pub rate_guest_tokens: String,
    /// Share-link lookups per client IP (`GET /api/join/{share_token}`), `N/PERIOD`.
    #[arg(
        long,
        env = "THERAROOM_RATE_SHARE_LOOKUPS",
        default_value = crate::api::rate_limit::DEFAULT_SHARE_LOOKUPS,
        global = true
    )]
    pub rate_share_lookups: String,
    /// Session creations per client IP (`POST /api/sessions`), `N/PERIOD`.
    #[arg(
        long,
        env = "THERAROOM_RATE_SESSION_CREATION",
        default_value = crate::api::rate_limit::DEFAULT_SESSION_CREATION,
        global = true
    )]
    pub rate_session_creation: String,
    /// Send `Strict-Transport-Security` on every response (clients reach the server
    /// only over HTTPS, through a TLS-terminating proxy).
    #[arg(long, env = "THERAROOM_HSTS", global = true)]
    pub hsts: bool,
    /// Trust `X-Forwarded-Proto` (HSTS when `https`) and `X-Forwarded-For` (the
    /// rate-limit key) from a proxy in front that overwrites them.
    #[arg(long, env = "THERAROOM_TRUST_PROXY", global = true)]
    pub trust_proxy: bool,
    /// Most open signaling sockets (`/rtc`) in total; more are refused with 503.
    #[arg(
        long,
        env = "THERAROOM_MAX_CONNECTIONS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_connections: usize,
    /// Most open signaling sockets per client address; more are refused with 429.
    #[arg(
        long,
        env = "THERAROOM_MAX_CONNECTIONS_PER_IP",
        default_value_t = 50,
        global = true
    )]
    pub max_connections_per_ip: usize,
    /// Deadline of one write to a signaling socket, e.g. 10s; a client that does not
    /// read in time is closed with 4408 `slow_consumer`.
    #[arg(
        long,
        env = "THERAROOM_WS_WRITE_TIMEOUT",
        default_value = "10s",
        global = true
    )]
    pub ws_write_timeout: String,
    /// PEM file with the certificate chain (leaf first) for HTTPS and WSS on `--bind`;
    /// needs `--tls-key`.
    #[arg(
        long,
        env = "THERAROOM_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed",
        global = true
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "THERAROOM_TLS_KEY",
        requires = "tls_cert",
        conflicts_with = "tls_self_signed",
        global = true
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate generated at startup (kept in memory only), for
    /// trying the server from a phone on the LAN; browsers warn about it.
    #[arg(long, env = "THERAROOM_TLS_SELF_SIGNED", global = true)]
    pub tls_self_signed: bool,
    /// Extra name or IP address of the self-signed certificate (repeatable), e.g. the
    /// LAN address phones open when `--bind` is `0.0.0.0`.
    #[arg(
        long = "tls-hostname",
        env = "THERAROOM_TLS_HOSTNAMES",
        value_delimiter = ',',
        requires = "tls_self_signed",
        global = true
    )]
    pub tls_hostnames: Vec<String>,
    /// Address people open, e.g. `https://video.example.org`: the base of the links
    /// the server hands out (invitations). Default: this server's scheme and `--bind`.
    #[arg(long, env = "THERAROOM_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Format of the log lines on stderr: `text` for people, `json` for log collectors.
    #[arg(
        long,
        env = "THERAROOM_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
    /// Service codes (CPT) a booked 1:1 session may carry, comma-separated; any other
    /// code is refused with 400 `invalid_service_code`. Default: the common
    /// psychotherapy codes.
    #[arg(
        long = "service-codes",
        env = "THERAROOM_SERVICE_CODES",
        value_delimiter = ',',
        default_values = crate::schedule::service_codes::DEFAULT_SERVICE_CODES,
        global = true
    )]
    pub service_codes: Vec<String>,
    /// Webhook delivery (`--webhooks-*`).
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Several nodes on Redis (`--redis-url`, `--node-*`).
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterSettings,
}

impl Settings {
    /// The accepted service codes (`--service-codes`).
    pub fn service_codes(&self) -> crate::schedule::service_codes::ServiceCodes {
        crate::schedule::service_codes::ServiceCodes::new(&self.service_codes)
    }

    /// Sign-in settings: the public URL of links, and whether the refresh cookie is
    /// `Secure` (always, except plain HTTP on a loopback `--bind`, for development).
    pub fn accounts_config(&self, tls: bool, local: SocketAddr) -> crate::accounts::AccountsConfig {
        let scheme = if tls { "https" } else { "http" };
        let public_url = self
            .public_url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| format!("{scheme}://{local}"));
        crate::accounts::AccountsConfig {
            public_url: public_url.trim_end_matches('/').to_string(),
            secure_cookie: tls || !self.bind.ip().is_loopback(),
            ..Default::default()
        }
    }

    /// The database URL, defaulting to `<data_dir>/theraroom.db`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("theraroom.db").display()
            ),
        }
    }

    /// TURN credential lifetime in seconds.
    pub fn turn_ttl_secs(&self) -> Result<u64, String> {
        crate::clock::parse_duration_secs(&self.turn_ttl)
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("invalid THERAROOM_TURN_TTL {:?}", self.turn_ttl))
    }

    /// Reconnect grace period in seconds.
    pub fn reconnect_grace_secs(&self) -> Result<u64, String> {
        crate::clock::parse_duration_secs(&self.reconnect_grace).ok_or_else(|| {
            format!(
                "invalid THERAROOM_RECONNECT_GRACE {:?}",
                self.reconnect_grace
            )
        })
    }

    /// The REST rate limits.
    pub fn rate_limits(&self) -> Result<crate::api::RateLimits, String> {
        let rate = |flag: &str, text: &str| {
            text.parse()
                .map_err(|e: String| format!("invalid {flag}: {e}"))
        };
        Ok(crate::api::RateLimits {
            guest_tokens: rate("THERAROOM_RATE_GUEST_TOKENS", &self.rate_guest_tokens)?,
            share_lookups: rate("THERAROOM_RATE_SHARE_LOOKUPS", &self.rate_share_lookups)?,
            session_creation: rate(
                "THERAROOM_RATE_SESSION_CREATION",
                &self.rate_session_creation,
            )?,
            trust_proxy: self.trust_proxy,
        })
    }

    /// Rate limiters and header policy of the HTTP application.
    pub fn http_options(&self) -> Result<crate::app::HttpOptions, String> {
        Ok(crate::app::HttpOptions {
            limiters: crate::api::RateLimiters::new(&self.rate_limits()?),
            headers: crate::headers::HeaderPolicy {
                hsts: self.hsts,
                trust_proxy: self.trust_proxy,
            },
        })
    }

    /// Longest token lifetimes, from `--max-token-ttl` and `--max-guest-token-ttl`.
    pub fn token_policy(&self) -> Result<crate::auth::TokenPolicy, String> {
        let parse = |text: &str, flag: &str| {
            crate::clock::parse_duration_secs(text)
                .filter(|s| *s > 0)
                .and_then(|s| i64::try_from(s).ok())
                .ok_or_else(|| format!("invalid {flag} {text:?}"))
        };
        Ok(crate::auth::TokenPolicy {
            user_max_ttl_secs: parse(&self.max_token_ttl, "--max-token-ttl")?,
            guest_max_ttl_secs: parse(&self.max_guest_token_ttl, "--max-guest-token-ttl")?,
        })
    }

    /// The failed-authentication limit per address and minute (at least 1).
    pub fn auth_failures_per_minute(&self) -> Result<std::num::NonZeroU32, String> {
        std::num::NonZeroU32::new(self.auth_failures_per_minute)
            .ok_or_else(|| "--auth-failures-per-minute must be at least 1".to_string())
    }

    /// Signaling write deadline in seconds (at least 1).
    pub fn ws_write_timeout_secs(&self) -> Result<u64, String> {
        crate::clock::parse_duration_secs(&self.ws_write_timeout)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                format!(
                    "invalid THERAROOM_WS_WRITE_TIMEOUT {:?}",
                    self.ws_write_timeout
                )
            })
    }

    /// Where the HTTPS certificate comes from, or `None` for plain HTTP. clap refuses
    /// half a pair and a pair together with `--tls-self-signed` already; this checks
    /// again for settings built some other way.
    pub fn tls_source(&self) -> Result<Option<crate::tls::TlsSource>, String> {
        use crate::tls::TlsSource;
        match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (None, None, false) => Ok(None),
            (None, None, true) => {
                let bind_ip = Some(self.bind.ip())
                    .filter(|ip| !ip.is_unspecified())
                    .map(|ip| ip.to_string());
                let mut names: Vec<String> = Vec::new();
                let given = self.tls_hostnames.iter().map(|n| n.trim().to_string());
                for name in ["localhost".to_string(), "127.0.0.1".to_string()]
                    .into_iter()
                    .chain(bind_ip)
                    .chain(given)
                {
                    if !name.is_empty() && !names.contains(&name) {
                        names.push(name);
                    }
                }
                Ok(Some(TlsSource::SelfSigned { names }))
            }
            (Some(cert), Some(key), false) => Ok(Some(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (_, _, true) => {
                Err("--tls-self-signed cannot be combined with --tls-cert/--tls-key".into())
            }
            _ => Err("--tls-cert and --tls-key go together: give both or neither".into()),
        }
    }

    /// The browser client directory: the flag, else `static/` next to the sources.
    pub fn static_dir(&self) -> PathBuf {
        self.static_dir
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("static"))
    }
}

/// Shortest secret accepted (JWT and TURN): an HMAC key below 256 bits can be brute
/// forced from one token.
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`], naming where it came from.
fn long_enough(secret: &str, what: &str, origin: &str) -> Result<Vec<u8>, String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the {what} from {origin} is {} bytes long; at least {MIN_SECRET_BYTES} are required \
             (generate one with `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    Ok(secret.as_bytes().to_vec())
}

/// Returns the configured secret, or the one kept in `<data_dir>/<file>`, generating
/// and storing a random one the first time. Secrets shorter than
/// [`MIN_SECRET_BYTES`] are refused. The secret itself is never logged.
pub fn load_or_create_secret(
    data_dir: &Path,
    file: &str,
    configured: Option<&str>,
    what: &str,
) -> Result<Vec<u8>, String> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        return long_enough(secret, what, "the configuration");
    }
    let path = data_dir.join(file);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return long_enough(existing, what, &path.display().to_string());
        }
    }
    let io_error =
        |e: std::io::Error| format!("cannot store the {what} in {}: {e}", path.display());
    std::fs::create_dir_all(data_dir).map_err(io_error)?;
    let mut bytes = [0u8; MIN_SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, &secret).map_err(io_error)?;
    tracing::warn!(path = %path.display(), "no {what} configured: generated a random one and stored it (set it explicitly in production)");
    Ok(secret.into_bytes())
}

/// Writes `contents` to `path`, readable by the owner only (secrets and key files).
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(contents.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("theraroom-secret-{}", uuid::Uuid::new_v4()));
        let first = load_or_create_secret(&dir, "s", None, "test secret").unwrap();
        let second = load_or_create_secret(&dir, "s", None, "test secret").unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        let given = "a-configured-secret-of-32-bytes!";
        let configured = load_or_create_secret(&dir, "s", Some(given), "test secret").unwrap();
        assert_eq!(configured, given.as_bytes());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn http_settings_parse_with_defaults_and_flags() {
        let cli = Cli::try_parse_from(["theraroom"]).unwrap();
        let limits = cli.settings.rate_limits().unwrap();
        assert_eq!(limits, crate::api::RateLimits::default());
        assert!(!cli.settings.hsts && !cli.settings.trust_proxy);
        let cli = Cli::try_parse_from([
            "theraroom",
            "--rate-guest-tokens",
            "3/10s",
            "--rate-share-lookups",
            "100/h",
            "--rate-session-creation",
            "5/min",
            "--hsts",
            "--trust-proxy",
        ])
        .unwrap();
        let limits = cli.settings.rate_limits().unwrap();
        assert_eq!(limits.guest_tokens.count, 3);
        assert_eq!(limits.guest_tokens.per.as_secs(), 10);
        assert_eq!(limits.share_lookups.per.as_secs(), 3600);
        assert_eq!(limits.session_creation.count, 5);
        assert!(limits.trust_proxy);
        assert!(cli.settings.http_options().unwrap().headers.hsts);
        let cli = Cli::try_parse_from(["theraroom", "--rate-guest-tokens", "lots"]).unwrap();
        let err = cli.settings.rate_limits().unwrap_err();
        assert!(err.contains("THERAROOM_RATE_GUEST_TOKENS"), "{err}");
    }

    #[test]
    fn short_secrets_are_refused() {
        let dir = std::env::temp_dir().join(format!("theraroom-secret-{}", uuid::Uuid::new_v4()));
        let err = load_or_create_secret(&dir, "s", Some("secret"), "JWT secret").unwrap_err();
        assert!(
            err.contains("JWT secret") && err.contains("at least 32"),
            "{err}"
        );
        let err =
            load_or_create_secret(&dir, "s", Some(&"x".repeat(31)), "TURN secret").unwrap_err();
        assert!(err.contains("31 bytes"), "{err}");
        // A short secret left in the data directory is refused too, not silently used.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s"), "too-short\n").unwrap();
        let err = load_or_create_secret(&dir, "s", None, "JWT secret").unwrap_err();
        assert!(err.contains("9 bytes"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tls_flags_come_in_pairs_and_exclude_each_other() {
        use crate::tls::TlsSource;
        let plain = Cli::try_parse_from(["theraroom"]).unwrap();
        assert_eq!(plain.settings.tls_source().unwrap(), None);
        let files = Cli::try_parse_from(["theraroom", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap();
        assert_eq!(
            files.settings.tls_source().unwrap(),
            Some(TlsSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        for half in [["--tls-cert", "c.pem"], ["--tls-key", "k.pem"]] {
            let err = Cli::try_parse_from(["theraroom", half[0], half[1]]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
        let err = Cli::try_parse_from([
            "theraroom",
            "--tls-self-signed",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let err = Cli::try_parse_from(["theraroom", "--tls-hostname", "x.lan"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let generated = Cli::try_parse_from([
            "theraroom",
            "--bind",
            "192.168.1.20:8443",
            "--tls-self-signed",
            "--tls-hostname",
            "room.lan",
            "--tls-hostname",
            "127.0.0.1",
            "serve",
        ])
        .unwrap();
        let names = ["localhost", "127.0.0.1", "192.168.1.20", "room.lan"];
        assert_eq!(
            generated.settings.tls_source().unwrap(),
            Some(TlsSource::SelfSigned {
                names: names.iter().map(|n| n.to_string()).collect()
            })
        );
        // An address of every interface is no name a browser opens: not in the certificate.
        let any = Cli::try_parse_from(["theraroom", "--bind", "0.0.0.0:8443", "--tls-self-signed"])
            .unwrap();
        let Some(TlsSource::SelfSigned { names }) = any.settings.tls_source().unwrap() else {
            panic!("expected a self-signed source");
        };
        assert_eq!(names, ["localhost", "127.0.0.1"]);
    }

    #[test]
    fn token_lifetimes_are_settings() {
        use clap::Parser;
        let cli = Cli::parse_from(["theraroom", "--max-token-ttl", "2h"]);
        let policy = cli.settings.token_policy().unwrap();
        assert_eq!(policy.user_max_ttl_secs, 7200);
        assert_eq!(policy.guest_max_ttl_secs, 4 * 3600);
        let bad = Cli::parse_from(["theraroom", "--max-guest-token-ttl", "soon"]);
        assert!(bad.settings.token_policy().is_err());
        let zero = Cli::parse_from(["theraroom", "--auth-failures-per-minute", "0"]);
        assert!(zero.settings.auth_failures_per_minute().is_err());
    }
}
