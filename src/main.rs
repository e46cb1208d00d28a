//! The `theraroom` binary: parses the command line and runs a subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use theraroom::config::file::{self, LoadError, Loaded};
use theraroom::config::{Command, ConfigAction, LogFormat};

mod admin;
mod serve;

/// The WebRTC core allocates per packet; mimalloc's thread-local free lists make that
/// cheap on the media workers (see `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let loaded = match file::load(std::env::args_os()) {
        Ok(loaded) => loaded,
        Err(LoadError::Usage(err)) => err.exit(),
        Err(LoadError::File(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let Loaded { cli, matches, file } = loaded;
    init_tracing(cli.settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(cli.settings).await,
        Command::Migrate => serve::migrate(&cli.settings).await,
        Command::Demo { json: _, ttl } => serve::demo(&cli.settings, &ttl).await,
        Command::Admin { action } => admin::admin(&cli.settings, action).await,
        Command::Config {
            action: ConfigAction::Print,
        } => {
            print!(
                "{}",
                theraroom::config::print::render(&matches, file.as_ref())
            );
            Ok(())
        }
        Command::Token {
            role,
            user,
            org,
            session,
            ttl,
        } => serve::token(
            &cli.settings,
            &role,
            &user,
            org.as_deref(),
            session.as_deref(),
            &ttl,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (so `demo --json` and `token` keep stdout clean), as text (coloured
/// only on a terminal, so a log file has no escape codes) or one JSON object per line;
/// `RUST_LOG` overrides the default filter. The `log` records of webrtc-rs are bridged in.
fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,webrtc=warn,rtc=warn,rtc_dtls=error,rtc_ice=error,sqlx=warn,tower_http=info",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
